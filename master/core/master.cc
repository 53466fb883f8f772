// The Master's construction, its ticker, and the small helpers every other
// file of the core uses (lookups, trial state changes, saving a trial).
#include "master/core/master.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rpc/states.h"
#include "common/status_macros.h"
#include "master/core/trial_lengths.h"

namespace det::master {

Master::Master(std::unique_ptr<store::Store> store, MasterOptions options)
    : store_(std::move(store)),
      options_(std::move(options)),
      start_time_(absl::Now()) {}

absl::StatusOr<std::unique_ptr<Master>> Master::Create(
    std::unique_ptr<store::Store> store, MasterOptions options) {
  std::unique_ptr<Master> m(new Master(std::move(store), std::move(options)));
  auto id = m->store_->ClusterId();
  if (!id.ok()) return id.status();
  m->cluster_id_ = *id;
  {
    absl::MutexLock l(&m->mu_);
    m->probe_backoff_ = m->options_.store_probe_initial;
    DET_RETURN_IF_ERROR(m->Load());
    // Trial creations cut off by a stop between chunks. A failure here
    // leaves the master in outage mode; the probe carries them out later.
    std::vector<int64_t> pending;
    for (auto& [id, e] : m->experiments_) {
      if (!e->pending.empty()) pending.push_back(id);
    }
    for (int64_t id : pending) {
      ExperimentState* e = m->FindExperiment(id);
      if (e != nullptr && !m->CarryOutPending(e).ok()) break;
    }
  }
  if (m->options_.tick_interval <= absl::ZeroDuration()) return m;
  Master* p = m.get();
  m->ticker_ = std::thread([p] {
    while (true) {
      {
        absl::MutexLock l(&p->mu_);
        auto stop = [p]() ABSL_SHARED_LOCKS_REQUIRED(p->mu_) {
          return p->stopping_;
        };
        p->mu_.AwaitWithTimeout(absl::Condition(&stop),
                                p->options_.tick_interval);
        if (p->stopping_) return;
      }
      p->Tick();
    }
  });
  return m;
}

Master::~Master() {
  {
    absl::MutexLock l(&mu_);
    stopping_ = true;
    for (auto& [id, w] : workers_) {
      if (w.outbox) w.outbox->Close();
    }
    changed_.SignalAll();
  }
  if (ticker_.joinable()) ticker_.join();
}

void Master::Tick() {
  absl::MutexLock l(&mu_);
  if (!store_health_.available) {
    ProbeStore();
    if (!store_health_.available) return;
  }
  CheckWorkers();
  ScheduleLocked();
  CheckpointGcTick();
  if (options_.worker_source != nullptr && store_health_.available) {
    ConsultWorkerSource();
  }
}

Master::ExperimentState* Master::FindExperiment(int64_t id) {
  auto it = experiments_.find(id);
  return it == experiments_.end() ? nullptr : it->second.get();
}

absl::StatusOr<std::pair<Master::ExperimentState*, Master::TrialState*>>
Master::FindLiveTrial(int64_t trial_id) {
  for (auto& [id, e] : experiments_) {
    auto it = e->trials.find(trial_id);
    if (it != e->trials.end()) return std::make_pair(e.get(), &it->second);
  }
  return absl::NotFoundError(absl::StrCat("trial ", trial_id, " not found"));
}

void Master::Touch(ExperimentState* e) {
  e->version++;
  changed_.SignalAll();
}

void Master::SetTrialState(ExperimentState* e, TrialState* t, v1::State s) {
  e->trial_counts[t->rec.trial.state()]--;
  e->trial_counts[s]++;
  t->rec.trial.set_state(s);
}

absl::Status Master::SaveTrial(TrialState* t) {
  return store_->UpdateTrial(t->rec);
}

int64_t Master::RecordsPerEpoch(const ExperimentState& e) const {
  return master::RecordsPerEpoch(e.config, options_.default_records_per_epoch);
}

}  // namespace det::master
