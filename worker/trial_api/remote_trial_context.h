// TrialContext for a trial process started by a worker: talks to the
// worker's TrialApiServer over gRPC. Internal to det_trial_api; use
// TrialContext::FromEnvironment.
#ifndef DET_WORKER_TRIAL_API_REMOTE_TRIAL_CONTEXT_H_
#define DET_WORKER_TRIAL_API_REMOTE_TRIAL_CONTEXT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "det/v1/trial.grpc.pb.h"
#include "worker/trial_api/trial_context.h"

namespace det {

// How long the first GetSpec may take (the worker's server may still be
// coming up: the call waits for the channel to become ready).
inline constexpr absl::Duration kGetSpecTimeout = absl::Seconds(30);
// How long one report may be retried on UNAVAILABLE before giving up.
inline constexpr absl::Duration kReportRetryBudget = absl::Seconds(30);
// Trailing metadata of GetSpec: "1" when a stop is already requested for
// the run, "0" otherwise. A hint on top of the gRPC API (ShouldStop stays
// the way to ask): a client that has it counts the spec fetch as its first
// ShouldStop poll, which saves a round trip when every trial starts.
inline constexpr char kStopHintMetadata[] = "x-det-stop";

class RemoteTrialContext : public TrialContext {
 public:
  // Connects to `address`, authenticates with `token` and fetches the spec.
  static absl::StatusOr<std::unique_ptr<TrialContext>> Connect(
      const std::string& address, const std::string& token, int rank,
      int world_size);

  const v1::TrialSpec& spec() const override { return spec_; }
  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }

  absl::Status ReportTrainingMetrics(
      int64_t steps_completed, const std::map<std::string, double>& m) override;
  absl::Status ReportValidationMetrics(
      int64_t steps_completed, const std::map<std::string, double>& m) override;
  absl::Status ReportCheckpoint(const v1::Checkpoint& checkpoint) override;
  bool ShouldStop() override;

 private:
  RemoteTrialContext(std::unique_ptr<v1::TrialService::Stub> stub,
                     std::string token, int rank, int world_size);

  absl::Status ReportMetrics(v1::MetricGroup group, int64_t steps_completed,
                             const std::map<std::string, double>& m);
  // Runs `call` (one RPC with a fresh ClientContext) until it succeeds, fails
  // with something other than UNAVAILABLE, or kReportRetryBudget is spent;
  // backs off exponentially between attempts.
  absl::Status CallWithRetry(
      const char* what,
      const std::function<grpc::Status(grpc::ClientContext*)>& call);
  void PrepareContext(grpc::ClientContext* ctx, absl::Duration timeout) const;

  const std::unique_ptr<v1::TrialService::Stub> stub_;
  const std::string token_;
  const int rank_;
  const int world_size_;
  v1::TrialSpec spec_;

  // ShouldStop may be called from any thread of the trial.
  absl::Mutex mu_;
  bool stop_seen_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time last_poll_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace det

#endif  // DET_WORKER_TRIAL_API_REMOTE_TRIAL_CONTEXT_H_
