// Starting one trial process: fork + exec with its stdout and stderr on
// pipes, in its own process group, set to die with the worker.
//
// PR_SET_PDEATHSIG fires when the *thread* that forked the child exits, not
// the process: call SpawnChild only from a thread that lives as long as the
// worker (the agent's control thread does).
#ifndef DET_WORKER_AGENT_CHILD_PROCESS_H_
#define DET_WORKER_AGENT_CHILD_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace det::worker {

struct ChildSpec {
  // argv[0] is the program's path (no PATH lookup).
  std::vector<std::string> argv;
  // The whole environment, "NAME=value" entries.
  std::vector<std::string> env;
  // Working directory.
  std::string cwd;
};

struct Child {
  pid_t pid = -1;      // also the process group id
  int stdout_fd = -1;  // read ends, non-blocking, close-on-exec; the caller
  int stderr_fd = -1;  // owns and closes them
};

// Starts the process. Fails (nothing left running, no fds leaked) when the
// pipes cannot be made, fork fails, or exec fails (e.g. no such program:
// the message names the program and the reason).
absl::StatusOr<Child> SpawnChild(const ChildSpec& spec);

// Sends `sig` to the child's whole process group (and to the child itself
// if it left its group). ESRCH is not an error.
void SignalGroup(pid_t pid, int sig);

}  // namespace det::worker

#endif  // DET_WORKER_AGENT_CHILD_PROCESS_H_
