// Every message the worker sends the master, numbered and kept until the
// master acknowledges it, so that nothing a trial reported is lost when the
// stream breaks: after a reconnect, the Welcome says which seq the master
// has stored and everything after it is sent again, in order.
//
// Sequence numbers are monotonic per worker process (Hello.incarnation
// tells processes apart) and start at 1. Heartbeats are "ephemeral": they
// get a seq like anything else, so acks stay cumulative, but are dropped
// rather than resent after a reconnect.
//
// Bounded: at most Limits::max_messages durable messages or
// Limits::max_bytes of them wait at once. Add() refuses more (with
// RESOURCE_EXHAUSTED) unless forced; the worker forces only the few
// messages that must never be dropped (trial started/exited).
//
// Thread-safe. Producers are the trial API handlers and trial supervisors;
// the single consumer is the master link's writer.
#ifndef DET_WORKER_DAEMON_OUTBOX_H_
#define DET_WORKER_DAEMON_OUTBOX_H_

#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "det/v1/worker.pb.h"

namespace det::worker {

class Outbox {
 public:
  struct Limits {
    int64_t max_messages = 100000;
    int64_t max_bytes = 64 << 20;
  };

  Outbox() : Outbox(Limits()) {}
  explicit Outbox(Limits limits) : limits_(limits) {}

  // Numbers `m` and keeps it until acknowledged. Fails with
  // RESOURCE_EXHAUSTED when over the limits and not `force`.
  absl::StatusOr<int64_t> Add(v1::WorkerMessage m, bool force = false);

  // Numbers `m`; sent once, never resent after a reconnect.
  int64_t AddEphemeral(v1::WorkerMessage m);

  // The master stored everything up to and including `seq`.
  void Ack(int64_t seq);

  // A new stream was welcomed: the master has stored up to `last_seq`.
  // Drops what that covers and the ephemeral messages; the next Next()
  // returns the first message after `last_seq`.
  void Restart(int64_t last_seq);

  // Waits up to `timeout` for a message not yet sent on this stream and
  // marks it sent. nullopt on timeout or Interrupt().
  std::optional<v1::WorkerMessage> Next(absl::Duration timeout);

  // Wakes a Next() that is waiting (the stream is going away).
  void Interrupt();

  // Waits until every durable message is acknowledged; false on timeout.
  bool WaitAllAcked(absl::Duration timeout);

  // (trial, run) of every exit report not acknowledged yet, oldest first.
  std::vector<std::pair<int64_t, int32_t>> UnackedExits() const;

  int64_t pending_messages() const;  // durable, unacknowledged
  int64_t pending_bytes() const;
  int64_t last_seq() const;

 private:
  struct Item {
    v1::WorkerMessage msg;
    int64_t bytes = 0;
    bool ephemeral = false;
  };

  int64_t AppendLocked(v1::WorkerMessage m, bool ephemeral)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Limits limits_;
  mutable absl::Mutex mu_;
  std::deque<Item> items_ ABSL_GUARDED_BY(mu_);  // ascending seq
  int64_t next_seq_ ABSL_GUARDED_BY(mu_) = 1;
  int64_t sent_upto_ ABSL_GUARDED_BY(mu_) = 0;  // on the current stream
  int64_t durable_count_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t durable_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t interrupts_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace det::worker

#endif  // DET_WORKER_DAEMON_OUTBOX_H_
