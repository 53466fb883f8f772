#include "worker/trial_api/trial_api_server.h"

#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/rpc/status_convert.h"
#include "det/v1/trial.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "worker/trial_api/remote_trial_context.h"

namespace det {
namespace {

constexpr char kTokenHeader[] = "x-det-trial-token";

// 128 bits from the OS's entropy source, as hex: unguessable by another
// local process that might find the port.
std::string NewToken() {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 4; ++i) absl::StrAppendFormat(&out, "%08x", rd());
  return out;
}

// A checkpoint uuid is a directory name under checkpoint storage: one path
// component, nothing that could climb out of it.
bool IsSafeUuid(const std::string& uuid) {
  if (uuid.empty() || uuid == "." || uuid == "..") return false;
  return uuid.find('/') == std::string::npos &&
         uuid.find('\0') == std::string::npos;
}

}  // namespace

// Translates RPCs into lookups and handler calls; owns no state.
class TrialApiServer::Service final : public v1::TrialService::Service {
 public:
  explicit Service(TrialApiServer* owner) : owner_(owner) {}

  grpc::Status GetSpec(grpc::ServerContext* ctx, const v1::GetSpecRequest*,
                       v1::TrialSpec* out) override {
    RunKey key;
    bool stop = false;
    grpc::Status s = Authenticate(ctx, &key, out, &stop);
    if (s.ok()) ctx->AddTrailingMetadata(kStopHintMetadata, stop ? "1" : "0");
    return s;
  }

  grpc::Status ReportMetrics(grpc::ServerContext* ctx,
                             const v1::MetricReport* req,
                             v1::ReportResponse*) override {
    RunKey key;
    grpc::Status s = Authenticate(ctx, &key, nullptr, nullptr);
    if (!s.ok()) return s;
    if (req->group() != v1::METRIC_GROUP_TRAINING &&
        req->group() != v1::METRIC_GROUP_VALIDATION) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "metric report group must be TRAINING or VALIDATION");
    }
    if (req->steps_completed() < 0) {
      return grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("metric report steps_completed is ",
                       req->steps_completed(), "; it must be >= 0"));
    }
    if (!owner_->handlers_.on_metrics) return grpc::Status::OK;
    v1::MetricReport report = *req;
    report.set_trial_id(key.first);
    if (report.time_us() == 0) {
      report.set_time_us(absl::ToUnixMicros(absl::Now()));
    }
    return ToGrpcStatus(
        owner_->handlers_.on_metrics(key.first, key.second, report));
  }

  grpc::Status ReportCheckpoint(grpc::ServerContext* ctx,
                                const v1::Checkpoint* req,
                                v1::ReportResponse*) override {
    RunKey key;
    grpc::Status s = Authenticate(ctx, &key, nullptr, nullptr);
    if (!s.ok()) return s;
    if (!IsSafeUuid(req->uuid())) {
      return grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("checkpoint uuid '", req->uuid(),
                       "' must be a single directory name (no '/', not "
                       "empty, not '.' or '..')"));
    }
    if (!owner_->handlers_.on_checkpoint) return grpc::Status::OK;
    v1::Checkpoint checkpoint = *req;
    checkpoint.set_trial_id(key.first);
    if (checkpoint.time_us() == 0) {
      checkpoint.set_time_us(absl::ToUnixMicros(absl::Now()));
    }
    return ToGrpcStatus(
        owner_->handlers_.on_checkpoint(key.first, key.second, checkpoint));
  }

  grpc::Status ShouldStop(grpc::ServerContext* ctx,
                          const v1::ShouldStopRequest*,
                          v1::ShouldStopResponse* out) override {
    RunKey key;
    bool stop = false;
    grpc::Status s = Authenticate(ctx, &key, nullptr, &stop);
    if (!s.ok()) return s;
    out->set_stop(stop);
    return grpc::Status::OK;
  }

 private:
  grpc::Status Authenticate(grpc::ServerContext* ctx, RunKey* key,
                            v1::TrialSpec* spec, bool* stop) {
    const auto& md = ctx->client_metadata();
    auto it = md.find(kTokenHeader);
    if (it == md.end()) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "missing x-det-trial-token metadata: trial processes "
                          "authenticate with DET_TRIAL_TOKEN");
    }
    std::string token(it->second.data(), it->second.size());
    if (!owner_->Lookup(token, key, spec, stop)) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "unknown trial token: the run is not (or no longer) "
                          "registered with this worker");
    }
    return grpc::Status::OK;
  }

  TrialApiServer* const owner_;
};

TrialApiServer::TrialApiServer(Handlers handlers)
    : handlers_(std::move(handlers)) {}

absl::StatusOr<std::unique_ptr<TrialApiServer>> TrialApiServer::Start(
    Handlers handlers, const std::string& host) {
  std::unique_ptr<TrialApiServer> server(
      new TrialApiServer(std::move(handlers)));
  server->service_ = std::make_unique<Service>(server.get());
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(absl::StrCat(host, ":0"),
                           grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(server->service_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot start the trial API server on ", host, ":0"));
  }
  server->address_ = absl::StrCat(host, ":", port);
  return server;
}

TrialApiServer::~TrialApiServer() {
  if (server_ != nullptr) {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(1)));
    server_->Wait();
  }
}

std::string TrialApiServer::RegisterRun(const v1::TrialSpec& spec) {
  const RunKey key{spec.trial_id(), spec.run_id()};
  std::string token = NewToken();
  absl::MutexLock lock(&mu_);
  auto old = token_by_run_.find(key);
  if (old != token_by_run_.end()) runs_by_token_.erase(old->second);
  token_by_run_[key] = token;
  runs_by_token_[token] = Run{spec, false};
  return token;
}

void TrialApiServer::UnregisterRun(int64_t trial_id, int32_t run_id) {
  absl::MutexLock lock(&mu_);
  auto it = token_by_run_.find({trial_id, run_id});
  if (it == token_by_run_.end()) return;
  runs_by_token_.erase(it->second);
  token_by_run_.erase(it);
}

bool TrialApiServer::RequestStop(int64_t trial_id, int32_t run_id) {
  absl::MutexLock lock(&mu_);
  auto it = token_by_run_.find({trial_id, run_id});
  if (it == token_by_run_.end()) return false;
  runs_by_token_[it->second].stop = true;
  return true;
}

int TrialApiServer::num_runs() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(runs_by_token_.size());
}

bool TrialApiServer::Lookup(const std::string& token, RunKey* key,
                            v1::TrialSpec* spec, bool* stop) const {
  absl::MutexLock lock(&mu_);
  auto it = runs_by_token_.find(token);
  if (it == runs_by_token_.end()) return false;
  *key = {it->second.spec.trial_id(), it->second.spec.run_id()};
  if (spec != nullptr) *spec = it->second.spec;
  if (stop != nullptr) *stop = it->second.stop;
  return true;
}

}  // namespace det
