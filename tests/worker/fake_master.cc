#include "tests/worker/fake_master.h"

#include "absl/strings/str_cat.h"

namespace det::testing {

FakeMaster::FakeMaster() {
  welcome_.set_cluster_id("fake-cluster");
  welcome_.set_heartbeat_interval_ms(1000);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
  address_ = absl::StrCat("127.0.0.1:", port);
}

FakeMaster::~FakeMaster() {
  DropStream();
  server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
  server_->Wait();
}

void FakeMaster::SetRefusal(grpc::Status status) {
  absl::MutexLock lock(&mu_);
  refusal_ = std::move(status);
}

void FakeMaster::SetAutoAck(bool on) {
  absl::MutexLock lock(&mu_);
  auto_ack_ = on;
}

void FakeMaster::SetWelcome(v1::Welcome welcome) {
  absl::MutexLock lock(&mu_);
  welcome_ = std::move(welcome);
}

bool FakeMaster::Send(const v1::MasterMessage& m) {
  absl::MutexLock wlock(&write_mu_);
  grpc::ServerReaderWriter<v1::MasterMessage, v1::WorkerMessage>* stream;
  {
    absl::MutexLock lock(&mu_);
    stream = current_;
  }
  return stream != nullptr && stream->Write(m);
}

void FakeMaster::DropStream() {
  absl::MutexLock lock(&mu_);
  if (current_ctx_ != nullptr) current_ctx_->TryCancel();
}

int FakeMaster::connections() const {
  absl::MutexLock lock(&mu_);
  return connections_;
}

std::vector<v1::Hello> FakeMaster::hellos() const {
  absl::MutexLock lock(&mu_);
  return hellos_;
}

std::vector<FakeMaster::Received> FakeMaster::received() const {
  absl::MutexLock lock(&mu_);
  return received_;
}

std::vector<FakeMaster::Received> FakeMaster::TrialEvents(
    int64_t trial_id) const {
  std::vector<Received> out;
  for (Received& r : received()) {
    if (r.msg.has_trial_event() &&
        (trial_id == 0 || r.msg.trial_event().trial_id() == trial_id)) {
      out.push_back(std::move(r));
    }
  }
  return out;
}

bool FakeMaster::WaitFor(
    const std::function<bool(const std::vector<Received>&)>& pred,
    absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return pred(received_);
  };
  return mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
}

v1::TrialExited FakeMaster::WaitExited(int64_t trial_id,
                                       absl::Duration timeout) const {
  v1::TrialExited out;
  WaitFor(
      [&](const std::vector<Received>& all) {
        for (const Received& r : all) {
          if (r.msg.has_trial_event() &&
              r.msg.trial_event().trial_id() == trial_id &&
              r.msg.trial_event().has_exited()) {
            out = r.msg.trial_event().exited();
            return true;
          }
        }
        return false;
      },
      timeout);
  return out;
}

grpc::Status FakeMaster::Connect(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::MasterMessage, v1::WorkerMessage>* stream) {
  v1::WorkerMessage first;
  if (!stream->Read(&first)) return grpc::Status::OK;
  int connection;
  v1::Welcome welcome;
  {
    absl::MutexLock lock(&mu_);
    connection = ++connections_;
    if (first.has_hello()) hellos_.push_back(first.hello());
    if (!refusal_.ok()) return refusal_;
    if (!first.has_hello()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "first message must be Hello");
    }
    welcome = welcome_;
  }
  {
    absl::MutexLock wlock(&write_mu_);
    v1::MasterMessage w;
    *w.mutable_welcome() = welcome;
    if (!stream->Write(w)) return grpc::Status::OK;
    absl::MutexLock lock(&mu_);
    current_ = stream;
    current_ctx_ = ctx;
  }
  v1::WorkerMessage m;
  while (stream->Read(&m)) {
    bool ack;
    {
      absl::MutexLock lock(&mu_);
      received_.push_back({connection, m});
      ack = auto_ack_;
    }
    if (ack) {
      v1::MasterMessage a;
      a.mutable_ack()->set_seq(m.seq());
      absl::MutexLock wlock(&write_mu_);
      stream->Write(a);
    }
  }
  absl::MutexLock wlock(&write_mu_);
  absl::MutexLock lock(&mu_);
  if (current_ == stream) {
    current_ = nullptr;
    current_ctx_ = nullptr;
  }
  return grpc::Status::OK;
}

}  // namespace det::testing
