#include "master/searcher/pbt_search.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "master/searcher/hparam_sampler.h"
#include "master/searcher/snapshot_json.h"

namespace det::searcher {
namespace {

constexpr int kSnapshotVersion = 1;
// What NaN metrics become, and the rank of a member with no metric.
constexpr double kWorst = std::numeric_limits<double>::max();

}  // namespace

PbtSearch::PbtSearch(PbtOptions options) : options_(std::move(options)) {}

int64_t PbtSearch::NumTruncate() const {
  // As Determined computes it, so the same configs cut the same count.
  return static_cast<int64_t>(
      options_.pbt.truncate_fraction *
      static_cast<double>(options_.pbt.population_size));
}

double PbtSearch::Normalize(double metric) const {
  if (std::isnan(metric)) return kWorst;
  double v = options_.smaller_is_better ? metric : -metric;
  return std::clamp(v, -kWorst, kWorst);
}

PbtSearch::Member* PbtSearch::FindMember(RequestId id) {
  auto it = member_index_.find(id);
  return it == member_index_.end() ? nullptr : &members_[it->second];
}

int64_t PbtSearch::Units(const Member& m) const {
  return m.done ? options_.length_per_round
                : std::clamp<int64_t>(m.length, 0, options_.length_per_round);
}

void PbtSearch::SetMembers(std::vector<Member> members) {
  members_ = std::move(members);
  member_index_.clear();
  progress_units_ = 0;
  running_ = 0;
  for (size_t i = 0; i < members_.size(); ++i) {
    if (members_[i].id != 0) member_index_[members_[i].id] = i;
    progress_units_ += Units(members_[i]);
    if (!members_[i].done) ++running_;
  }
}

ValueMap PbtSearch::HParamsOf(RequestId id) const {
  if (auto it = hparams_.find(id); it != hparams_.end()) return it->second;
  const Lineage& l = lineage_.at(id);
  if (l.parent == 0) {
    return SampleHParams(options_.hparams, options_.experiment_seed, id);
  }
  ValueMap parent = HParamsOf(l.parent);
  if (!l.explored) return parent;
  return ExploreHParams(
      options_.hparams, parent, options_.pbt.resample_probability,
      options_.pbt.perturb_factor, options_.experiment_seed, id);
}

PbtSearch::Member PbtSearch::NewTrial(RequestId parent, bool explored,
                                      Operations* ops,
                                      std::map<RequestId, ValueMap>* hparams) {
  RequestId id = next_id_++;
  lineage_[id] = Lineage{parent, explored};
  Create create;
  create.request_id = id;
  create.hparams = HParamsOf(id);
  (*hparams)[id] = create.hparams;
  create.seed = TrialSeed(options_.experiment_seed, id);
  create.warm_start_from = parent;
  ValidateAfter validate;
  validate.request_id = id;
  validate.length = options_.length_per_round;
  ops->emplace_back(std::move(create));
  ops->emplace_back(std::move(validate));
  Member m;
  m.id = id;
  return m;
}

Operations PbtSearch::InitialOperations() {
  Operations ops;
  if (started_) return ops;
  started_ = true;
  std::map<RequestId, ValueMap> hparams;
  std::vector<Member> members;
  for (int64_t i = 0; i < options_.pbt.population_size; ++i) {
    members.push_back(NewTrial(0, false, &ops, &hparams));
  }
  SetMembers(std::move(members));
  hparams_ = std::move(hparams);
  MaybeEndRound(&ops);  // a population of 0 ends at once
  return ops;
}

Operations PbtSearch::TrialCreated(RequestId) { return {}; }

Operations PbtSearch::ValidationCompleted(RequestId id, double metric,
                                          int64_t length) {
  Member* m = FindMember(id);
  if (m == nullptr || m->done) return {};
  // The round is judged on the latest point the trial reached.
  if (!m->has_metric || length >= m->length) {
    m->value = Normalize(metric);
    m->has_metric = true;
  }
  progress_units_ -= Units(*m);
  m->length = std::max(m->length, length);
  progress_units_ += Units(*m);
  return {};
}

PbtSearch::Member* PbtSearch::EndMember(RequestId id, bool dead) {
  Member* m = FindMember(id);
  if (m == nullptr || m->done) return nullptr;
  progress_units_ -= Units(*m);
  m->done = true;
  --running_;
  if (dead) m->dead = true;
  progress_units_ += Units(*m);
  return m;
}

Operations PbtSearch::TrialClosed(RequestId id) {
  Operations ops;
  if (EndMember(id, /*dead=*/false) == nullptr) return ops;
  ++closed_;
  MaybeEndRound(&ops);
  return ops;
}

Operations PbtSearch::TrialExitedEarly(RequestId id, ExitedReason reason) {
  Operations ops;
  if (EndMember(id, /*dead=*/true) == nullptr) return ops;
  if (reason == ExitedReason::kUserCanceled) {
    canceled_ = true;
  } else {
    ++failed_;
  }
  MaybeEndRound(&ops);
  return ops;
}

void PbtSearch::ShutDown(bool failure, Operations* ops) {
  shut_down_ = true;
  Shutdown shutdown;
  shutdown.failure = failure;
  ops->emplace_back(shutdown);
}

void PbtSearch::MaybeEndRound(Operations* ops) {
  if (shut_down_ || running_ > 0) return;
  if (canceled_) {
    ShutDown(closed_ == 0 && failed_ > 0, ops);
    return;
  }
  bool any_live = std::any_of(members_.begin(), members_.end(),
                              [](const Member& m) { return !m.dead; });
  if (!any_live) {
    ShutDown(true, ops);  // nothing left to continue from
    return;
  }
  if (round_ + 1 >= options_.pbt.num_rounds) {
    ShutDown(false, ops);
    return;
  }
  NextRound(ops);
}

void PbtSearch::NextRound(Operations* ops) {
  // Best first: live before dead, then by value (a live member without a
  // metric ranks worst among the live), then the older trial first.
  std::vector<Member> ranked = members_;
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const Member& a, const Member& b) {
                     if (a.dead != b.dead) return !a.dead;
                     double va = a.has_metric ? a.value : kWorst;
                     double vb = b.has_metric ? b.value : kWorst;
                     if (va != vb) return va < vb;
                     return a.id < b.id;
                   });
  const int64_t size = static_cast<int64_t>(ranked.size());
  const int64_t truncate = std::min(NumTruncate(), size / 2);
  std::vector<Member> next;
  std::map<RequestId, ValueMap> hparams;
  Member dead;
  dead.done = true;
  dead.dead = true;
  // Copies of the best replace the worst (Determined creates them first).
  for (int64_t i = 0; i < truncate; ++i) {
    const Member& parent = ranked[static_cast<size_t>(i)];
    next.push_back(parent.dead ? dead
                               : NewTrial(parent.id, true, ops, &hparams));
  }
  // The others continue: from their own checkpoint, as new trials.
  for (int64_t i = 0; i < size - truncate; ++i) {
    const Member& m = ranked[static_cast<size_t>(i)];
    next.push_back(m.dead ? dead : NewTrial(m.id, false, ops, &hparams));
  }
  ++round_;
  SetMembers(std::move(next));
  hparams_ = std::move(hparams);
}

