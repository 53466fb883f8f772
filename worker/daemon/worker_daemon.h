// det-worker's core: registers this machine's slots with the master, starts
// and stops trial processes on the master's command, and relays what they
// report (metrics, checkpoints, logs, exit) back to it, losing nothing
// across reconnects.
//
//   WorkerOptions options = ...;            // from flags, see main.cc
//   auto daemon = WorkerDaemon::Create(options);
//   absl::Status s = (*daemon)->Run();       // until Shutdown() or refusal
//
// Threads and what they own:
//  - the control thread (the caller of Run()): the table of runs, starting
//    processes (fork happens only here: PR_SET_PDEATHSIG is tied to the
//    forking thread, and this one lives as long as the worker), stopping
//    them and reaping finished runs. Other threads talk to it through a
//    command queue.
//  - the master link's threads (see master_link.h): the stream; they post
//    StartTrial/StopTrial/Welcome to the command queue.
//  - gRPC threads of the TrialApiServer: metrics and checkpoints, forwarded
//    straight into the outbox (with back-pressure when it is full).
//  - one supervisor thread per run (see trial_run.h): output and exit.
#ifndef DET_WORKER_DAEMON_WORKER_DAEMON_H_
#define DET_WORKER_DAEMON_WORKER_DAEMON_H_

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "det/v1/worker.pb.h"
#include "worker/daemon/master_link.h"
#include "worker/daemon/outbox.h"
#include "worker/daemon/trial_run.h"
#include "worker/trial_api/trial_api_server.h"

namespace det::worker {

struct WorkerOptions {
  std::string master;  // host:port
  std::string token;
  std::string tls_ca_pem;  // see MasterLink::Options
  std::string tls_server_name;
  std::string worker_id;
  std::vector<v1::Slot> slots;
  int cores = 1;                // usable cores, shared among CPU slots
  std::string work_dir;         // trial working directories go here
  std::string trial_binary;     // det-trial, for an empty entrypoint
  std::string data_dir;         // DET_DATA_DIR for trials (optional)
  std::string checkpoint_root;  // overrides TrialSpec.checkpoint_dir if set
  std::string advertise_host;   // Hello.host (optional)
  absl::Duration heartbeat = absl::ZeroDuration();  // zero: the master's
  absl::Duration stop_timeout = absl::Seconds(30);
  // How long shutdown waits for the master to acknowledge the last events.
  absl::Duration final_ack_timeout = absl::Seconds(5);
  Outbox::Limits outbox_limits;
};

class WorkerDaemon {
 public:
  // Starts the trial API server; connects nothing yet.
  static absl::StatusOr<std::unique_ptr<WorkerDaemon>> Create(
      WorkerOptions options);
  ~WorkerDaemon();
  WorkerDaemon(const WorkerDaemon&) = delete;
  WorkerDaemon& operator=(const WorkerDaemon&) = delete;

  // Connects to the master and serves it until Shutdown() (returns OK after
  // stopping every trial gracefully) or until the master refuses this
  // worker (stops the trials, returns the refusal).
  absl::Status Run();

  // Asks Run() to return. Thread-safe; not async-signal-safe (main.cc
  // calls it from a signal-waiting thread).
  void Shutdown();

 private:
  struct Command {
    enum class Kind {
      kStart,
      kStop,
      kWelcome,
      kShutdown,
      kRefused,
      kDeleteCheckpoints
    } kind;
    v1::MasterMessage message;
    v1::Welcome welcome;
    absl::Status status;
  };
  struct RunEntry {
    std::unique_ptr<TrialRun> run;
    std::vector<int32_t> slot_ids;
    std::string dir;
  };
  using RunKey = std::pair<int64_t, int32_t>;

  explicit WorkerDaemon(WorkerOptions options);

  void Post(Command c);
  v1::Hello MakeHello();
  void StartTrial(const v1::StartTrial& start);
  // Garbage collection: removes dir/<uuid> for each uuid (a missing one
  // is removed already) and reports those removed.
  void DeleteCheckpoints(const v1::DeleteCheckpoints& d);
  // run_id 0: whichever run of the trial runs here.
  void StopTrial(int64_t trial_id, int32_t run_id, bool kill,
                 absl::Duration timeout);
  void ReapFinished();
  // Control thread: makes `dir` an empty directory, renaming a spare one
  // (see spare_dirs_) into place when there is one.
  std::error_code MakeTrialDir(const std::string& dir);
  // Control thread: empties a finished run's directory and keeps it as a
  // spare, or removes it when there are enough spares.
  void RecycleTrialDir(const std::string& dir);
  void RemoveSpareDirs();
  void StopAll(bool kill);
  // Control thread: stops every trial once the master has been away longer
  // than its agent timeout (it has restarted them elsewhere by then).
  void StopTrialsIfMasterLost();
  // A run that failed before any process started.
  void ReportStartFailure(const v1::TrialSpec& spec, const std::string& why);
  void Emit(v1::TrialEvent event, bool force);
  std::vector<std::string> ChildEnvironment(const v1::TrialSpec& spec,
                                            const std::string& token, int rank,
                                            const std::vector<int32_t>& slots);
  absl::Status OnReport(int64_t trial_id, int32_t run_id, v1::TrialEvent event,
                        int64_t steps);

  const WorkerOptions options_;
  const std::string incarnation_;
  Outbox outbox_;
  std::unique_ptr<TrialApiServer> api_;
  std::unique_ptr<MasterLink> link_;
  // Control thread only: when the worker last had a welcomed stream, the
  // master's agent timeout (from Welcome; 60 s until one arrives) and
  // whether the trials were already stopped for this absence.
  absl::Time last_with_master_;
  absl::Duration master_lost_after_ = absl::Seconds(60);
  bool stopped_for_lost_master_ = false;
  // Control thread only: empty directories of finished runs
  // (work_dir/.spare-N), renamed into place for the next run. Creating a
  // directory right after deleting many costs ext4 a search for a free
  // inode (find_inode_bit, recently_deleted: a fifth of the worker's CPU
  // per trial in the overhead benchmark); a rename allocates nothing.
  std::vector<std::string> spare_dirs_;
  int64_t spares_made_ = 0;

  absl::Mutex mu_;
  std::deque<Command> commands_ ABSL_GUARDED_BY(mu_);
  // Written by the control thread only; read by others under mu_.
  std::map<RunKey, RunEntry> runs_ ABSL_GUARDED_BY(mu_);
};

}  // namespace det::worker

#endif  // DET_WORKER_DAEMON_WORKER_DAEMON_H_
