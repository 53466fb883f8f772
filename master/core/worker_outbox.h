// The master's side of one open worker stream: messages for the worker,
// queued by the master under its lock and written to the network by the
// stream's own writer thread (never under the master's lock).
#ifndef DET_MASTER_CORE_WORKER_OUTBOX_H_
#define DET_MASTER_CORE_WORKER_OUTBOX_H_

#include <deque>
#include <optional>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "det/v1/worker.pb.h"

namespace det::master {

class WorkerOutbox {
 public:
  // Dropped once closed.
  void Push(v1::MasterMessage m);
  // Waits up to `timeout` for a message; nullopt when none or closed.
  std::optional<v1::MasterMessage> Pop(absl::Duration timeout);
  // Ends the stream: its writer stops and cancels the call, so the worker
  // reconnects.
  void Close();
  bool closed() const;

 private:
  mutable absl::Mutex mu_;
  std::deque<v1::MasterMessage> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace det::master

#endif  // DET_MASTER_CORE_WORKER_OUTBOX_H_
