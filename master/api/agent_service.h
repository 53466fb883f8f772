// det.v1.AgentService over gRPC: one long-lived stream per worker. The
// handler thread reads the worker's messages and hands them to the Master;
// a writer thread per stream sends what the Master puts on the outbox
// (welcome, acks, start/stop trial), so the Master never blocks on the
// network.
#ifndef DET_MASTER_API_AGENT_SERVICE_H_
#define DET_MASTER_API_AGENT_SERVICE_H_

#include <string>

#include "det/v1/agent.grpc.pb.h"
#include "master/core/master.h"

namespace det::master {

class AgentService final : public v1::AgentService::Service {
 public:
  AgentService(Master* master, std::string token)
      : master_(master), token_(std::move(token)) {}

  grpc::Status Connect(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<v1::MasterMessage, v1::WorkerMessage>* stream)
      override;

 private:
  Master* master_;
  const std::string token_;
};

}  // namespace det::master

#endif  // DET_MASTER_API_AGENT_SERVICE_H_
