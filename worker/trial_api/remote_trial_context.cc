#include "worker/trial_api/remote_trial_context.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/rpc/status_convert.h"
#include "grpcpp/grpcpp.h"

namespace det {
namespace {

constexpr absl::Duration kCallTimeout = absl::Seconds(10);
constexpr absl::Duration kShouldStopTimeout = absl::Seconds(2);
constexpr absl::Duration kShouldStopPollPeriod = absl::Seconds(1);
constexpr absl::Duration kInitialBackoff = absl::Milliseconds(50);
constexpr absl::Duration kMaxBackoff = absl::Seconds(2);

}  // namespace

RemoteTrialContext::RemoteTrialContext(
    std::unique_ptr<v1::TrialService::Stub> stub, std::string token, int rank,
    int world_size)
    : stub_(std::move(stub)),
      token_(std::move(token)),
      rank_(rank),
      world_size_(world_size) {}

void RemoteTrialContext::PrepareContext(grpc::ClientContext* ctx,
                                        absl::Duration timeout) const {
  ctx->AddMetadata("x-det-trial-token", token_);
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

absl::StatusOr<std::unique_ptr<TrialContext>> RemoteTrialContext::Connect(
    const std::string& address, const std::string& token, int rank,
    int world_size) {
  auto channel =
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = v1::TrialService::NewStub(channel);

  v1::TrialSpec spec;
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-det-trial-token", token);
  ctx.set_deadline(absl::ToChronoTime(absl::Now() + kGetSpecTimeout));
  // Wait for the channel rather than failing at once if the worker's server
  // is momentarily unreachable; the deadline bounds the wait.
  ctx.set_wait_for_ready(true);
  grpc::Status s = stub->GetSpec(&ctx, v1::GetSpecRequest(), &spec);
  if (!s.ok()) {
    return FromGrpcStatus(s, absl::StrCat("cannot get the trial spec from the "
                                          "worker at ",
                                          address));
  }
  if (world_size <= 0) world_size = std::max(1, spec.world_size());
  auto ctx_out = std::unique_ptr<RemoteTrialContext>(
      new RemoteTrialContext(std::move(stub), token, rank, world_size));
  ctx_out->spec_ = std::move(spec);
  const auto& trailers = ctx.GetServerTrailingMetadata();
  if (auto it = trailers.find(kStopHintMetadata); it != trailers.end()) {
    // The worker said whether a stop is requested as of the spec fetch:
    // that was this client's first poll.
    absl::MutexLock lock(&ctx_out->mu_);
    ctx_out->stop_seen_ = it->second == "1";
    ctx_out->last_poll_ = absl::Now();
  }
  return std::unique_ptr<TrialContext>(std::move(ctx_out));
}

absl::Status RemoteTrialContext::CallWithRetry(
    const char* what,
    const std::function<grpc::Status(grpc::ClientContext*)>& call) {
  const absl::Time give_up = absl::Now() + kReportRetryBudget;
  absl::Duration backoff = kInitialBackoff;
  for (int attempt = 1;; ++attempt) {
    grpc::ClientContext ctx;
    PrepareContext(&ctx, kCallTimeout);
    grpc::Status s = call(&ctx);
    if (s.ok()) return absl::OkStatus();
    if (s.error_code() != grpc::StatusCode::UNAVAILABLE ||
        absl::Now() + backoff > give_up) {
      return FromGrpcStatus(
          s, absl::StrCat(what, " failed after ", attempt,
                          attempt == 1 ? " attempt" : " attempts"));
    }
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

absl::Status RemoteTrialContext::ReportMetrics(
    v1::MetricGroup group, int64_t steps_completed,
    const std::map<std::string, double>& m) {
  v1::MetricReport r;
  r.set_trial_id(spec_.trial_id());
  r.set_group(group);
  r.set_steps_completed(steps_completed);
  r.set_time_us(absl::ToUnixMicros(absl::Now()));
  for (const auto& [name, value] : m) (*r.mutable_metrics())[name] = value;
  return CallWithRetry("reporting metrics", [&](grpc::ClientContext* ctx) {
    v1::ReportResponse resp;
    return stub_->ReportMetrics(ctx, r, &resp);
  });
}

absl::Status RemoteTrialContext::ReportTrainingMetrics(
    int64_t steps_completed, const std::map<std::string, double>& m) {
  return ReportMetrics(v1::METRIC_GROUP_TRAINING, steps_completed, m);
}

absl::Status RemoteTrialContext::ReportValidationMetrics(
    int64_t steps_completed, const std::map<std::string, double>& m) {
  return ReportMetrics(v1::METRIC_GROUP_VALIDATION, steps_completed, m);
}

absl::Status RemoteTrialContext::ReportCheckpoint(
    const v1::Checkpoint& checkpoint) {
  v1::Checkpoint c = checkpoint;
  c.set_trial_id(spec_.trial_id());
  if (c.time_us() == 0) c.set_time_us(absl::ToUnixMicros(absl::Now()));
  return CallWithRetry("reporting checkpoint", [&](grpc::ClientContext* ctx) {
    v1::ReportResponse resp;
    return stub_->ReportCheckpoint(ctx, c, &resp);
  });
}

bool RemoteTrialContext::ShouldStop() {
  if (StopRequestedBySignal()) return true;
  {
    absl::MutexLock lock(&mu_);
    if (stop_seen_) return true;
    const absl::Time now = absl::Now();
    if (now - last_poll_ < kShouldStopPollPeriod) return false;
    last_poll_ = now;
  }
  // Polled outside the lock so a slow worker does not block other threads;
  // a failed poll means "not yet": the worker also sends SIGTERM.
  grpc::ClientContext ctx;
  PrepareContext(&ctx, kShouldStopTimeout);
  v1::ShouldStopResponse resp;
  grpc::Status s = stub_->ShouldStop(&ctx, v1::ShouldStopRequest(), &resp);
  if (!s.ok() || !resp.stop()) return false;
  absl::MutexLock lock(&mu_);
  stop_seen_ = true;
  return true;
}

}  // namespace det
