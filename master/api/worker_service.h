// det.v1.WorkerService over gRPC: one long-lived stream per worker. A
// reader thread per stream takes the worker's messages off the network into
// a bounded inbox; the handler thread hands everything that has arrived (up
// to kMaxBatch messages) to the Master as one batch, stored in one
// transaction and acknowledged with one ack; a writer thread per stream
// sends what the Master puts on the outbox (welcome, acks, start/stop
// trial), so the Master never blocks on the network.
#ifndef DET_MASTER_API_WORKER_SERVICE_H_
#define DET_MASTER_API_WORKER_SERVICE_H_

#include <cstddef>
#include <string>

#include "det/v1/worker.grpc.pb.h"
#include "master/core/master.h"

namespace det::master {

class WorkerService final : public v1::WorkerService::Service {
 public:
  WorkerService(Master* master, std::string token)
      : master_(master), token_(std::move(token)) {}

  grpc::Status Connect(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::MasterMessage, v1::WorkerMessage>* stream)
      override;

  // At most this many messages per transaction: bounds how long one
  // stream's batch holds the master's lock.
  static constexpr size_t kMaxBatch = 256;
  // Messages read ahead of the one being stored, per stream.
  static constexpr size_t kInboxCapacity = 1024;

 private:
  class Inbox;
  Master* master_;
  const std::string token_;
};

}  // namespace det::master

#endif  // DET_MASTER_API_WORKER_SERVICE_H_
