#include "master/searcher/tournament_search.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "master/searcher/hparam_sampler.h"
#include "master/searcher/snapshot_json.h"

namespace det::searcher {
namespace {

constexpr int kSnapshotVersion = 1;
// The value a failed trial takes in its rung, and what NaN metrics become.
constexpr double kWorst = std::numeric_limits<double>::max();

int64_t MaxInvalid(int64_t max_trials) { return 10 * max_trials + 10; }

}  // namespace

TournamentSearch::TournamentSearch(TournamentOptions options)
    : options_(std::move(options)) {
  brackets_.resize(options_.brackets.size());
  for (size_t i = 0; i < brackets_.size(); ++i) {
    brackets_[i].rungs.resize(options_.brackets[i].rung_lengths.size());
  }
}

void TournamentSearch::Account(const Trial& t, int sign) {
  switch (t.state) {
    case TrialState::kRunning:
      progress_units_ +=
          sign * std::min(t.length, std::max<int64_t>(options_.max_length, 1));
      break;
    case TrialState::kInvalid:
      break;  // replaced; its replacement carries the progress
    default:
      progress_whole_ += sign;
  }
}

void TournamentSearch::End(Trial* t, TrialState state) {
  Account(*t, -1);
  t->state = state;
  Account(*t, 1);
  --brackets_[t->bracket].active;
}

bool TournamentSearch::CanCreate(int b) const {
  if (canceled_ || shut_down_) return false;
  const AshaBracket& spec = options_.brackets[b];
  const Bracket& state = brackets_[b];
  // Invalid trials are replaced (up to a limit) by not counting them.
  int64_t counted =
      options_.replace_invalid ? state.created - state.invalid : state.created;
  if (counted >= spec.max_trials) return false;
  if (options_.replace_invalid &&
      state.invalid >= MaxInvalid(spec.max_trials)) {
    return false;
  }
  return state.active < spec.max_concurrent_trials;
}

void TournamentSearch::CreateTrial(int b, Operations* ops) {
  RequestId id = next_id_++;
  Bracket& state = brackets_[b];
  Create create;
  create.request_id = id;
  create.hparams = options_.grid ? GridHParams(options_.hparams, state.created)
                                 : SampleHParams(options_.hparams,
                                                 options_.experiment_seed, id);
  create.seed = TrialSeed(options_.experiment_seed, id);
  ++state.created;
  ++state.active;
  Trial t;
  t.bracket = b;
  trials_[id] = t;

  ValidateAfter validate;
  validate.request_id = id;
  validate.length = options_.max_length;
  for (int64_t len : options_.brackets[b].rung_lengths) {
    if (len < options_.max_length &&
        (validate.validation_points.empty() ||
         validate.validation_points.back() < len)) {
      validate.validation_points.push_back(len);
    }
  }
  ops->push_back(std::move(create));
  ops->push_back(std::move(validate));
}

void TournamentSearch::Fill(Operations* ops) {
  for (int b = 0; b < static_cast<int>(brackets_.size()); ++b) {
    while (CanCreate(b)) CreateTrial(b, ops);
  }
  MaybeShutdown(ops);
}

void TournamentSearch::MaybeShutdown(Operations* ops) {
  if (shut_down_) return;
  for (int b = 0; b < static_cast<int>(brackets_.size()); ++b) {
    if (brackets_[b].active > 0 || CanCreate(b)) return;
  }
  shut_down_ = true;
  ops->push_back(Shutdown{closed_ == 0 && failed_ > 0});
}

double TournamentSearch::Normalize(double metric) const {
  if (std::isnan(metric)) return kWorst;
  double v = options_.smaller_is_better ? metric : -metric;
  return std::clamp(v, -kWorst, kWorst);
}

Operations TournamentSearch::InitialOperations() {
  Operations ops;
  if (started_) return ops;
  started_ = true;
  Fill(&ops);
  return ops;
}

Operations TournamentSearch::TrialCreated(RequestId id) { return {}; }

Operations TournamentSearch::ValidationCompleted(RequestId id, double metric,
                                                 int64_t length) {
  Operations ops;
  auto it = trials_.find(id);
  if (it == trials_.end() || it->second.state != TrialState::kRunning) {
    return ops;  // unknown, or already told to stop: its fate is decided
  }
  Trial& t = it->second;
  Account(t, -1);
  t.length = std::max(t.length, length);
  Account(t, 1);
  const AshaBracket& spec = options_.brackets[t.bracket];
  Bracket& bracket = brackets_[t.bracket];
  const double value = Normalize(metric);
  const int num_rungs = static_cast<int>(spec.rung_lengths.size());
  // Validations need not land on rung lengths: one may cover several rungs.
  while (t.next_rung < num_rungs && spec.rung_lengths[t.next_rung] <= length) {
    int r = t.next_rung++;
    std::vector<Entry>& rung = bracket.rungs[r];
    // Before any equal values: on ties the newcomer ranks first, as in
    // Determined.
    auto pos =
        std::lower_bound(rung.begin(), rung.end(), value,
                         [](const Entry& e, double v) { return e.first < v; });
    size_t rank = static_cast<size_t>(pos - rung.begin());
    rung.insert(pos, Entry{value, id});
    if (r == num_rungs - 1) break;  // top rung: done, it finishes by itself
    size_t keep =
        std::max<size_t>(static_cast<size_t>(static_cast<double>(rung.size()) /
                                             options_.divisor),
                         1);
    if (rank >= keep) {
      Account(t, -1);
      t.state = TrialState::kClosing;
      Account(t, 1);
      ops.push_back(Close{id});
      break;
    }
  }
  return ops;
}

Operations TournamentSearch::TrialClosed(RequestId id) {
  Operations ops;
  auto it = trials_.find(id);
  if (it == trials_.end() || !Active(it->second.state)) return ops;
  End(&it->second, TrialState::kClosed);
  ++closed_;
  Fill(&ops);
  return ops;
}

Operations TournamentSearch::TrialExitedEarly(RequestId id,
                                              ExitedReason reason) {
  Operations ops;
  auto it = trials_.find(id);
  if (it == trials_.end() || !Active(it->second.state)) return ops;
  Trial& t = it->second;
  Bracket& bracket = brackets_[t.bracket];
  switch (reason) {
    case ExitedReason::kErrored:
      // A trial already told to stop is ranked where it stopped. No value
      // exceeds kWorst (Normalize clamps), so the end of the sorted rung is
      // after every equal value, where a stable sort would put it.
      if (t.state == TrialState::kRunning &&
          t.next_rung < static_cast<int>(bracket.rungs.size())) {
        bracket.rungs[t.next_rung].push_back(Entry{kWorst, id});
      }
      End(&t, TrialState::kErrored);
      ++failed_;
      break;
    case ExitedReason::kInvalidHP:
      // An active trial has entries only in the rungs it has entered.
      for (int r = 0; r < t.next_rung; ++r) {
        std::vector<Entry>& rung = bracket.rungs[r];
        rung.erase(
            std::remove_if(rung.begin(), rung.end(),
                           [id](const Entry& e) { return e.second == id; }),
            rung.end());
      }
      End(&t, TrialState::kInvalid);
      ++bracket.invalid;
      ++failed_;
      break;
    case ExitedReason::kUserCanceled:
      End(&t, TrialState::kCanceled);
      canceled_ = true;
      break;
  }
  Fill(&ops);
  return ops;
}

double TournamentSearch::Progress() const {
  if (shut_down_) return 1.0;
  double total = 0;
  for (const AshaBracket& b : options_.brackets) {
    total += static_cast<double>(b.max_trials);
  }
  if (total <= 0) return 0;
  // Each trial counts 0..1: whole when told to stop or ended (except with
  // invalid hyperparameters: 0), else its validated share of max_length.
  double done =
      static_cast<double>(progress_whole_) +
      static_cast<double>(progress_units_) /
          static_cast<double>(std::max<int64_t>(options_.max_length, 1));
  return std::clamp(done / total, 0.0, 1.0);
}

std::string TournamentSearch::Snapshot() const {
  // Written directly as JSON (numbers, strings and booleans only); Restore
  // reads it back with det::ParseJson.
  auto boolean = [](bool b) { return b ? "true" : "false"; };
  std::string out = absl::StrCat(
      "{\"method\":\"", options_.method, "\",\"version\":", kSnapshotVersion,
      ",\"next_id\":", next_id_, ",\"started\":", boolean(started_),
      ",\"shut_down\":", boolean(shut_down_),
      ",\"canceled\":", boolean(canceled_), ",\"closed\":", closed_,
      ",\"failed\":", failed_, ",\"brackets\":[");
  for (size_t i = 0; i < brackets_.size(); ++i) {
    const AshaBracket& spec = options_.brackets[i];
    // The config-derived shape too, to refuse a snapshot of another search.
    absl::StrAppend(&out, i > 0 ? "," : "", "{\"num_rungs\":", spec.num_rungs,
                    ",\"max_trials\":", spec.max_trials,
                    ",\"max_concurrent_trials\":", spec.max_concurrent_trials,
                    ",\"created\":", brackets_[i].created,
                    ",\"invalid\":", brackets_[i].invalid, ",\"rungs\":[");
    for (size_t r = 0; r < brackets_[i].rungs.size(); ++r) {
      absl::StrAppend(&out, r > 0 ? "," : "", "[");
      const std::vector<Entry>& rung = brackets_[i].rungs[r];
      for (size_t k = 0; k < rung.size(); ++k) {
        absl::StrAppend(&out, k > 0 ? "," : "", "[", ExactDouble(rung[k].first),
                        ",", rung[k].second, "]");
      }
      absl::StrAppend(&out, "]");
    }
    absl::StrAppend(&out, "]}");
  }
  absl::StrAppend(&out, "],\"trials\":[");
  bool first = true;
  for (const auto& [id, t] : trials_) {
    absl::StrAppend(&out, first ? "" : ",", "[", id, ",", t.bracket, ",",
                    t.next_rung, ",", static_cast<int>(t.state), ",", t.length,
                    "]");
    first = false;
  }
  absl::StrAppend(&out, "]}");
  return out;
}

absl::Status TournamentSearch::Restore(const std::string& snapshot) {
  auto parsed = ParseJson(snapshot);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("searcher snapshot: ", parsed.status().message()));
  }
  auto bad = [](const std::string& what) {
    return absl::InvalidArgumentError(
        absl::StrCat("searcher snapshot is malformed: ", what));
  };
  const Value& root = *parsed;
  if (!root.is_map()) return bad("not a JSON object");
  if (!root["method"].is_string() ||
      root["method"].as_string() != options_.method) {
    return absl::InvalidArgumentError(absl::StrCat(
        "searcher snapshot is of a '",
        root["method"].is_string() ? root["method"].as_string() : "?",
        "' search, not '", options_.method, "'"));
  }
  int64_t version = 0;
  if (!ReadInt(root["version"], &version) || version != kSnapshotVersion) {
    return bad("unsupported version");
  }
  // Build the new state aside, so a bad snapshot leaves this one untouched.
  std::vector<Bracket> brackets(brackets_.size());
  std::map<RequestId, Trial> trials;
  int64_t next_id = 0, closed = 0, failed = 0;
  if (!ReadInt(root["next_id"], &next_id) || next_id < 1 ||
      !ReadInt(root["closed"], &closed) || !ReadInt(root["failed"], &failed) ||
      !root["started"].is_bool() || !root["shut_down"].is_bool() ||
      !root["canceled"].is_bool()) {
    return bad("missing counters");
  }
  const Value& bl = root["brackets"];
  if (!bl.is_list() || bl.as_list().size() != brackets_.size()) {
    return absl::InvalidArgumentError(
        "searcher snapshot has a different number of brackets than this "
        "config makes");
  }
  for (size_t i = 0; i < brackets.size(); ++i) {
    const Value& b = bl.as_list()[i];
    const AshaBracket& spec = options_.brackets[i];
    int64_t num_rungs = 0, max_trials = 0, max_concurrent = 0;
    if (!ReadInt(b["num_rungs"], &num_rungs) ||
        !ReadInt(b["max_trials"], &max_trials) ||
        !ReadInt(b["max_concurrent_trials"], &max_concurrent) ||
        !ReadInt(b["created"], &brackets[i].created) ||
        !ReadInt(b["invalid"], &brackets[i].invalid)) {
      return bad(absl::StrCat("bracket ", i));
    }
    if (num_rungs != spec.num_rungs || max_trials != spec.max_trials ||
        max_concurrent != spec.max_concurrent_trials) {
      return absl::InvalidArgumentError(absl::StrCat(
          "searcher snapshot's bracket ", i,
          " does not match this config (rungs, trials or concurrency)"));
    }
    const Value& rungs = b["rungs"];
    if (!rungs.is_list() ||
        rungs.as_list().size() != static_cast<size_t>(num_rungs)) {
      return bad(absl::StrCat("bracket ", i, " rungs"));
    }
    for (const Value& rung : rungs.as_list()) {
      if (!rung.is_list()) return bad("rung");
      std::vector<Entry> entries;
      for (const Value& e : rung.as_list()) {
        Entry entry;
        if (!e.is_list() || e.as_list().size() != 2 ||
            !ReadExactDouble(e.as_list()[0], &entry.first) ||
            !ReadInt(e.as_list()[1], &entry.second)) {
          return bad("rung entry");
        }
        entries.push_back(entry);
      }
      if (!std::is_sorted(entries.begin(), entries.end(),
                          [](const Entry& a, const Entry& b) {
                            return a.first < b.first;
                          })) {
        return bad("rung not sorted");
      }
      brackets[i].rungs.push_back(std::move(entries));
    }
  }
  const Value& tl = root["trials"];
  if (!tl.is_list()) return bad("trials");
  for (const Value& tv : tl.as_list()) {
    int64_t id = 0, bracket = 0, next_rung = 0, state = 0, length = 0;
    if (!tv.is_list() || tv.as_list().size() != 5 ||
        !ReadInt(tv.as_list()[0], &id) || !ReadInt(tv.as_list()[1], &bracket) ||
        !ReadInt(tv.as_list()[2], &next_rung) ||
        !ReadInt(tv.as_list()[3], &state) ||
        !ReadInt(tv.as_list()[4], &length) || id < 1 || id >= next_id ||
        bracket < 0 || bracket >= static_cast<int64_t>(brackets.size()) ||
        next_rung < 0 ||
        next_rung > options_.brackets[static_cast<size_t>(bracket)].num_rungs ||
        state < 0 || state > static_cast<int64_t>(TrialState::kCanceled)) {
      return bad("trial entry");
    }
    Trial t;
    t.bracket = static_cast<int>(bracket);
    t.next_rung = static_cast<int>(next_rung);
    t.state = static_cast<TrialState>(state);
    t.length = length;
    if (Active(t.state)) ++brackets[static_cast<size_t>(bracket)].active;
    trials[id] = t;
  }
  brackets_ = std::move(brackets);
  trials_ = std::move(trials);
  progress_whole_ = 0;
  progress_units_ = 0;
  for (const auto& [id, t] : trials_) Account(t, 1);
  next_id_ = next_id;
  closed_ = closed;
  failed_ = failed;
  started_ = root["started"].as_bool();
  shut_down_ = root["shut_down"].as_bool();
  canceled_ = root["canceled"].as_bool();
  return absl::OkStatus();
}

}  // namespace det::searcher
