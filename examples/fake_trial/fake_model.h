// The fake trial's "model": its hyperparameters and a deterministic
// validation accuracy, so searches over it have a known best answer
// (x = 0.3, y = 0.6) and tests can predict every reported number.
#ifndef DET_EXAMPLES_FAKE_TRIAL_FAKE_MODEL_H_
#define DET_EXAMPLES_FAKE_TRIAL_FAKE_MODEL_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "common/value.h"

namespace det::fake {

struct FakeHParams {
  double x = 0.5;
  double y = 0.5;
  int64_t sleep_ms = 0;       // per batch
  int64_t report_every = 10;  // training metrics every N batches
  int64_t fail_on_run = -1;   // exit 1 on this run id...
  int64_t crash_on_run = -1;  // ...or abort() on this one...
  int64_t fail_at_step = 0;   // ...once this many batches are done
  bool invalid = false;       // exit 3 at once
  bool ignore_stop = false;   // never look at ShouldStop (to test kills)
  // Write and report a checkpoint when done; false skips that last one
  // (periodic and stop checkpoints are still written).
  bool checkpoint_at_end = true;
  // Print output that is not valid UTF-8 (a stray byte, and a line of
  // 3-byte characters long enough that the worker cuts it mid-character),
  // on stdout and stderr: tests that such output reaches the master.
  bool bad_output = false;
};

// Reads the hyperparameters it knows; others are ignored (configs made for
// the real trainer work unchanged). A known one of the wrong type or out of
// range is an error (the trial exits 3).
absl::StatusOr<FakeHParams> ParseHParams(const ValueMap& hparams);

// validation_accuracy after `steps` batches: a paraboloid in (x, y) with
// its top at (0.3, 0.6), plus a little that grows with training, in [0, 1].
double ValidationAccuracy(const FakeHParams& hp, int64_t steps);

// The training metrics ("loss", "accuracy") and validation metrics
// ("validation_accuracy", "validation_loss", "validation_error") at `steps`.
std::map<std::string, double> TrainingMetrics(const FakeHParams& hp,
                                              int64_t steps);
std::map<std::string, double> ValidationMetrics(const FakeHParams& hp,
                                                int64_t steps);

}  // namespace det::fake

#endif  // DET_EXAMPLES_FAKE_TRIAL_FAKE_MODEL_H_
