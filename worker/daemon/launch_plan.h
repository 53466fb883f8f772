// How the worker starts a run, decided before anything is touched: the
// checks on the StartTrial, the command (det-trial, the entrypoint's words
// exec'ed directly, or the shell), the run's directory and one process per
// rank with its slots. Pure but for one look at the filesystem, through
// `find_program`; the worker (agent.cc) then carries the plan out.
#ifndef DET_WORKER_DAEMON_LAUNCH_PLAN_H_
#define DET_WORKER_DAEMON_LAUNCH_PLAN_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "det/v1/worker.pb.h"

namespace det::worker {

struct LaunchContext {
  int num_slots = 0;         // slots of this worker
  std::string work_dir;      // run directories go here
  std::string trial_binary;  // det-trial, for an empty entrypoint
  bool trial_binary_executable = false;
  // The entrypoint's words when it is a plain command of an executable
  // (PlainCommandArgv in child_process.h), nullopt for the shell.
  std::function<std::optional<std::vector<std::string>>(const std::string&)>
      find_program;
};

struct LaunchPlan {
  struct Process {
    int rank = 0;
    std::vector<int32_t> slots;
  };
  std::string dir;  // work_dir/trial-<id>-run-<n>
  std::vector<std::string> argv;
  // Exec'ed directly: an executable without "#!" still goes to /bin/sh.
  bool shell_on_noexec = false;
  std::vector<Process> processes;  // one per rank started here
};

// INVALID_ARGUMENT (with what is wrong, for the trial's logs) for a request
// this worker cannot carry out: no trial id, slots that are not distinct
// slots of this worker, ranks outside the world size, no checkpoint
// directory, a missing built-in trainer.
absl::StatusOr<LaunchPlan> PlanLaunch(const v1::StartTrial& start,
                                      const LaunchContext& ctx);

// Applies the experiment's environment variables ("KEY=VALUE") to a
// trial's environment `env`: each replaces an entry of the same name, in
// order, except DET_*, CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER, which
// the worker owns (those are skipped). Entries without '=' are skipped.
void ApplyUserEnvironment(
    const google::protobuf::RepeatedPtrField<std::string>& user,
    std::vector<std::string>* env);

}  // namespace det::worker

#endif  // DET_WORKER_DAEMON_LAUNCH_PLAN_H_
