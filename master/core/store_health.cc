// Transactions, and what happens when one fails.
//
// The promise: the master's memory never runs ahead of its store. Every
// change is made inside Transact; messages for workers made meanwhile are
// held back until the commit. When a transaction fails (disk full, I/O
// error, a database restart), the master does not try to undo its changes
// in memory piece by piece: it drops its whole in-memory state and loads it
// again from the store (Reload, the restart path, which already recovers
// exactly), and ends every worker stream so workers reconnect and
// reconcile. It then stays in outage mode, refusing writes with
// UNAVAILABLE, until a probe write succeeds (retried with backoff), and
// carries on from the store's state. Why a reload and not "change memory
// only after the commit": the second would need every event handler to
// compute its effects twice (once to write, once to apply), and the reload
// path is the one every restart test already exercises.
#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/status_macros.h"
#include "master/core/master.h"

namespace det::master {

absl::Status Master::Transact(const std::function<absl::Status()>& fn) {
  if (transaction_depth_ > 0) return store_->RunInTransaction(fn);
  if (!store_health_.available) return StoreUnavailableError();
  transaction_depth_++;
  absl::Status st = store_->RunInTransaction(fn);
  transaction_depth_--;
  std::vector<std::pair<std::string, v1::MasterMessage>> staged;
  staged.swap(staged_);
  if (!st.ok()) {
    OnStoreFailure(st);
    return st;
  }
  for (auto& [worker, m] : staged) SendToWorker(worker, std::move(m));
  return absl::OkStatus();
}

void Master::SendToWorker(const std::string& worker_id, v1::MasterMessage m) {
  if (transaction_depth_ > 0) {
    staged_.emplace_back(worker_id, std::move(m));
    return;
  }
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || !it->second.outbox) return;
  it->second.outbox->Push(std::move(m));
}

absl::Status Master::StoreUnavailableError() const {
  return absl::UnavailableError(absl::StrCat(
      "the master's store has been unavailable since ",
      absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", store_health_.unavailable_since,
                       absl::UTCTimeZone()),
      " (", store_health_.reason,
      "); nothing was changed; try again once `det master info` shows the "
      "store available"));
}

void Master::OnStoreFailure(const absl::Status& why) {
  bool first = store_health_.available;
  if (first) {
    store_health_.available = false;
    store_health_.unavailable_since = absl::Now();
    store_health_.reason = std::string(why.message());
    store_health_.failed_probes = 0;
    probe_backoff_ = options_.store_probe_initial;
    if (options_.metrics != nullptr) options_.metrics->CountStoreOutage();
  }
  std::fprintf(stderr,
               "master: a store transaction failed: %s; the master reloads "
               "its state from the store and retries writes with backoff "
               "(store unavailable since %s)\n",
               std::string(why.message()).c_str(),
               absl::FormatTime(store_health_.unavailable_since).c_str());
  absl::Status reloaded = Reload();
  reload_needed_ = !reloaded.ok();
  if (reload_needed_) {
    std::fprintf(stderr,
                 "master: reloading from the store failed too (%s); it is "
                 "retried with the next probe\n",
                 std::string(reloaded.message()).c_str());
  }
  next_probe_ = absl::Now() + probe_backoff_;
}

void Master::ProbeStore() {
  absl::Time now = absl::Now();
  if (now < next_probe_) return;
  absl::Status st = store_->RunInTransaction([&] {
    return store_->SetWorkerSeq(absl::StrCat("master-probe/", cluster_id_),
                                ++probes_);
  });
  if (st.ok() && reload_needed_) {
    st = Reload();
    reload_needed_ = !st.ok();
  }
  if (!st.ok()) {
    store_health_.failed_probes++;
    probe_backoff_ = std::min(probe_backoff_ * 2, options_.store_probe_max);
    next_probe_ = now + probe_backoff_;
    std::fprintf(stderr,
                 "master: store still unavailable (%s); next try in %s\n",
                 std::string(st.message()).c_str(),
                 absl::FormatDuration(probe_backoff_).c_str());
    return;
  }
  std::fprintf(
      stderr, "master: store available again after %s\n",
      absl::FormatDuration(now - store_health_.unavailable_since).c_str());
  store_health_ = StoreHealth();
  probe_backoff_ = options_.store_probe_initial;
  // Trial creations a failed chunk left pending (found again by the
  // reload's journal replay).
  for (auto& [id, e] : experiments_) {
    if (!e->pending.empty()) {
      absl::Status carried = CarryOutPending(e.get());
      if (!carried.ok()) return;  // a new outage began
    }
  }
}

StoreHealth Master::GetStoreHealth() {
  absl::MutexLock l(&mu_);
  return store_health_;
}

}  // namespace det::master
