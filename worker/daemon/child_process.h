// Starting one trial process: clone (CLONE_VM | CLONE_VFORK) + exec, with
// its stdout and stderr on pipes, in its own process group, set to die with
// the worker.
//
// PR_SET_PDEATHSIG fires when the *thread* that started the child exits, not
// the process: call SpawnChild only from a thread that lives as long as the
// worker (the agent's control thread does).
#ifndef DET_WORKER_DAEMON_CHILD_PROCESS_H_
#define DET_WORKER_DAEMON_CHILD_PROCESS_H_

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace det::worker {

struct ChildSpec {
  // argv[0] is the program's path (no PATH lookup).
  std::vector<std::string> argv;
  // The whole environment, "NAME=value" entries.
  std::vector<std::string> env;
  // Working directory.
  std::string cwd;
  // When exec fails with ENOEXEC (an executable text file without a #!
  // line), run it with /bin/sh as execvp and the shell do.
  bool shell_on_noexec = false;
};

// The argv that runs `command` without a shell, when the shell would only
// split it into words and exec the first one (what `/bin/sh -c "exec
// COMMAND"` does): plain words of [A-Za-z0-9/._+,:@%=-] separated by
// spaces or tabs, the first without '=' and either an absolute path or a
// name found in the absolute directories of `path_var` (the PATH the trial
// gets; a relative or empty entry sends the command to the shell), as an
// executable regular file. nullopt for anything else (quotes, variables,
// globs, redirections, a relative or unknown program): run it with the
// shell. Saves starting a shell for every trial.
std::optional<std::vector<std::string>> PlainCommandArgv(
    const std::string& command, absl::string_view path_var);

struct Child {
  pid_t pid = -1;      // also the process group id
  int stdout_fd = -1;  // read ends, non-blocking, close-on-exec; the caller
  int stderr_fd = -1;  // owns and closes them
};

// Starts the process. Fails (nothing left running, no fds leaked) when the
// pipes cannot be made, clone fails, or exec fails (e.g. no such program:
// the message names the program and the reason).
absl::StatusOr<Child> SpawnChild(const ChildSpec& spec);

// Sends `sig` to the child's whole process group (and to the child itself
// if it left its group). ESRCH is not an error.
void SignalGroup(pid_t pid, int sig);

}  // namespace det::worker

#endif  // DET_WORKER_DAEMON_CHILD_PROCESS_H_
