// For the HTTP tests: a real Master on an in-memory SQLite store, and an
// in-process worker that plays its trials by calling the Master's worker
// methods directly (the same calls the gRPC WorkerService makes), so tests
// get trials with metrics, logs and checkpoints without any process.
#ifndef DET_TESTS_HTTP_TEST_MASTER_H_
#define DET_TESTS_HTTP_TEST_MASTER_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "master/core/master.h"

namespace det::testing {

// Creates a Master on ":memory:"; aborts the test binary if it cannot.
std::unique_ptr<master::Master> NewTestMaster();

class InProcessWorker {
 public:
  // Registers worker `id` with `slots` CPU slots.
  InProcessWorker(master::Master* m, std::string id, int slots);

  // The next StartTrial the master sent, waiting up to `timeout`.
  std::optional<v1::StartTrial> NextStart(
      absl::Duration timeout = absl::Seconds(5));

  absl::Status Started(const v1::TrialSpec& spec);
  absl::Status Metrics(const v1::TrialSpec& spec, v1::MetricGroup group,
                       int64_t steps, std::map<std::string, double> values);
  absl::Status Logs(const v1::TrialSpec& spec,
                    const std::vector<std::string>& lines);
  absl::Status Checkpoint(const v1::TrialSpec& spec, const std::string& uuid,
                          int64_t steps);
  absl::Status Exited(const v1::TrialSpec& spec, v1::ExitReason reason,
                      int64_t steps);

 private:
  absl::Status Send(v1::TrialEvent ev);

  master::Master* master_;
  std::string id_;
  std::shared_ptr<master::WorkerOutbox> outbox_;
  int64_t seq_ = 0;
};

}  // namespace det::testing

#endif  // DET_TESTS_HTTP_TEST_MASTER_H_
