// Slurm as a source of workers: the part of a Slurm resource manager that
// does not touch the master's core. It parses `resource_manager: {type:
// slurm, ...}`, writes the batch script that runs det-worker on the node
// Slurm allocates, talks to Slurm through its commands (sbatch, squeue,
// sacct, scancel; behind CommandRunner so tests can stand in for them),
// and decides, from what the master tells it, when to submit a job, when
// to cancel an idle one and which ended jobs to report.
//
// SlurmWorkerSource (slurm_source.h) drives these for the master.
//
// Workers started by a job are named "slurm-<job id>", so `det agent list`
// shows the job id.
#ifndef DET_MASTER_SLURM_SLURM_H_
#define DET_MASTER_SLURM_SLURM_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace YAML {
class Node;
}

namespace det::slurm {

struct SlurmOptions {
  std::string partition;  // sbatch --partition (empty: the cluster's default)
  std::string account;    // sbatch --account
  // GPUs per job (--gres=gpu:N; the worker offers one slot per GPU), or 0
  // for CPU jobs of cpus_per_job cores offering slots_per_job CPU slots.
  int gpus_per_job = 0;
  int cpus_per_job = 1;
  int slots_per_job = 1;
  std::string time_limit;                // sbatch --time, e.g. "02:00:00"
  std::vector<std::string> sbatch_args;  // more options, verbatim
  int max_jobs = 8;                      // submitted and not ended
  absl::Duration idle_timeout = absl::Minutes(5);
  absl::Duration poll_interval = absl::Seconds(10);
  std::string worker_binary = "det-worker";
  // Master address the job's worker dials, and its TLS CA file (optional).
  std::string master_address;
  std::string tls_ca;
  std::string log_dir;  // the job's output (%j.log); empty: sbatch's default

  // Slots one job brings.
  int SlotsPerJob() const {
    return gpus_per_job > 0 ? gpus_per_job : slots_per_job;
  }
};

// Parses the `resource_manager` mapping of master.yaml (`path` names it in
// messages). Errors name the field and its line and column; several at
// once are joined.
absl::StatusOr<SlurmOptions> ParseSlurmOptions(const YAML::Node& node);

// Whether `t` is a time Slurm's --time accepts: M, M:S, H:M:S, D-H, D-H:M,
// D-H:M:S, or "UNLIMITED"/"INFINITE".
bool ValidSlurmTime(absl::string_view t);

// The batch script for one worker job. The token is not written in it: the
// job inherits DET_TOKEN from sbatch's environment (--export=ALL).
std::string BatchScript(const SlurmOptions& o);

// What Slurm says of a job.
enum class JobState {
  kPending,    // PENDING, CONFIGURING, REQUEUED, ...
  kRunning,    // RUNNING, COMPLETING, SUSPENDED
  kCompleted,  // COMPLETED (the worker exited 0: idle exit or scancel by us)
  kFailed,     // FAILED, NODE_FAIL, OUT_OF_MEMORY, BOOT_FAIL, DEADLINE
  kCancelled,  // CANCELLED (by someone else), PREEMPTED
  kTimeout,    // TIMEOUT: the time limit was reached
  kUnknown,
};
JobState ParseJobState(absl::string_view slurm_state);
absl::string_view JobStateName(JobState s);

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a command (argv[0] searched in PATH) with `input` on its stdin.
class CommandRunner {
 public:
  virtual ~CommandRunner() = default;
  virtual absl::StatusOr<CommandResult> Run(
      const std::vector<std::string>& argv, const std::string& input) = 0;
};

// fork/exec with a time limit (SIGKILL after `timeout`).
std::unique_ptr<CommandRunner> MakeProcessRunner(absl::Duration timeout);

// Slurm's commands.
class SlurmClient {
 public:
  explicit SlurmClient(CommandRunner* runner) : runner_(runner) {}

  // sbatch --parsable with the script on stdin; the job id.
  absl::StatusOr<std::string> Submit(const std::string& script);
  // The state of each job in `ids`: squeue for those it still lists, sacct
  // for the rest (jobs that ended); a job neither knows is kUnknown.
  absl::StatusOr<std::map<std::string, JobState>> States(
      const std::set<std::string>& ids);
  absl::Status Cancel(const std::string& id);

 private:
  CommandRunner* runner_;
};

// A job det submitted and what came of it.
struct JobEvent {
  std::string job_id;
  std::string worker_id;  // "slurm-<job id>"
  JobState state;
  bool expected;  // ended because det cancelled it (idle) or its worker exited
  std::string message;  // for the experiment's events, when not expected
};

// The decisions, with no I/O: the master calls it and carries them out
// through SlurmClient.
class SlurmProvisioner {
 public:
  explicit SlurmProvisioner(SlurmOptions o) : o_(std::move(o)) {}

  // How many jobs to submit now for `unplaceable_slots` slots of queued
  // trials that connected workers cannot take: the jobs still pending (not
  // yet a worker) count as capacity on the way; never more than max_jobs
  // in all.
  int JobsToSubmit(int unplaceable_slots) const;
  void Submitted(const std::string& job_id, absl::Time now);

  // A worker of one of our jobs registered (running) or its busy/idle
  // state changed. Ignored for workers not named slurm-<our job>.
  void WorkerSeen(const std::string& worker_id, bool idle, absl::Time now);

  // Jobs whose worker has been idle past idle_timeout: cancel them (their
  // end is then expected, not a failure).
  std::vector<std::string> IdleJobsToCancel(absl::Time now);

  // Applies a poll's states; returns the jobs that ended (each once).
  std::vector<JobEvent> Update(const std::map<std::string, JobState>& states);

  std::set<std::string> ActiveJobs() const;
  static std::string WorkerIdFor(const std::string& job_id) {
    return "slurm-" + job_id;
  }

 private:
  struct Job {
    absl::Time submitted;
    bool worker_seen = false;
    std::optional<absl::Time> idle_since;
    bool cancelled_by_us = false;
  };
  SlurmOptions o_;
  std::map<std::string, Job> jobs_;  // active (not ended)
};

}  // namespace det::slurm

#endif  // DET_MASTER_SLURM_SLURM_H_
