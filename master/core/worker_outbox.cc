#include "master/core/worker_outbox.h"

#include <utility>

namespace det::master {

void WorkerOutbox::Push(v1::MasterMessage m) {
  absl::MutexLock l(&mu_);
  if (!closed_) queue_.push_back(std::move(m));
}

std::optional<v1::MasterMessage> WorkerOutbox::Pop(absl::Duration timeout) {
  absl::MutexLock l(&mu_);
  auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return closed_ || !queue_.empty();
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (queue_.empty() || closed_) return std::nullopt;
  v1::MasterMessage m = std::move(queue_.front());
  queue_.pop_front();
  return m;
}

void WorkerOutbox::Close() {
  absl::MutexLock l(&mu_);
  closed_ = true;
}

bool WorkerOutbox::closed() const {
  absl::MutexLock l(&mu_);
  return closed_;
}

}  // namespace det::master
