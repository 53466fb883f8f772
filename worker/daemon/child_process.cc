#include "worker/daemon/child_process.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace det::worker {
namespace {

void CloseIf(int fd) {
  if (fd >= 0) close(fd);
}

// What the child needs, all of it built before the clone.
struct ExecArgs {
  const ChildSpec* spec;
  char* const* argv;
  char* const* shell_argv;  // null: no /bin/sh fallback on ENOEXEC
  char* const* envp;
  pid_t parent;
  int out_w, err_w, status_w;
};

// Runs in the child between clone and exec. The child shares the worker's
// memory (CLONE_VM) until it execs, so: raw system calls only, no
// allocation, nothing written but its own stack (and errno).
[[noreturn]] void ExecChild(const ExecArgs& a) {
  const ChildSpec& spec = *a.spec;
  char* const* argv = a.argv;
  char* const* shell_argv = a.shell_argv;
  char* const* envp = a.envp;
  const int out_w = a.out_w, err_w = a.err_w, status_w = a.status_w;
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // The worker may have died between clone and prctl.
  if (getppid() != a.parent) _exit(127);
  // The worker blocks and handles signals itself; the trial starts clean.
  // Dispositions first, then the mask: no worker handler may run in the
  // child (it shares the worker's memory).
  for (int sig : {SIGTERM, SIGINT, SIGPIPE, SIGCHLD, SIGHUP}) {
    signal(sig, SIG_DFL);
  }
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) dup2(devnull, STDIN_FILENO);
  dup2(out_w, STDOUT_FILENO);
  dup2(err_w, STDERR_FILENO);
  int err = 0;
  if (chdir(spec.cwd.c_str()) != 0) {
    err = errno;
  } else {
    // Nothing of the worker's (sockets, other trials' pipes) leaks into
    // the trial; the status pipe closes itself on exec.
    if (status_w > 3) close_range(3, status_w - 1, 0);
    close_range(status_w + 1, ~0U, 0);
    execve(argv[0], argv, envp);
    err = errno;
    if (err == ENOEXEC && shell_argv != nullptr) {
      execve(shell_argv[0], shell_argv, envp);
      err = errno;
    }
  }
  // Tell the parent why; it reports the failure rather than an exit code.
  ssize_t ignored = write(status_w, &err, sizeof(err));
  (void)ignored;
  _exit(127);
}

int ChildMain(void* args) { ExecChild(*static_cast<const ExecArgs*>(args)); }

}  // namespace

absl::StatusOr<Child> SpawnChild(const ChildSpec& spec) {
  if (spec.argv.empty()) {
    return absl::InvalidArgumentError("no program to start");
  }
  // Everything exec needs is built before fork: the child may not allocate.
  std::vector<char*> argv;
  for (const std::string& a : spec.argv)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  // /bin/sh PROGRAM ARGS..., for an executable without a #! line.
  const std::string shell = "/bin/sh";
  std::vector<char*> shell_argv;
  if (spec.shell_on_noexec) {
    shell_argv.push_back(const_cast<char*>(shell.c_str()));
    for (const std::string& a : spec.argv)
      shell_argv.push_back(const_cast<char*>(a.c_str()));
    shell_argv.push_back(nullptr);
  }
  std::vector<char*> envp;
  for (const std::string& e : spec.env)
    envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int out[2] = {-1, -1}, err[2] = {-1, -1}, status[2] = {-1, -1};
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0 ||
      pipe2(status, O_CLOEXEC) != 0) {
    const int e = errno;
    for (int fd : {out[0], out[1], err[0], err[1], status[0], status[1]}) {
      CloseIf(fd);
    }
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot create pipes for the trial: ", strerror(e)));
  }
  ExecArgs args{&spec,
                argv.data(),
                spec.shell_on_noexec ? shell_argv.data() : nullptr,
                envp.data(),
                getpid(),
                out[1],
                err[1],
                status[1]};
  // clone(CLONE_VM | CLONE_VFORK) rather than fork: the child runs on its
  // own small stack in the worker's memory until it execs (this thread
  // waits until then), so no copy of the worker's page tables is made and
  // torn down again for every trial (as posix_spawn does, which cannot set
  // PR_SET_PDEATHSIG).
  constexpr size_t kChildStack = 64 * 1024;
  std::unique_ptr<char[]> stack(new char[kChildStack]);
  const pid_t pid = clone(ChildMain, stack.get() + kChildStack,
                          CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
  const int fork_errno = errno;
  CloseIf(out[1]);
  CloseIf(err[1]);
  CloseIf(status[1]);
  if (pid < 0) {
    for (int fd : {out[0], err[0], status[0]}) CloseIf(fd);
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot fork the trial process: ", strerror(fork_errno)));
  }
  // Also from this side, so signalling the group works at once.
  setpgid(pid, pid);

  // The status pipe closes on a successful exec (EOF) or carries errno.
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(status[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  close(status[0]);
  if (n > 0) {
    int ignored;
    while (waitpid(pid, &ignored, 0) < 0 && errno == EINTR) {
    }
    CloseIf(out[0]);
    CloseIf(err[0]);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot start '", spec.argv[0], "' in '", spec.cwd,
                     "': ", strerror(child_errno)));
  }
  for (int fd : {out[0], err[0]}) {
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  }
  Child child;
  child.pid = pid;
  child.stdout_fd = out[0];
  child.stderr_fd = err[0];
  return child;
}

std::optional<std::vector<std::string>> PlainCommandArgv(
    const std::string& command, absl::string_view path_var) {
  auto plain = [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
           std::strchr("/._+,:@%=-", c) != nullptr;
  };
  std::vector<std::string> words;
  for (absl::string_view w :
       absl::StrSplit(command, absl::ByAnyChar(" \t"), absl::SkipEmpty())) {
    for (char c : w) {
      if (!plain(c)) return std::nullopt;
    }
    words.emplace_back(w);
  }
  if (words.empty() || absl::StrContains(words[0], '=')) return std::nullopt;
  auto runnable = [](const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
           access(path.c_str(), X_OK) == 0;
  };
  if (absl::StrContains(words[0], '/')) {
    if (words[0][0] != '/' || !runnable(words[0])) return std::nullopt;
    return words;
  }
  for (absl::string_view dir : absl::StrSplit(path_var, ':')) {
    // An empty or relative entry means the trial's working directory to the
    // shell: leave those to it.
    if (dir.empty() || dir[0] != '/') return std::nullopt;
    std::string candidate = absl::StrCat(dir, "/", words[0]);
    if (runnable(candidate)) {
      words[0] = std::move(candidate);
      return words;
    }
  }
  return std::nullopt;
}

void SignalGroup(pid_t pid, int sig) {
  if (pid <= 0) return;
  kill(-pid, sig);
  kill(pid, sig);
}

}  // namespace det::worker
