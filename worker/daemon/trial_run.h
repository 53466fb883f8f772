// One run of one trial on this worker: the processes started for it (one
// per rank held here), their output turned into log lines, stopping and
// killing, and the exit report.
//
// A TrialRun owns one supervisor thread that polls the processes' pipes and
// exits (pidfds), sends the signals, enforces the kill deadline, batches log
// lines into TrialEvent.logs and finally reports TrialExited. Every other
// method may be called from any thread.
//
// Exit reasons: every process exited 0 -> COMPLETED, or STOPPED when a stop
// had been asked for; any process exited 3 first -> INVALID_HP; any other
// failure (non-zero exit, signal) -> ERRORED, its message ending with the
// last stderr lines; killed on request or after the stop timeout -> KILLED.
// When one rank fails, the others are stopped (they would wait forever in
// collective operations): SIGTERM, then SIGKILL after the stop timeout.
#ifndef DET_WORKER_DAEMON_TRIAL_RUN_H_
#define DET_WORKER_DAEMON_TRIAL_RUN_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "det/v1/worker.pb.h"
#include "worker/daemon/child_process.h"

namespace det::worker {

class TrialRun {
 public:
  struct Process {
    int rank = 0;
    Child child;
  };

  struct Options {
    int64_t trial_id = 0;
    int32_t run_id = 0;
    // How long a graceful stop waits before SIGKILL, unless Stop() says.
    absl::Duration stop_timeout = absl::Seconds(30);
    // Log lines kept for the exit message and for Tail().
    size_t ring_lines = 200;
    // A log batch is sent when it has this many lines or bytes or is this
    // old. The byte bound keeps every message well under gRPC's default
    // 4 MiB limit (lines are at most 16 KiB each).
    size_t batch_lines = 256;
    size_t batch_bytes = 1 << 20;
    absl::Duration batch_age = absl::Milliseconds(200);
    // Stderr lines quoted in an ERRORED exit's message.
    size_t message_tail_lines = 20;
  };

  // Receives log batches; a non-OK status means the batch was dropped (the
  // outbox is full) and the run says so in a later batch.
  using LogSink = std::function<absl::Status(v1::TrialEvent event)>;
  // Receives the final TrialExited event, exactly once; must not drop it.
  using ExitSink = std::function<void(v1::TrialEvent event)>;

  // Takes ownership of the processes (and their pipes) and starts
  // supervising them.
  TrialRun(Options options, std::vector<Process> processes, LogSink on_logs,
           ExitSink on_exit);
  // Kills what is still running and waits for the supervisor to finish.
  ~TrialRun();
  TrialRun(const TrialRun&) = delete;
  TrialRun& operator=(const TrialRun&) = delete;

  // Graceful (SIGTERM, then SIGKILL after `timeout`; zero: the default) or
  // immediate (SIGKILL). A later kill overrides an earlier graceful stop.
  void Stop(bool kill, absl::Duration timeout = absl::ZeroDuration());

  // Records progress from a metrics report (TrialExited.steps_completed).
  void NoteSteps(int64_t steps);

  // True once TrialExited was handed to the exit sink.
  bool done() const { return done_.load(); }
  // Waits until done() or the timeout passes; returns done().
  bool WaitDone(absl::Duration timeout);

  // The last `n` log lines, oldest first (formatted "source: line").
  std::vector<std::string> Tail(size_t n) const;

  int64_t trial_id() const { return options_.trial_id; }
  int32_t run_id() const { return options_.run_id; }

 private:
  struct Stream;  // one pipe being read
  struct Proc;    // one process being watched

  void Supervise();
  void ReadStream(Stream& s);
  void AddLine(const std::string& source, std::string line, int rank);
  void FlushLogs(bool force);
  void SignalLive(int sig);
  void ApplyStopRequest();
  void ReapExited();
  v1::TrialEvent ExitEvent();

  const Options options_;
  LogSink on_logs_;
  ExitSink on_exit_;
  std::vector<Proc> procs_;      // supervisor thread only
  std::vector<Stream> streams_;  // supervisor thread only
  int wake_fd_ = -1;             // eventfd: Stop() wakes the supervisor

  // Supervisor thread only.
  std::vector<v1::LogLine> batch_;
  size_t batch_bytes_ = 0;
  absl::Time batch_start_;
  int64_t dropped_lines_ = 0;
  bool stop_applied_ = false;       // SIGTERM sent for a stop request
  bool kill_applied_ = false;       // SIGKILL sent for a kill request
  bool failure_term_sent_ = false;  // SIGTERM sent because a rank failed
  absl::Time kill_deadline_ = absl::InfiniteFuture();
  bool deadline_from_stop_ = false;
  bool killed_by_worker_ = false;
  bool was_stopped_ = false;  // a stop or kill reached live processes
  std::string kill_reason_;
  int first_failure_ = -1;  // index into procs_

  std::atomic<int64_t> steps_{0};
  std::atomic<bool> done_{false};

  mutable absl::Mutex mu_;
  // Stop requests, for the supervisor to apply.
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool kill_requested_ ABSL_GUARDED_BY(mu_) = false;
  absl::Duration stop_timeout_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> ring_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> stderr_tail_ ABSL_GUARDED_BY(mu_);

  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace det::worker

#endif  // DET_WORKER_DAEMON_TRIAL_RUN_H_
