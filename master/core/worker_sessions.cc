// Worker sessions: a worker's Hello, its stream ending, its loss. Owns the
// reconciliation between what the master placed on a worker and what the
// worker says it runs: a run both agree on is kept; a run the worker has
// and the master does not expect is stopped; a run the master expects and
// the worker does not report is lost (restarted from its checkpoint,
// counted against max_restarts only if it had started).
#include "master/core/worker_sessions.h"

#include <algorithm>
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/rpc/states.h"
#include "common/status_macros.h"
#include "common/version.h"
#include "master/core/master.h"

namespace det::master {
namespace {

int64_t NowUs() { return absl::ToUnixMicros(absl::Now()); }

}  // namespace

std::string SeqKey(const std::string& worker_id,
                   const std::string& incarnation) {
  return absl::StrCat(worker_id, "/", incarnation);
}

std::string HostOfPeer(const std::string& peer) {
  std::string p = peer;
  for (const char* prefix : {"ipv4:", "ipv6:"}) {
    if (p.rfind(prefix, 0) == 0) p = p.substr(std::string(prefix).size());
  }
  if (!p.empty() && p.front() == '[') {
    size_t close = p.find(']');
    return close == std::string::npos ? p : p.substr(1, close - 1);
  }
  size_t colon = p.rfind(':');
  return colon == std::string::npos ? p : p.substr(0, colon);
}

absl::StatusOr<v1::Welcome> Master::WorkerConnected(
    const v1::Hello& hello, const std::string& peer,
    std::shared_ptr<WorkerOutbox> outbox) {
  if (hello.protocol_version() != kProtocolVersion) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "worker %s speaks protocol version %d but this master speaks "
        "version %d (master %s, worker %s); upgrade the older one",
        hello.worker_id(), hello.protocol_version(), kProtocolVersion, kVersion,
        hello.version()));
  }
  if (hello.worker_id().empty()) {
    return absl::InvalidArgumentError("worker sent an empty worker_id");
  }
  absl::MutexLock l(&mu_);
  // UNAVAILABLE: the worker backs off and tries again.
  if (!store_health_.available) return StoreUnavailableError();
  const std::string& id = hello.worker_id();
  v1::Welcome w;
  DET_RETURN_IF_ERROR(Transact([&]() -> absl::Status {
    WorkerSession& a = workers_[id];
    if (a.outbox && a.outbox != outbox) a.outbox->Close();
    const bool restarted =
        !a.incarnation.empty() && a.incarnation != hello.incarnation();
    a.incarnation = hello.incarnation();
    a.outbox = outbox;
    a.last_seen = absl::Now();
    a.host = hello.host().empty() ? HostOfPeer(peer) : hello.host();
    a.checkpoint_root = hello.checkpoint_root();
    a.lost = false;
    v1::Agent& ag = a.agent;
    ag.set_id(id);
    ag.set_address(peer);
    ag.set_version(hello.version());
    ag.set_connected(true);
    ag.clear_slots();
    for (const v1::Slot& s : hello.slots()) *ag.add_slots() = s;
    ag.set_registered_time_us(NowUs());
    ag.set_last_heartbeat_us(NowUs());

    if (a.in_scheduler) scheduler_.RemoveWorker(id);
    scheduler_.AddWorker(id, static_cast<int32_t>(hello.slots_size()));
    a.in_scheduler = true;

    w.set_cluster_id(cluster_id_);
    w.set_heartbeat_interval_ms(
        absl::ToInt64Milliseconds(options_.heartbeat_interval));
    w.set_agent_timeout_ms(absl::ToInt64Milliseconds(options_.agent_timeout));
    DET_ASSIGN_OR_RETURN(int64_t seq,
                         store_->GetWorkerSeq(SeqKey(id, a.incarnation)));
    w.set_last_seq(seq);
    a.last_seq = seq;

    // Runs the worker still has: keep those the master wants, stop others.
    std::set<int64_t> claimed;
    for (const v1::RunningTrial& r : hello.running()) {
      auto found = FindLiveTrial(r.trial_id());
      bool keep = false;
      if (found.ok()) {
        auto [e, t] = *found;
        bool ours = std::find(t->workers.begin(), t->workers.end(), id) !=
                    t->workers.end();
        keep = t->running && t->rec.run_id == r.run_id() &&
               (ours || t->awaiting_worker) &&
               !IsTerminal(t->rec.trial.state());
        // An ended run whose exit report is on its way holds no slots.
        if (keep && !r.exited()) {
          std::map<std::string, std::vector<int32_t>> slots;
          slots[id].assign(r.slot_ids().begin(), r.slot_ids().end());
          keep =
              scheduler_.Reserve(r.trial_id(), e->rec.experiment.id(), slots);
        }
        if (keep) {
          t->awaiting_worker = false;
          if (!ours) t->workers.push_back(id);
          claimed.insert(r.trial_id());
          if (!r.exited() &&
              (t->rec.trial.closing() || t->rec.trial.kill_requested() ||
               e->rec.experiment.state() != v1::STATE_ACTIVE)) {
            // A stop sent while the worker was away may have been lost.
            bool kill =
                e->rec.experiment.state() == v1::STATE_STOPPING_KILLED ||
                t->rec.trial.kill_requested();
            StopTrialProcess(t, kill);
          }
        }
      }
      if (!keep && !r.exited()) w.add_stop_trial_ids(r.trial_id());
    }
    // Runs placed on this worker that it does not report: gone (a new
    // worker process, or a StartTrial that never reached it).
    DET_RETURN_IF_ERROR(LoseTrialsOfWorker(
        id, claimed,
        restarted
            ? absl::StrCat("worker ", id, " restarted")
            : absl::StrCat("worker ", id, " reconnected without this run")));
    // Deletions asked of its previous stream may be lost: ask again.
    for (auto& [uuid, p] : gc_pending_) {
      if (p.sent_to == id) p.sent_to.clear();
    }
    SendCheckpointDeletions(/*allow_local=*/false);
    return store_->UpsertAgent(ag);
  }));
  ScheduleLocked();
  return w;
}

