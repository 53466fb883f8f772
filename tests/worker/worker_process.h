// The real det-worker binary as a child of a test: its own process group,
// stderr and stdout in a file, always killed (group and all) on
// destruction, even when the test failed.
#ifndef DET_TESTS_WORKER_WORKER_PROCESS_H_
#define DET_TESTS_WORKER_WORKER_PROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "tests/testing/temp_dir.h"

namespace det::testing {

using ::det::test::TempDir;

class WorkerProcess {
 public:
  // Starts DET_BIN_DIR/det-worker with `args`; `env` entries "NAME=value"
  // are added to the test's environment.
  WorkerProcess(const std::vector<std::string>& args,
                const std::string& log_path,
                const std::vector<std::string>& env = {});
  ~WorkerProcess();

  pid_t pid() const { return pid_; }
  // Sends `sig` to the worker process (not its group: the worker is meant
  // to take care of its children).
  void Signal(int sig);
  // Waits for the exit; the wait status, or nullopt after `timeout`.
  std::optional<int> Wait(absl::Duration timeout);
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  int status_ = 0;
  std::string log_path_;
};

// True once no process has this pid (polls up to `timeout`).
bool WaitGone(pid_t pid, absl::Duration timeout = absl::Seconds(10));

}  // namespace det::testing

#endif  // DET_TESTS_WORKER_WORKER_PROCESS_H_
