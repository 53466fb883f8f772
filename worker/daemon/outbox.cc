#include "worker/daemon/outbox.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace det::worker {

int64_t Outbox::AppendLocked(v1::WorkerMessage m, bool ephemeral) {
  const int64_t seq = next_seq_++;
  m.set_seq(seq);
  Item item;
  item.bytes = static_cast<int64_t>(m.ByteSizeLong());
  item.ephemeral = ephemeral;
  item.msg = std::move(m);
  if (!ephemeral) {
    ++durable_count_;
    durable_bytes_ += item.bytes;
  }
  items_.push_back(std::move(item));
  return seq;
}

absl::StatusOr<int64_t> Outbox::Add(v1::WorkerMessage m, bool force) {
  absl::MutexLock lock(&mu_);
  if (!force && (durable_count_ >= limits_.max_messages ||
                 durable_bytes_ + static_cast<int64_t>(m.ByteSizeLong()) >
                     limits_.max_bytes)) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "the worker holds ", durable_count_, " messages (", durable_bytes_,
        " bytes) the master has not acknowledged yet; the master is slow or "
        "unreachable"));
  }
  return AppendLocked(std::move(m), /*ephemeral=*/false);
}

int64_t Outbox::AddEphemeral(v1::WorkerMessage m) {
  absl::MutexLock lock(&mu_);
  return AppendLocked(std::move(m), /*ephemeral=*/true);
}

void Outbox::Ack(int64_t seq) {
  absl::MutexLock lock(&mu_);
  while (!items_.empty() && items_.front().msg.seq() <= seq) {
    const Item& front = items_.front();
    if (!front.ephemeral) {
      --durable_count_;
      durable_bytes_ -= front.bytes;
    }
    items_.pop_front();
  }
}

void Outbox::Restart(int64_t last_seq) {
  Ack(last_seq);
  absl::MutexLock lock(&mu_);
  std::deque<Item> kept;
  for (Item& item : items_) {
    if (!item.ephemeral) kept.push_back(std::move(item));
  }
  items_ = std::move(kept);
  sent_upto_ = last_seq;
}

std::optional<v1::WorkerMessage> Outbox::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  const int64_t interrupts = interrupts_;
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return interrupts_ != interrupts ||
           (!items_.empty() && items_.back().msg.seq() > sent_upto_);
  };
  mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
  if (interrupts_ != interrupts) return std::nullopt;
  // Items are in seq order: the first one past the cursor is next.
  auto it = std::upper_bound(
      items_.begin(), items_.end(), sent_upto_,
      [](int64_t seq, const Item& item) { return seq < item.msg.seq(); });
  if (it == items_.end()) return std::nullopt;
  sent_upto_ = it->msg.seq();
  return it->msg;
}

void Outbox::Interrupt() {
  absl::MutexLock lock(&mu_);
  ++interrupts_;
}

bool Outbox::WaitAllAcked(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return durable_count_ == 0;
  };
  return mu_.AwaitWithTimeout(absl::Condition(&done), timeout);
}

std::vector<std::pair<int64_t, int32_t>> Outbox::UnackedExits() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<int64_t, int32_t>> out;
  for (const Item& item : items_) {
    if (item.ephemeral || !item.msg.has_trial_event()) continue;
    const v1::TrialEvent& ev = item.msg.trial_event();
    if (ev.has_exited()) out.emplace_back(ev.trial_id(), ev.run_id());
  }
  return out;
}

int64_t Outbox::pending_messages() const {
  absl::MutexLock lock(&mu_);
  return durable_count_;
}

int64_t Outbox::pending_bytes() const {
  absl::MutexLock lock(&mu_);
  return durable_bytes_;
}

int64_t Outbox::last_seq() const {
  absl::MutexLock lock(&mu_);
  return next_seq_ - 1;
}

}  // namespace det::worker
