// The TournamentSearch snapshot codec: the whole state as JSON and back.
#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "master/searcher/snapshot_json.h"
#include "master/searcher/tournament_search.h"

namespace det::searcher {
namespace {

constexpr int kSnapshotVersion = 1;

}  // namespace

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
  absl::StrAppend(&out, "]", SnapshotTpe(), "}");
  return out;
}

std::string TournamentSearch::SnapshotTpe() const {
  // Absent for the random sampler: its draws are functions of the seed.
  if (!tpe()) return "";
  // Each trial's point and last result: [id, [x...], last or null].
  std::string out = ",\"sampler\":\"tpe\",\"tpe\":[";
  bool first = true;
  for (const auto& [id, t] : trials_) {
    absl::StrAppend(&out, first ? "" : ",", "[", id, ",[");
    for (size_t i = 0; i < t.point.size(); ++i) {
      absl::StrAppend(&out, i > 0 ? "," : "", ExactDouble(t.point[i]));
    }
    absl::StrAppend(&out, "],", t.has_last ? ExactDouble(t.last) : "null", "]");
    first = false;
  }
  absl::StrAppend(&out, "]");
  return out;
}

absl::Status TournamentSearch::RestoreTpe(
    const Value& root, std::map<RequestId, Trial>* trials) const {
  const std::string sampler =
      root["sampler"].is_string() ? root["sampler"].as_string() : "random";
  const std::string mine = SamplerNameString(options_.sampler);
  if (sampler != mine) {
    return absl::InvalidArgumentError(
        absl::StrCat("searcher snapshot uses the ", sampler,
                     " sampler, this config the ", mine, " sampler"));
  }
  if (!tpe()) return absl::OkStatus();
  auto bad = [](const std::string& what) {
    return MalformedSnapshot(absl::StrCat("tpe ", what));
  };
  const Value& list = root["tpe"];
  if (!list.is_list() || list.as_list().size() != trials->size()) {
    return bad("points (one per trial)");
  }
  std::set<RequestId> seen;
  for (const Value& e : list.as_list()) {
    int64_t id = 0;
    if (!e.is_list() || e.as_list().size() != 3 ||
        !ReadInt(e.as_list()[0], &id) || trials->count(id) == 0 ||
        !seen.insert(id).second || !e.as_list()[1].is_list() ||
        e.as_list()[1].as_list().size() != tpe_dims_.size()) {
      return bad("point");
    }
    Trial& t = (*trials)[id];
    t.point.clear();
    for (size_t i = 0; i < tpe_dims_.size(); ++i) {
      double x = 0;
      const tpe::Dimension& d = tpe_dims_[i];
      const double hi = d.kind == tpe::Dimension::Kind::kCategorical
                            ? static_cast<double>(d.choices - 1)
                            : d.high;
      const double lo =
          d.kind == tpe::Dimension::Kind::kCategorical ? 0 : d.low;
      const bool whole = d.kind != tpe::Dimension::Kind::kContinuous;
      if (!ReadExactDouble(e.as_list()[1].as_list()[i], &x) || !(x >= lo) ||
          !(x <= hi) || (whole && x != std::floor(x))) {
        return bad("point value out of its range");
      }
      t.point.push_back(x);
    }
    const Value& last = e.as_list()[2];
    t.has_last = !last.is_null();
    if (t.has_last && !ReadExactDouble(last, &t.last)) return bad("result");
  }
  return absl::OkStatus();
}

absl::Status TournamentSearch::Restore(const std::string& snapshot) {
  auto parsed = ParseSnapshot(snapshot, options_.method, kSnapshotVersion);
  if (!parsed.ok()) return parsed.status();
  const Value& root = *parsed;
  // Build the new state aside, so a bad snapshot leaves this one untouched.
  std::vector<Bracket> brackets(brackets_.size());
  std::map<RequestId, Trial> trials;
  int64_t next_id = 0, closed = 0, failed = 0;
  if (!ReadInt(root["next_id"], &next_id) || next_id < 1 ||
      !ReadInt(root["closed"], &closed) || !ReadInt(root["failed"], &failed) ||
      !root["started"].is_bool() || !root["shut_down"].is_bool() ||
      !root["canceled"].is_bool()) {
    return MalformedSnapshot("missing counters");
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
      return MalformedSnapshot(absl::StrCat("bracket ", i));
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
      return MalformedSnapshot(absl::StrCat("bracket ", i, " rungs"));
    }
    for (const Value& rung : rungs.as_list()) {
      if (!rung.is_list()) return MalformedSnapshot("rung");
      std::vector<Entry> entries;
      for (const Value& e : rung.as_list()) {
        Entry entry;
        if (!e.is_list() || e.as_list().size() != 2 ||
            !ReadExactDouble(e.as_list()[0], &entry.first) ||
            !ReadInt(e.as_list()[1], &entry.second)) {
          return MalformedSnapshot("rung entry");
        }
        entries.push_back(entry);
      }
      if (!std::is_sorted(entries.begin(), entries.end(),
                          [](const Entry& a, const Entry& b) {
                            return a.first < b.first;
                          })) {
        return MalformedSnapshot("rung not sorted");
      }
      brackets[i].rungs.push_back(std::move(entries));
    }
  }
  const Value& tl = root["trials"];
  if (!tl.is_list()) return MalformedSnapshot("trials");
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
      return MalformedSnapshot("trial entry");
    }
    Trial t;
    t.bracket = static_cast<int>(bracket);
    t.next_rung = static_cast<int>(next_rung);
    t.state = static_cast<TrialState>(state);
    t.length = length;
    if (Active(t.state)) ++brackets[static_cast<size_t>(bracket)].active;
    trials[id] = t;
  }
  if (absl::Status st = RestoreTpe(root, &trials); !st.ok()) return st;
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
