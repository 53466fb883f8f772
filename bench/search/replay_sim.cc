#include "bench/search/replay_sim.h"

#include <deque>
#include <fstream>
#include <functional>
#include <memory>
#include <queue>
#include <set>
#include <tuple>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "master/searcher/searcher.h"

namespace det::bench {
namespace {

using searcher::RequestId;

struct Trial {
  enum State { kCreated, kQueued, kRunning, kClosed } state = kCreated;
  const RecordedRun* run = nullptr;
  int64_t length = 0;
  std::vector<int64_t> points;  // where it validates, ascending
  std::vector<double> at_s;     // time from its start to each point
  size_t next = 0;              // next point to reach
  double start_s = 0;
  int64_t generation = 0;  // its pending event is stale when this moved on
};

class Replay {
 public:
  Replay(const Table& table, const ExperimentConfig& config, int workers,
         double budget_s)
      : table_(table),
        config_(config),
        free_slots_(workers),
        budget_s_(budget_s) {}

  absl::StatusOr<SeedResult> Run() {
    absl::StatusOr<std::unique_ptr<searcher::SearchMethod>> m =
        searcher::NewSearchMethod(config_);
    if (!m.ok()) return m.status();
    method_ = std::move(*m);
    if (absl::Status s = Apply(method_->InitialOperations()); !s.ok()) return s;
    bool over_budget = false;
    while (!shutdown_ && !events_.empty()) {
      auto [t, seq, id, gen] = events_.top();
      events_.pop();
      if (t > budget_s_) {
        over_budget = true;
        break;
      }
      Trial& tr = trials_[id];
      if (tr.state != Trial::kRunning || tr.generation != gen) continue;
      now_ = t;
      const int64_t p = tr.points[tr.next++];
      const double acc = tr.run->accuracy.at(p);
      ++result_.validations;
      if (result_.curve.empty() || acc > result_.curve.back().second) {
        result_.curve.emplace_back(now_, acc);
      }
      if (absl::Status s = Apply(method_->ValidationCompleted(id, acc, p));
          !s.ok())
        return s;
      if (tr.state == Trial::kRunning) {
        if (tr.next == tr.points.size()) {
          if (absl::Status s = Finish(id); !s.ok()) return s;
        } else {
          Schedule(id);
        }
      }
    }
    // Ended before the budget: the search finished (or had nothing left).
    if (!over_budget) result_.end_s = now_;
    return result_;
  }

 private:
  absl::Status Apply(searcher::Operations ops) {
    std::deque<searcher::Operation> todo(ops.begin(), ops.end());
    while (!todo.empty()) {
      searcher::Operation op = std::move(todo.front());
      todo.pop_front();
      searcher::Operations more;
      if (auto* c = std::get_if<searcher::Create>(&op)) {
        absl::StatusOr<const bench::RecordedRun*> run = Lookup(c->hparams);
        if (!run.ok()) return run.status();
        Trial& tr = trials_[c->request_id];
        tr.run = *run;
        ++result_.trials;
        if (seen_.insert(*run).second) ++result_.distinct;
        more = method_->TrialCreated(c->request_id);
      } else if (auto* v = std::get_if<searcher::ValidateAfter>(&op)) {
        auto it = trials_.find(v->request_id);
        if (it == trials_.end()) {
          return absl::InternalError(
              absl::StrCat("ValidateAfter for unknown trial ", v->request_id));
        }
        if (absl::Status s = SetLength(it->second, *v); !s.ok()) return s;
        if (it->second.state == Trial::kCreated) {
          it->second.state = Trial::kQueued;
          queue_.push_back(v->request_id);
        }
      } else if (auto* c = std::get_if<searcher::Close>(&op)) {
        auto it = trials_.find(c->request_id);
        if (it == trials_.end() || it->second.state == Trial::kClosed) continue;
        Trial& tr = it->second;
        if (tr.state == Trial::kRunning) ++free_slots_;
        tr.state = Trial::kClosed;
        ++tr.generation;
        more = method_->TrialClosed(c->request_id);
      } else if (std::get_if<searcher::Shutdown>(&op)) {
        shutdown_ = true;
      }
      todo.insert(todo.end(), more.begin(), more.end());
    }
    return StartQueued();
  }

  // The master's ValidationBatches: the searcher's points, every
  // min_validation_period below the length, and the length.
  absl::Status SetLength(Trial& tr, const searcher::ValidateAfter& v) {
    std::set<int64_t> pts(v.validation_points.begin(),
                          v.validation_points.end());
    pts.insert(v.length);
    if (config_.min_validation_period.has_value() &&
        config_.min_validation_period->value > 0) {
      const int64_t period = config_.min_validation_period->value;
      for (int64_t b = period; b < v.length; b += period) pts.insert(b);
    }
    tr.length = v.length;
    tr.points.assign(pts.begin(), pts.end());
    tr.at_s.clear();
    for (int64_t p : tr.points) {
      if (!tr.run->wall_s.count(p)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the table has no validation at ", p,
            " batches (the config's rungs and min_validation_period must be "
            "table points; searcher.max_length at most the table's)"));
      }
      // The recorded run validated at every table point; this trial only
      // at its own.
      double t = tr.run->wall_s.at(p);
      for (const auto& [q, val] : tr.run->val_s) {
        if (q > p) break;
        if (!pts.count(q)) t -= val;
      }
      tr.at_s.push_back(t);
    }
    return absl::OkStatus();
  }

