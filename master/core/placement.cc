// Queueing trials, placing them on slots, and telling workers to start or
// stop them. Owns: the scheduler's requests, a run's StartTrial (through
// BuildSpec), the unschedulable-trial note on an experiment. Touches trial
// state only to mark a placed trial ACTIVE with its slots.
#include "master/core/placement.h"

#include <algorithm>
#include <optional>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/rpc/states.h"
#include "common/status_macros.h"
#include "master/core/master.h"
#include "master/core/trial_lengths.h"

namespace det::master {
namespace {

int64_t NowUs() { return absl::ToUnixMicros(absl::Now()); }

}  // namespace

int RendezvousPort(int64_t trial_id, int32_t run_id) {
  return 20000 + static_cast<int>((trial_id * 7919 + run_id * 104729) % 20000);
}

std::string CheckpointDir(const CheckpointStorageConfig& cs,
                          const std::string& default_root,
                          const std::string& worker_root) {
  if (cs.type == "directory") return cs.container_path;
  if (!worker_root.empty()) return worker_root;
  std::string dir = cs.host_path.empty() ? default_root : cs.host_path;
  if (!cs.storage_path.empty()) {
    if (cs.storage_path.front() == '/') return cs.storage_path;
    dir = absl::StrCat(dir, "/", cs.storage_path);
  }
  return dir;
}

checkpoints::CheckpointInfo CheckpointInfoOf(const v1::Checkpoint& c) {
  checkpoints::CheckpointInfo info;
  info.uuid = c.uuid();
  info.trial_id = c.trial_id();
  info.steps_completed = c.steps_completed();
  info.time_us = c.time_us();
  return info;
}

bool NewerCheckpoint(const v1::Checkpoint& a, const v1::Checkpoint& b) {
  return checkpoints::Newer(CheckpointInfoOf(a), CheckpointInfoOf(b));
}

std::vector<v1::Checkpoint> RestoreCandidates(
    std::vector<v1::Checkpoint> checkpoints) {
  std::sort(checkpoints.begin(), checkpoints.end(), NewerCheckpoint);
  if (checkpoints.size() > kRestoreCandidates) {
    checkpoints.resize(kRestoreCandidates);
  }
  return checkpoints;
}

void BuildSpec(const store::ExperimentRecord& exp,
               const ExperimentConfig& config, const store::TrialRecord& rec,
               int64_t records_per_epoch,
               const std::vector<v1::Checkpoint>& restore_candidates,
               v1::TrialSpec* spec) {
  const v1::Trial& t = rec.trial;
  spec->set_experiment_id(exp.experiment.id());
  spec->set_trial_id(t.id());
  spec->set_run_id(rec.run_id);
  *spec->mutable_hparams() = t.hparams();
  spec->set_seed(t.seed());
  spec->set_target_batches(t.target_batches());
  for (int64_t b : ValidationBatches(config, records_per_epoch, rec)) {
    spec->add_validation_points(b);
  }
  spec->set_checkpoint_period(rec.checkpoint_period);
  for (const v1::Checkpoint& c : restore_candidates) {
    *spec->add_restore_candidates() = c;
  }
  ToProto(config.data, spec->mutable_data());
  spec->set_records_per_epoch(records_per_epoch);
  spec->set_entrypoint(config.entrypoint);
  // For trial code in Determined's older searcher-operations form.
  spec->set_searcher_metric(config.searcher.metric);
  spec->set_length_unit(config.searcher.metric_length
                            ? config.searcher.time_metric
                            : UnitName(config.searcher.max_length.unit));
  for (const std::string& kv : config.environment_variables) {
    spec->add_environment_variables(kv);
  }
  for (const std::string& kv : config.environment_variables_cuda) {
    spec->add_environment_variables_cuda(kv);
  }
  spec->set_context(exp.context);
  spec->set_world_size(static_cast<int32_t>(config.resources.slots_per_trial));
}

void Master::Enqueue(ExperimentState* e, TrialState* t) {
  t->queued_at = absl::Now();
  scheduler::Request r;
  r.trial_id = t->rec.trial.id();
  r.experiment_id = e->rec.experiment.id();
  r.slots = static_cast<int32_t>(e->config.resources.slots_per_trial);
  r.priority = static_cast<int32_t>(e->config.resources.priority);
  r.order = e->order * 1000000000LL + t->rec.trial.id();
  if (e->config.resources.max_slots) {
    r.experiment_max_slots =
        static_cast<int32_t>(*e->config.resources.max_slots);
  }
  scheduler_.Enqueue(r);
}

void Master::StopTrialProcess(TrialState* t, bool kill) {
  for (const std::string& w : t->workers) {
    v1::MasterMessage m;
    auto* s = m.mutable_stop_trial();
    s->set_trial_id(t->rec.trial.id());
    s->set_kill(kill);
    s->set_timeout_ms(absl::ToInt64Milliseconds(options_.stop_timeout));
    SendToWorker(w, std::move(m));
  }
  t->stop_sent = true;
}

void Master::ScheduleLocked() {
  if (!store_health_.available) return;  // nothing may change until it is
  std::vector<scheduler::Placement> placements = scheduler_.Schedule();
  if (!placements.empty()) {
    // One transaction for the whole pass: a commit per start would hold
    // back the StartTrials of the next chunk of a burst. The StartTrials
    // go out when it commits; if it fails, the master reloads and the
    // trials are queued again.
    std::vector<ExperimentState*> placed;
    absl::Status st = Transact([&]() -> absl::Status {
      for (const scheduler::Placement& p : placements) {
        auto found = FindLiveTrial(p.trial_id);
        if (!found.ok()) {
          scheduler_.Release(p.trial_id);
          continue;
        }
        auto [e, t] = *found;
        v1::Trial& pt = t->rec.trial;
        // A trial that has never run has no checkpoint to restore.
        std::vector<v1::Checkpoint> candidates;
        if (t->rec.run_id > 0) {
          DET_ASSIGN_OR_RETURN(candidates, store_->ListCheckpoints(pt.id()));
          candidates = RestoreCandidates(std::move(candidates));
        }
        // Nothing of its own to restore: a warm start, when it has one.
        std::optional<WarmStartSource> warm;
        if (candidates.empty() && !pt.warm_start_uuid().empty()) {
          DET_ASSIGN_OR_RETURN(warm, LookUpWarmStart(e, pt.warm_start_uuid()));
        }
        t->rec.run_id++;
        SetTrialState(e, t, v1::STATE_ACTIVE);
        if (pt.start_time_us() == 0) pt.set_start_time_us(NowUs());
        pt.clear_slot_ids();
        t->workers.clear();
        t->running = true;
        t->stop_sent = false;
        t->awaiting_worker = false;
        std::string rendezvous;
        if (e->config.resources.slots_per_trial > 1) {
          const WorkerSession& first = workers_.at(p.slots.begin()->first);
          rendezvous = absl::StrCat(first.host, ":",
                                    RendezvousPort(pt.id(), t->rec.run_id));
        }
        v1::TrialSpec spec;
        BuildSpec(e->rec, e->config, t->rec, RecordsPerEpoch(*e), candidates,
                  &spec);
        spec.set_rendezvous(rendezvous);
        int32_t rank = 0;
        for (const auto& [worker, slots] : p.slots) {
          t->workers.push_back(worker);
          for (int32_t s : slots) pt.add_slot_ids(s);
          v1::MasterMessage m;
          v1::StartTrial* start = m.mutable_start_trial();
          *start->mutable_spec() = spec;
          auto wit = workers_.find(worker);
          const std::string worker_root =
              wit == workers_.end() ? "" : wit->second.checkpoint_root;
          start->mutable_spec()->set_checkpoint_dir(
              CheckpointDir(e->config, options_.checkpoint_root, worker_root));
          if (warm) {
            *start->mutable_spec()->mutable_warm_start() = warm->checkpoint;
            start->mutable_spec()->set_warm_start_dir(CheckpointDir(
                warm->config, options_.checkpoint_root, worker_root));
          }
          start->mutable_spec()->set_first_rank(rank);
          for (int32_t s : slots) start->add_slot_ids(s);
          rank += static_cast<int32_t>(slots.size());
          SendToWorker(worker, std::move(m));
        }
        // Ready -> StartTrial queued for the worker's stream.
        if (options_.metrics != nullptr && t->queued_at != absl::Time()) {
          options_.metrics->ObserveSchedulingLatency(absl::Now() -
                                                     t->queued_at);
        }
        pt.set_agent_id(t->workers.empty() ? "" : t->workers.front());
        DET_RETURN_IF_ERROR(SaveTrial(t));
        placed.push_back(e);
      }
      return absl::OkStatus();
    });
    if (st.ok()) {
      for (ExperimentState* e : placed) Touch(e);
    }
  }
  ReportUnschedulable();
}

void Master::ReportUnschedulable() {
  // Trials that can never fit on this cluster are reported on their
  // experiment rather than left pending silently.
  std::set<int64_t> unschedulable;
  for (int64_t id : scheduler_.Unschedulable()) unschedulable.insert(id);
  // The walk below is over every trial: skip it in the common case where
  // nothing is unschedulable now and no message from before needs clearing.
  if (unschedulable.empty() && !unschedulable_reported_) return;
  unschedulable_reported_ = !unschedulable.empty();
  for (auto& [eid, e] : experiments_) {
    if (IsTerminal(e->rec.experiment.state())) continue;
    std::string msg;
    for (auto& [tid, t] : e->trials) {
      if (unschedulable.count(tid)) {
        msg = absl::StrFormat(
            "trial %d needs %d slots, more than the %d slots of all "
            "connected workers together; it waits for more workers",
            tid, e->config.resources.slots_per_trial, scheduler_.TotalSlots());
        break;
      }
    }
    std::string& cur = *e->rec.experiment.mutable_message();
    bool had = cur.rfind("trial ", 0) == 0 && cur.find("needs") != cur.npos;
    if (!msg.empty() && cur != msg) {
      cur = msg;
      Touch(e.get());
    } else if (msg.empty() && had) {
      cur.clear();
      Touch(e.get());
    }
  }
}

}  // namespace det::master
