// Following an experiment until it ends: the WatchExperiment stream, watched
// again with backoff when it breaks (the master may restart), and the
// progress display of `det experiment create --follow`.
#ifndef DET_CLI_FOLLOW_H_
#define DET_CLI_FOLLOW_H_

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/client.h"
#include "det/v1/api.pb.h"

namespace det::cli {

struct FollowOptions {
  // Waits between attempts to watch again: doubling from initial to max.
  absl::Duration initial_backoff = absl::Milliseconds(500);
  absl::Duration max_backoff = absl::Seconds(10);
  // Give up when the master has been unreachable this long without a break.
  absl::Duration give_up_after = absl::Minutes(10);
  // One stream lasts at most this long and is then opened again, so that a
  // connection that died silently is noticed.
  absl::Duration stream_lifetime = absl::Minutes(5);
  // Poll interval when the master does not implement WatchExperiment.
  absl::Duration poll_interval = absl::Seconds(2);
};

// Doubling waits with a cap, and a clock of how long failures have lasted.
class Backoff {
 public:
  explicit Backoff(const FollowOptions& options);
  // Something worked: the next failure starts from the initial wait again.
  void Reset();
  // Records a failure. Returns false when failures have lasted longer than
  // give_up_after; otherwise sleeps the next wait and returns true.
  bool Wait(std::ostream& err, const absl::Status& why);

 private:
  FollowOptions options_;
  absl::Duration next_;
  absl::Time failing_since_ = absl::InfinitePast();
};

// Watches experiment `id` until it is terminal, calling `on_update` with
// every state the master sends, and returns the terminal state. A broken
// stream is watched again (with backoff, notes on `err`); errors the user
// must fix (NOT_FOUND, UNAUTHENTICATED, ...) end the watch at once.
absl::StatusOr<v1::Experiment> WatchUntilTerminal(
    Client& client, int64_t id, const FollowOptions& options,
    const std::function<void(const v1::Experiment&)>& on_update,
    std::ostream& err);

// "Experiment 3 ACTIVE  45.0%  trials: 2 running, 5 completed, 0 errored
//  best validation_accuracy 0.7123": one line, no newline.
std::string ProgressLine(const v1::Experiment& experiment);

// Shows progress: on a terminal, one line rewritten in place; otherwise a
// new line each time the progress line changes.
class ProgressPrinter {
 public:
  ProgressPrinter(std::ostream& out, bool terminal);
  void Update(const v1::Experiment& experiment);
  // Ends the in-place line (if any) so that later output starts clean.
  void Finish();

 private:
  std::ostream& out_;
  const bool terminal_;
  std::string last_;
  size_t last_width_ = 0;
};

// Writes the end of a followed experiment: its final state, the best trial
// and that trial's validation metrics.
void PrintOutcome(std::ostream& out, const v1::Experiment& experiment);

}  // namespace det::cli

#endif  // DET_CLI_FOLLOW_H_
