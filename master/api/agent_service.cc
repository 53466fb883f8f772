#include "master/api/agent_service.h"

#include <atomic>
#include <cstdio>
#include <memory>
#include <thread>

#include "master/api/auth.h"

namespace det::master {

grpc::Status AgentService::Connect(
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
  auto outbox = std::make_shared<AgentOutbox>();
  auto welcome = master_->AgentConnected(first.hello(), ctx->peer(), outbox);
  if (!welcome.ok()) return ToGrpc(welcome.status());
  v1::MasterMessage w;
  *w.mutable_welcome() = *welcome;
  if (!stream->Write(w)) {
    master_->AgentDisconnected(worker_id, outbox);
    return grpc::Status::OK;
  }

  std::atomic<bool> done{false};
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
    // worker was declared lost): end the call so the worker reconnects.
    if (outbox->closed()) ctx->TryCancel();
  });

  v1::WorkerMessage m;
  while (stream->Read(&m)) {
    auto seq = master_->AgentMessage(worker_id, m);
    if (!seq.ok()) {
      // Not acknowledged: the worker keeps the message and resends it
      // after reconnecting.
      std::fprintf(stderr, "master: worker %s message %lld: %s\n",
                   worker_id.c_str(), static_cast<long long>(m.seq()),
                   std::string(seq.status().message()).c_str());
      break;
    }
    v1::MasterMessage ack;
    ack.mutable_ack()->set_seq(*seq);
    outbox->Push(std::move(ack));
  }
  master_->AgentDisconnected(worker_id, outbox);
  done.store(true);
  outbox->Close();
  writer.join();
  return grpc::Status::OK;
}

}  // namespace det::master