  absl::Status StartQueued() {
    while (free_slots_ > 0 && !queue_.empty()) {
      RequestId id = queue_.front();
      queue_.pop_front();
      Trial& tr = trials_[id];
      if (tr.state != Trial::kQueued) continue;
      --free_slots_;
      tr.state = Trial::kRunning;
      tr.start_s = now_;
      tr.next = 0;
      Schedule(id);
    }
    return absl::OkStatus();
  }

  void Schedule(RequestId id) {
    Trial& tr = trials_[id];
    events_.emplace(tr.start_s + tr.at_s[tr.next], seq_++, id, tr.generation);
  }

  absl::Status Finish(RequestId id) {
    Trial& tr = trials_[id];
    tr.state = Trial::kClosed;
    ++tr.generation;
    ++free_slots_;
    return Apply(method_->TrialClosed(id));
  }

  absl::StatusOr<const bench::RecordedRun*> Lookup(const ValueMap& hp) {
    std::vector<std::string> key;
    for (const std::string& name : table_.names) {
      auto it = hp.find(name);
      if (it == hp.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("hyperparameters: the table has '", name,
                         "' but the config does not sample it"));
      }
      key.push_back(Canon(it->second));
    }
    auto it = table_.runs.find(absl::StrJoin(key, "|"));
    if (it == table_.runs.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("hyperparameters ", Value(hp).ToJson(),
                       " are not in the table (its values: ",
                       absl::StrJoin(table_.names, ","), " = ",
                       absl::StrJoin(key, ","), ")"));
    }
    return &it->second;
  }

  const Table& table_;
  const ExperimentConfig& config_;
  std::unique_ptr<searcher::SearchMethod> method_;
  std::map<RequestId, Trial> trials_;
  std::deque<RequestId> queue_;
  // (time, sequence, trial, generation), earliest first.
  using Event = std::tuple<double, int64_t, RequestId, int64_t>;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  int64_t seq_ = 0;
  int free_slots_;
  double budget_s_;
  double now_ = 0;
  bool shutdown_ = false;
  std::set<const bench::RecordedRun*> seen_;
  SeedResult result_;
};

}  // namespace

std::string Canon(const std::string& text) {
  double d = 0;
  if (absl::SimpleAtod(text, &d)) return absl::StrFormat("%.6g", d);
  return text;
}

std::string Canon(const Value& v) {
  if (v.is_number()) return absl::StrFormat("%.6g", v.as_number());
  if (v.is_string()) return v.as_string();
  if (v.is_bool()) return v.as_bool() ? "true" : "false";
  return v.ToJson();
}

absl::StatusOr<Table> ReadTable(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  return ParseTable(in, path);
}

absl::StatusOr<Table> ParseTable(std::istream& in, const std::string& path) {
  std::string line;
  if (!std::getline(in, line)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": empty"));
  }
  std::vector<std::string> header = absl::StrSplit(line, ',');
  std::map<std::string, int> col;
  for (size_t i = 0; i < header.size(); ++i) col[header[i]] = i;
  for (const char* need :
       {"config", "batches", "accuracy", "wall_s", "val_s"}) {
    if (!col.count(need)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": no column '", need, "'"));
    }
  }
  Table t;
  const int first_hp = col["config"] + 1, end_hp = col["batches"];
  for (int i = first_hp; i < end_hp; ++i) t.names.push_back(header[i]);
  int lineno = 1;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    std::vector<std::string> f = absl::StrSplit(line, ',');
    if (f.size() != header.size()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", lineno, ": ", f.size(), " fields, expected ",
                       header.size()));
    }
    std::vector<std::string> key;
    for (int i = first_hp; i < end_hp; ++i) key.push_back(Canon(f[i]));
    int64_t batches = 0;
    double acc = 0, wall = 0, val = 0;
    if (!absl::SimpleAtoi(f[col["batches"]], &batches) ||
        !absl::SimpleAtod(f[col["accuracy"]], &acc) ||
        !absl::SimpleAtod(f[col["wall_s"]], &wall) ||
        !absl::SimpleAtod(f[col["val_s"]], &val)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", lineno, ": not a number"));
    }
    RecordedRun& r = t.runs[absl::StrJoin(key, "|")];
    r.accuracy[batches] = acc;
    r.wall_s[batches] = wall;
    r.val_s[batches] = val;
  }
  if (t.runs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": no rows"));
  }
  return t;
}

absl::StatusOr<SeedResult> ReplaySearch(const Table& table,
                                        const ExperimentConfig& config,
                                        int workers, double budget_s) {
  Replay replay(table, config, workers, budget_s);
  return replay.Run();
}

}  // namespace det::bench