double PbtSearch::Progress() const {
  if (shut_down_) return 1.0;
  const double total = static_cast<double>(options_.pbt.population_size) *
                       static_cast<double>(options_.pbt.num_rounds) *
                       static_cast<double>(options_.length_per_round);
  if (total <= 0) return 0;
  // Rounds before this one were trained whole (every member's trial ended).
  const double done = static_cast<double>(round_) *
                          static_cast<double>(options_.pbt.population_size) *
                          static_cast<double>(options_.length_per_round) +
                      static_cast<double>(progress_units_);
  return std::clamp(done / total, 0.0, 1.0);
}

std::string PbtSearch::Snapshot() const {
  auto boolean = [](bool b) { return b ? "true" : "false"; };
  std::string out = absl::StrCat(
      "{\"method\":\"pbt\",\"version\":", kSnapshotVersion,
      ",\"population_size\":", options_.pbt.population_size,
      ",\"num_rounds\":", options_.pbt.num_rounds, ",\"next_id\":", next_id_,
      ",\"round\":", round_, ",\"started\":", boolean(started_),
      ",\"shut_down\":", boolean(shut_down_),
      ",\"canceled\":", boolean(canceled_), ",\"closed\":", closed_,
      ",\"failed\":", failed_, ",\"members\":[");
  for (size_t i = 0; i < members_.size(); ++i) {
    const Member& m = members_[i];
    absl::StrAppend(&out, i > 0 ? "," : "", "[", m.id, ",", m.done ? 1 : 0, ",",
                    m.dead ? 1 : 0, ",", m.has_metric ? 1 : 0, ",",
                    ExactDouble(m.value), ",", m.length, "]");
  }
  absl::StrAppend(&out, "],\"lineage\":[");
  bool first = true;
  for (const auto& [id, l] : lineage_) {
    absl::StrAppend(&out, first ? "" : ",", "[", id, ",", l.parent, ",",
                    l.explored ? 1 : 0, "]");
    first = false;
  }
  absl::StrAppend(&out, "]}");
  return out;
}

