// TrialContext for a trial process started by hand (no worker): the spec is
// the caller's and every report is printed to stdout as one JSON line, e.g.
//   {"kind":"metrics","report":{"trial_id":"0","group":"METRIC_GROUP_TRAINING",...}}
//   {"kind":"checkpoint","report":{"uuid":"...",...}}
// Internal to det_trial_api; use TrialContext::FromEnvironment.
#ifndef DET_WORKER_TRIAL_API_STANDALONE_TRIAL_CONTEXT_H_
#define DET_WORKER_TRIAL_API_STANDALONE_TRIAL_CONTEXT_H_

#include "absl/synchronization/mutex.h"
#include "worker/trial_api/trial_context.h"

namespace det {

class StandaloneTrialContext : public TrialContext {
 public:
  StandaloneTrialContext(v1::TrialSpec spec, int rank, int world_size);

  const v1::TrialSpec& spec() const override { return spec_; }
  int rank() const override { return rank_; }
  int world_size() const override { return world_size_; }

  absl::Status ReportTrainingMetrics(
      int64_t steps_completed, const std::map<std::string, double>& m) override;
  absl::Status ReportValidationMetrics(
      int64_t steps_completed, const std::map<std::string, double>& m) override;
  absl::Status ReportCheckpoint(const v1::Checkpoint& checkpoint) override;
  // Only the signal flag: there is nobody else to ask.
  bool ShouldStop() override { return StopRequestedBySignal(); }

 private:
  absl::Status PrintLine(const char* kind,
                         const google::protobuf::Message& report);

  const v1::TrialSpec spec_;
  const int rank_;
  const int world_size_;
  absl::Mutex mu_;  // keeps lines whole when several threads report
};

}  // namespace det

#endif  // DET_WORKER_TRIAL_API_STANDALONE_TRIAL_CONTEXT_H_