void Master::WorkerDisconnected(const std::string& worker_id,
                                const std::shared_ptr<WorkerOutbox>& outbox) {
  absl::MutexLock l(&mu_);
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || it->second.outbox != outbox) return;
  WorkerSession& a = it->second;
  a.outbox->Close();
  a.outbox.reset();
  a.agent.set_connected(false);
  a.last_seen = absl::Now();
  // No new work goes to it; its running trials wait for it to come back
  // until agent_timeout (CheckWorkers), then restart elsewhere.
  if (a.in_scheduler) {
    scheduler_.RemoveWorker(worker_id);
    a.in_scheduler = false;
  }
  if (!store_health_.available) return;  // shown from memory meanwhile
  v1::Agent record = a.agent;
  (void)Transact([&] { return store_->UpsertAgent(record); });
}

void Master::WorkerLost(const std::string& worker_id, const std::string& why) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end()) return;
  WorkerSession& a = it->second;
  a.lost = true;
  if (a.outbox) {
    a.outbox->Close();
    a.outbox.reset();
  }
  a.agent.set_connected(false);
  if (a.in_scheduler) {
    scheduler_.RemoveWorker(worker_id);
    a.in_scheduler = false;
  }
  v1::Agent record = a.agent;
  const std::string reason =
      why.empty()
          ? absl::StrCat("worker ", worker_id, " lost (no heartbeat for ",
                         absl::FormatDuration(options_.agent_timeout), ")")
          : why;
  absl::Status st = Transact([&]() -> absl::Status {
    if (!why.empty()) {
      // Said on every experiment that had a trial there.
      for (auto& [eid, e] : experiments_) {
        bool ran = false;
        for (auto& [tid, t] : e->trials) {
          ran =
              ran || (t.running && std::find(t.workers.begin(), t.workers.end(),
                                             worker_id) != t.workers.end());
        }
        if (!ran) continue;
        e->rec.experiment.set_message(why);
        DET_RETURN_IF_ERROR(SaveExperiment(e.get()));
        Touch(e.get());
      }
    }
    DET_RETURN_IF_ERROR(LoseTrialsOfWorker(worker_id, {}, reason));
    return store_->UpsertAgent(record);
  });
  if (!st.ok()) {
    std::fprintf(stderr, "master: handling lost worker %s: %s\n",
                 worker_id.c_str(), std::string(st.message()).c_str());
  }
}

void Master::ConsultWorkerSource() {
  WorkerSource::Demand demand;
  demand.now = absl::Now();
  demand.unplaceable_slots = scheduler_.QueuedSlots();
  for (auto& [id, w] : workers_) {
    if (w.agent.connected()) demand.idle[id] = true;
  }
  for (auto& [eid, e] : experiments_) {
    for (auto& [tid, t] : e->trials) {
      if (!t.running) continue;
      for (const std::string& w : t.workers) {
        auto it = demand.idle.find(w);
        if (it != demand.idle.end()) it->second = false;
      }
    }
  }
  options_.worker_source->Observe(demand);
  for (const WorkerSource::Ended& ended : options_.worker_source->TakeEnded()) {
    if (!workers_.count(ended.worker_id) || workers_[ended.worker_id].lost) {
      continue;
    }
    WorkerLost(ended.worker_id, ended.message);
    if (!store_health_.available) return;
  }
}

void Master::CheckWorkers() {
  absl::Time now = absl::Now();
  std::vector<std::string> lost;
  for (auto& [id, a] : workers_) {
    if (a.lost) continue;
    if (now - a.last_seen > options_.agent_timeout) lost.push_back(id);
  }
  for (const std::string& id : lost) {
    WorkerLost(id);
    if (!store_health_.available) return;
  }
  // Trials that were running when the master (re)loaded and whose worker
  // never came back to claim them.
  if (now - loaded_at_ <= options_.agent_timeout) return;
  bool any = false;
  for (auto& [eid, e] : experiments_) {
    for (auto& [tid, t] : e->trials) any = any || t.awaiting_worker;
  }
  if (!any) return;
  absl::Status st = Transact([&]() -> absl::Status {
    for (auto& [eid, e] : experiments_) {
      for (auto& [tid, t] : e->trials) {
        if (!t.awaiting_worker) continue;
        DET_RETURN_IF_ERROR(OnTrialLost(
            e.get(), &t, "its worker did not return after a master restart",
            /*free_if_not_started=*/true));
      }
    }
    return absl::OkStatus();
  });
  if (!st.ok()) {
    std::fprintf(stderr, "master: %s\n", std::string(st.message()).c_str());
  }
}

}  // namespace det::master