absl::Status PbtSearch::Restore(const std::string& snapshot) {
  auto parsed = ParseSnapshot(snapshot, "pbt", kSnapshotVersion);
  if (!parsed.ok()) return parsed.status();
  const Value& root = *parsed;
  int64_t population = 0, rounds = 0;
  if (!ReadInt(root["population_size"], &population) ||
      !ReadInt(root["num_rounds"], &rounds)) {
    return MalformedSnapshot("missing population_size or num_rounds");
  }
  if (population != options_.pbt.population_size ||
      rounds != options_.pbt.num_rounds) {
    return absl::InvalidArgumentError(absl::StrCat(
        "searcher snapshot is of a population of ", population, " in ", rounds,
        " rounds; this config has ", options_.pbt.population_size, " in ",
        options_.pbt.num_rounds));
  }
  int64_t next_id = 0, round = 0, closed = 0, failed = 0;
  if (!ReadInt(root["next_id"], &next_id) || next_id < 1 ||
      !ReadInt(root["round"], &round) || round < 0 ||
      (rounds > 0 && round >= rounds) || !ReadInt(root["closed"], &closed) ||
      !ReadInt(root["failed"], &failed) || !root["started"].is_bool() ||
      !root["shut_down"].is_bool() || !root["canceled"].is_bool()) {
    return MalformedSnapshot("missing counters");
  }
  // Built aside, so a bad snapshot leaves this search untouched.
  std::map<RequestId, Lineage> lineage;
  const Value& ll = root["lineage"];
  if (!ll.is_list()) return MalformedSnapshot("lineage");
  for (const Value& e : ll.as_list()) {
    int64_t id = 0, parent = 0, explored = 0;
    if (!e.is_list() || e.as_list().size() != 3 ||
        !ReadInt(e.as_list()[0], &id) || !ReadInt(e.as_list()[1], &parent) ||
        !ReadInt(e.as_list()[2], &explored) || id < 1 || id >= next_id ||
        parent < 0 || parent >= id || (parent > 0 && !lineage.count(parent)) ||
        explored < 0 || explored > 1 || (parent == 0 && explored == 1)) {
      return MalformedSnapshot("lineage entry");
    }
    lineage[id] = Lineage{parent, explored == 1};
  }
  std::vector<Member> members;
  const Value& ml = root["members"];
  if (!ml.is_list()) return MalformedSnapshot("members");
  for (const Value& e : ml.as_list()) {
    int64_t id = 0, done = 0, dead = 0, has_metric = 0;
    Member m;
    if (!e.is_list() || e.as_list().size() != 6 ||
        !ReadInt(e.as_list()[0], &id) || !ReadInt(e.as_list()[1], &done) ||
        !ReadInt(e.as_list()[2], &dead) ||
        !ReadInt(e.as_list()[3], &has_metric) ||
        !ReadExactDouble(e.as_list()[4], &m.value) ||
        !ReadInt(e.as_list()[5], &m.length) || id < 0 ||
        (id > 0 && !lineage.count(id)) || (id == 0 && (!done || !dead)) ||
        (dead && !done)) {
      return MalformedSnapshot("member entry");
    }
    m.id = id;
    m.done = done != 0;
    m.dead = dead != 0;
    m.has_metric = has_metric != 0;
    members.push_back(m);
  }
  const bool started = root["started"].as_bool();
  if (started && static_cast<int64_t>(members.size()) != population) {
    return MalformedSnapshot("the population's size");
  }
  lineage_ = std::move(lineage);
  SetMembers(std::move(members));
  hparams_.clear();
  std::map<RequestId, ValueMap> hparams;
  for (const Member& m : members_) {
    if (m.id != 0) hparams[m.id] = HParamsOf(m.id);
  }
  hparams_ = std::move(hparams);
  next_id_ = next_id;
  round_ = round;
  closed_ = closed;
  failed_ = failed;
  started_ = started;
  shut_down_ = root["shut_down"].as_bool();
  canceled_ = root["canceled"].as_bool();
  return absl::OkStatus();
}

}  // namespace det::searcher
