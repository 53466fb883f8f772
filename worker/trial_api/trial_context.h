// The client side of the trial <-> worker API (proto/det/v1/trial.proto),
// for det-trial and for custom entrypoints. No libtorch here.
//
// A trial process started by a worker finds DET_TRIAL_API_ADDR and
// DET_TRIAL_TOKEN in its environment; TrialContext::FromEnvironment connects
// and fetches its spec. Started by hand (no such variables), it runs
// standalone: the spec comes from the caller and reports are printed to
// stdout as JSON lines.
//
// SIGTERM sets the stop flag (ShouldStop() returns true); the trial should
// finish its batch, checkpoint and exit 0.
#ifndef DET_WORKER_TRIAL_API_TRIAL_CONTEXT_H_
#define DET_WORKER_TRIAL_API_TRIAL_CONTEXT_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "det/v1/common.pb.h"

namespace det {

// Exit codes of a trial process that the worker understands.
inline constexpr int kExitOk = 0;         // finished or stopped on request
inline constexpr int kExitError = 1;      // failed
inline constexpr int kExitInvalidHP = 3;  // rejected its hyperparameters

class TrialContext {
 public:
  virtual ~TrialContext() = default;

  // Connects to the worker named by the environment; when there is none,
  // returns a standalone context around `standalone_spec` that prints
  // reports. Installs the SIGTERM handler in both cases.
  static absl::StatusOr<std::unique_ptr<TrialContext>> FromEnvironment(
      const v1::TrialSpec& standalone_spec);

  virtual const v1::TrialSpec& spec() const = 0;

  // Rank of this process (0 for single-slot trials) and world size.
  virtual int rank() const = 0;
  virtual int world_size() const = 0;

  // Reports are retried on transient errors; only rank 0 should report.
  virtual absl::Status ReportTrainingMetrics(
      int64_t steps_completed, const std::map<std::string, double>& m) = 0;
  virtual absl::Status ReportValidationMetrics(
      int64_t steps_completed, const std::map<std::string, double>& m) = 0;
  virtual absl::Status ReportCheckpoint(const v1::Checkpoint& checkpoint) = 0;

  // True once the trial has been asked to stop (SIGTERM, or the worker
  // says so). Cheap: checks a flag; polls the worker at most once a second.
  virtual bool ShouldStop() = 0;
};

// The checkpoint a run starts from, as Determined's
// ClusterInfo.latest_checkpoint gives it: the trial's own checkpoint to
// restore (spec.restore_uuid under checkpoint_dir; the step count
// continues from it), else its warm start (spec.warm_start under
// warm_start_dir: another trial's checkpoint, whose weights it loads while
// its own step count starts at 0, as in Determined).
struct StartingCheckpoint {
  std::string uuid;
  std::string path;             // <dir>/<uuid>
  int64_t steps_completed = 0;  // where this run's step count starts
  bool warm_start = false;      // not the trial's own
};
// Empty uuid: a fresh start.
StartingCheckpoint StartingCheckpointOf(const v1::TrialSpec& spec);

// True once SIGTERM or SIGINT was received by this process.
bool StopRequestedBySignal();

// Ends the trial process at once with `code`: flushes C stdio and
// std::cout/std::cerr, then _Exit, skipping static destructors and gRPC's
// orderly shutdown (joining its threads costs ~3 ms per process, which a
// 1-second trial pays on the critical path of its slot). Safe once every
// report and checkpoint call has returned: the worker has them. A trial
// that just returns from main is equally correct, only slower to exit.
[[noreturn]] void ExitNow(int code);

}  // namespace det

#endif  // DET_WORKER_TRIAL_API_TRIAL_CONTEXT_H_
