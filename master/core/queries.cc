// The read side of the client API: experiments, trials, metrics, logs,
// workers, the master itself. Live experiments are described from memory
// (always equal to the store: see store_health.cc); ended ones from the
// store. Changes nothing.
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rpc/states.h"
#include "common/version.h"
#include "master/core/master.h"

namespace det::master {

v1::Experiment Master::Describe(const ExperimentState& e) const {
  v1::Experiment x = e.rec.experiment;
  auto count = [&](v1::State s) {
    auto it = e.trial_counts.find(s);
    return it == e.trial_counts.end() ? 0 : it->second;
  };
  int total = static_cast<int>(e.trials.size());
  int queued = count(v1::STATE_QUEUED), completed = count(v1::STATE_COMPLETED),
      errored = count(v1::STATE_ERROR), canceled = count(v1::STATE_CANCELED),
      paused = count(v1::STATE_PAUSED);
  x.set_num_trials(total);
  x.set_trials_queued(queued);
  x.set_trials_running(total - queued - completed - errored - canceled -
                       paused);
  x.set_trials_completed(completed);
  x.set_trials_errored(errored);
  x.set_trials_canceled(canceled);
  x.set_progress(x.state() == v1::STATE_COMPLETED ? 1.0
                                                  : e.searcher->Progress());
  return x;
}

absl::StatusOr<v1::Experiment> Master::GetExperiment(int64_t id) {
  {
    absl::MutexLock l(&mu_);
    if (ExperimentState* e = FindExperiment(id)) return Describe(*e);
  }
  auto rec = store_->GetExperiment(id);
  if (!rec.ok()) {
    if (absl::IsNotFound(rec.status())) {
      return absl::NotFoundError(absl::StrCat("experiment ", id, " not found"));
    }
    return rec.status();
  }
  return rec->experiment;
}

absl::StatusOr<v1::Experiment> Master::GetStoredExperiment(int64_t id) {
  mu_.Unlock();
  auto x = GetExperiment(id);
  mu_.Lock();
  return x;
}

absl::StatusOr<std::vector<v1::Experiment>> Master::ListExperiments() {
  auto list = store_->ListExperiments();
  if (!list.ok()) return list.status();
  absl::MutexLock l(&mu_);
  for (v1::Experiment& x : *list) {
    if (ExperimentState* e = FindExperiment(x.id())) x = Describe(*e);
  }
  return list;
}

absl::StatusOr<std::vector<v1::Trial>> Master::ListTrials(
    int64_t experiment_id) {
  {
    absl::MutexLock l(&mu_);
    if (ExperimentState* e = FindExperiment(experiment_id)) {
      std::vector<v1::Trial> out;
      for (auto& [id, t] : e->trials) out.push_back(t.rec.trial);
      return out;
    }
  }
  auto rec = store_->GetExperiment(experiment_id);
  if (!rec.ok()) {
    return absl::NotFoundError(
        absl::StrCat("experiment ", experiment_id, " not found"));
  }
  auto trials = store_->ListTrials(experiment_id);
  if (!trials.ok()) return trials.status();
  std::vector<v1::Trial> out;
  for (auto& t : *trials) out.push_back(t.trial);
  return out;
}

absl::StatusOr<v1::Trial> Master::GetTrial(int64_t trial_id) {
  {
    absl::MutexLock l(&mu_);
    auto found = FindLiveTrial(trial_id);
    if (found.ok()) return found->second->rec.trial;
  }
  auto t = store_->GetTrial(trial_id);
  if (!t.ok()) {
    return absl::NotFoundError(absl::StrCat("trial ", trial_id, " not found"));
  }
  return t->trial;
}

absl::StatusOr<std::vector<v1::MetricReport>> Master::GetTrialMetrics(
    int64_t trial_id, v1::MetricGroup group) {
  auto t = GetTrial(trial_id);
  if (!t.ok()) return t.status();
  return store_->GetMetricReports(trial_id, group);
}

absl::StatusOr<std::vector<v1::Checkpoint>> Master::ListCheckpoints(
    int64_t trial_id) {
  auto t = GetTrial(trial_id);
  if (!t.ok()) return t.status();
  // Every state (the web page shows which ones garbage collection took).
  auto all = store_->ListExperimentCheckpoints(t->experiment_id());
  if (!all.ok()) return all.status();
  std::vector<v1::Checkpoint> out;
  for (v1::Checkpoint& c : *all) {
    if (c.trial_id() == trial_id) out.push_back(std::move(c));
  }
  return out;
}

absl::StatusOr<std::vector<v1::TrialLogLine>> Master::GetTrialLogs(
    int64_t trial_id, int64_t after_id, int limit) {
  auto t = GetTrial(trial_id);
  if (!t.ok()) return t.status();
  return store_->GetLogs(trial_id, after_id, limit);
}

bool Master::TrialIsLive(int64_t trial_id) {
  absl::MutexLock l(&mu_);
  auto found = FindLiveTrial(trial_id);
  return found.ok() && !IsTerminal(found->second->rec.trial.state());
}

absl::StatusOr<v1::Experiment> Master::WaitExperimentChange(
    int64_t id, int64_t* version, absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  ExperimentState* e = FindExperiment(id);
  if (e == nullptr) return GetStoredExperiment(id);
  absl::Time deadline = absl::Now() + timeout;
  while (!stopping_) {
    // Looked up after every wait: a reload replaces the experiment.
    e = FindExperiment(id);
    if (e == nullptr || e->version != *version) break;
    if (changed_.WaitWithDeadline(&mu_, deadline)) break;
  }
  if (e == nullptr) return GetStoredExperiment(id);
  *version = e->version;
  return Describe(*e);
}

std::vector<v1::Agent> Master::ListAgents() {
  absl::MutexLock l(&mu_);
  std::vector<v1::Agent> out;
  for (auto& [id, a] : workers_) {
    v1::Agent x = a.agent;
    for (v1::Slot& s : *x.mutable_slots()) s.set_trial_id(0);
    for (auto& [eid, e] : experiments_) {
      for (auto& [tid, t] : e->trials) {
        if (!t.running) continue;
        auto held = scheduler_.SlotsOf(tid);
        auto it = held.find(id);
        if (it == held.end()) continue;
        for (int32_t sid : it->second) {
          for (v1::Slot& s : *x.mutable_slots()) {
            if (s.id() == sid) s.set_trial_id(tid);
          }
        }
      }
    }
    out.push_back(std::move(x));
  }
  return out;
}

void Master::SetAddresses(const std::string& grpc, const std::string& http) {
  absl::MutexLock l(&mu_);
  if (!grpc.empty()) options_.grpc_address = grpc;
  if (!http.empty()) options_.http_address = http;
}

v1::MasterInfo Master::GetMasterInfo() {
  absl::MutexLock l(&mu_);
  v1::MasterInfo info;
  info.set_version(kVersion);
  info.set_cluster_id(cluster_id_);
  info.set_start_time_us(absl::ToUnixMicros(start_time_));
  info.set_grpc_address(options_.grpc_address);
  info.set_http_address(options_.http_address);
  info.set_protocol_version(kProtocolVersion);
  int n = 0;
  for (auto& [id, a] : workers_) n += a.agent.connected() ? 1 : 0;
  info.set_num_agents(n);
  info.set_slots_total(scheduler_.TotalSlots());
  info.set_slots_used(scheduler_.UsedSlots());
  info.set_store_available(store_health_.available);
  if (!store_health_.available) {
    info.set_store_unavailable_since_us(
        absl::ToUnixMicros(store_health_.unavailable_since));
    info.set_store_error(store_health_.reason);
  }
  return info;
}

}  // namespace det::master
