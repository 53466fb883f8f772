#include "master/api/worker_service.h"

#include <atomic>
#include <cstdio>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/rpc/status_convert.h"
#include "master/api/auth.h"

namespace det::master {

// Messages read off a worker's stream and not yet handled. Bounded, so a
// worker that sends faster than the master stores is held back by gRPC's
// flow control rather than by the master's memory.
class WorkerService::Inbox {
 public:
  explicit Inbox(size_t capacity) : capacity_(capacity) {}

  // Blocks while full; false once closed.
  bool Push(v1::WorkerMessage m) {
    absl::MutexLock l(&mu_);
    auto room = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return closed_ || queue_.size() < capacity_;
    };
    mu_.Await(absl::Condition(&room));
    if (closed_) return false;
    queue_.push_back(std::move(m));
    return true;
  }

  // Blocks until a message is there or the inbox is closed; then moves up
  // to `max` messages, oldest first, into *out (cleared first). False when
  // closed and empty.
  bool PopBatch(size_t max, std::vector<v1::WorkerMessage>* out) {
    out->clear();
    absl::MutexLock l(&mu_);
    auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return closed_ || !queue_.empty();
    };
    mu_.Await(absl::Condition(&ready));
    while (!queue_.empty() && out->size() < max) {
      out->push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    return !out->empty();
  }

  // No more messages will be pushed (the reader saw the stream end) or
  // taken (the handler gave up); wakes both sides.
  void Close() {
    absl::MutexLock l(&mu_);
    closed_ = true;
  }

 private:
  const size_t capacity_;
  absl::Mutex mu_;
  std::deque<v1::WorkerMessage> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

grpc::Status WorkerService::Connect(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::MasterMessage, v1::WorkerMessage>* stream) {
  grpc::Status auth = CheckToken(ctx, token_);
  if (!auth.ok()) return auth;
  v1::WorkerMessage first;
  if (!stream->Read(&first)) return grpc::Status::OK;
  if (!first.has_hello()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the first message on the stream must be a Hello");
  }
  const std::string worker_id = first.hello().worker_id();
  auto outbox = std::make_shared<WorkerOutbox>();
  auto welcome = master_->WorkerConnected(first.hello(), ctx->peer(), outbox);
  if (!welcome.ok()) return ToGrpcStatus(welcome.status());
  v1::MasterMessage w;
  *w.mutable_welcome() = *welcome;
  if (!stream->Write(w)) {
    master_->WorkerDisconnected(worker_id, outbox);
    return grpc::Status::OK;
  }

  std::atomic<bool> done{false};
  // Set before this handler closes the outbox itself (the stream ended or
  // the batch loop gave up), so the writer can tell that from the master
  // closing it.
  std::atomic<bool> ending{false};
  std::thread writer([&] {
    while (!done.load()) {
      std::optional<v1::MasterMessage> m = outbox->Pop(absl::Milliseconds(200));
      if (!m) {
        if (outbox->closed()) break;
        continue;
      }
      if (!stream->Write(*m)) break;
    }
    // The master closed this stream (a newer one replaced it, or the
    // worker was declared lost): end the call so the worker reconnects. A
    // stream that ends on its own returns its status from the handler
    // (OK when the worker ended it); cancelling it would turn that into
    // CANCELLED.
    if (outbox->closed() && !ending.load()) ctx->TryCancel();
  });

  // The reader takes messages off the network as they come; this thread
  // stores whatever has arrived since its last batch in one transaction
  // and acknowledges the batch with one ack (the highest seq stored). A
  // message is acknowledged only after its transaction committed.
  Inbox inbox(kInboxCapacity);
  std::atomic<bool> read_ended{false};
  std::thread reader([&] {
    v1::WorkerMessage m;
    while (stream->Read(&m)) {
      if (!inbox.Push(std::move(m))) break;
      m.Clear();
    }
    read_ended.store(true);
    inbox.Close();
  });

  std::vector<v1::WorkerMessage> batch;
  while (inbox.PopBatch(kMaxBatch, &batch)) {
    // A stream the master has replaced or given up on stores nothing more:
    // its worker resends on the new stream.
    if (outbox->closed()) break;
    Master::WorkerBatchResult r = master_->WorkerMessages(worker_id, batch);
    if (r.ack_seq > 0) {
      v1::MasterMessage ack;
      ack.mutable_ack()->set_seq(r.ack_seq);
      outbox->Push(std::move(ack));
    }
    if (!r.status.ok()) {
      // The rest is not acknowledged: the worker keeps it and resends it
      // after reconnecting.
      std::fprintf(stderr, "master: worker %s: %s\n", worker_id.c_str(),
                   std::string(r.status.message()).c_str());
      break;
    }
  }
  inbox.Close();
  ending.store(true);
  // A Read still waiting on the network returns once the call is ended.
  if (!read_ended.load()) ctx->TryCancel();
  reader.join();
  master_->WorkerDisconnected(worker_id, outbox);
  done.store(true);
  outbox->Close();
  writer.join();
  return grpc::Status::OK;
}

}  // namespace det::master
