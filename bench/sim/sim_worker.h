// A simulated det worker: one thread pair that speaks the real worker
// protocol (proto/det/v1/worker.proto) to a real det-master over gRPC, and
// answers StartTrial the way a real trial would, without any process:
//
//  - scale mode: the trial "trains" for batch_ms per batch, reports a
//    validation at each of spec.validation_points and at the target, then a
//    checkpoint and an exit (COMPLETED); a StopTrial (an ASHA stop) makes it
//    report a checkpoint and exit STOPPED at once.
//  - ingest mode: the trial streams metric reports (steps 1, 2, 3, ...) as
//    fast as the master's acks allow, with at most `window` messages
//    unacknowledged, until the simulation stops.
//
// Measurements (client side, so they include gRPC and the master's queue):
//  - slot idle time: from writing a trial's exit on a slot to the next
//    StartTrial naming that slot (the "scheduling latency" a user pays);
//  - ack latency: from writing a message to the master's Ack covering it.
//
// Threads: a reader (blocking Read; acks are handled there, other messages
// are queued) and a driver (the only writer; runs trials and heartbeats).
// Everything they share is guarded by mu_.
#ifndef DET_BENCH_SIM_SIM_WORKER_H_
#define DET_BENCH_SIM_SIM_WORKER_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "det/v1/worker.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace det::bench {

using Clock = std::chrono::steady_clock;

enum class SimMode { kScale, kIngest };

struct SimOptions {
  std::string master;  // host:port
  SimMode mode = SimMode::kScale;
  int slots = 8;
  double batch_ms = 1.0;  // scale: simulated time per batch
  // scale: each trial's batch time is batch_ms * U(1 - jitter, 1 + jitter),
  // as real trials differ in speed (so their validations do not all land on
  // the master at the same instant).
  double jitter = 0.0;
  bool checkpoints = true;  // scale: report a checkpoint before each exit
  int window = 256;         // ingest: max unacknowledged messages
  bool validation = false;  // ingest: report validation (else training)
  int protocol_version = 1;
  std::string version = "0.1.0";
};

// What one worker measured; merged over workers by the caller.
struct SimStats {
  // Slot idle time between an exit and the next start on it, with the
  // time (seconds since the simulation's epoch) the start arrived.
  std::vector<std::pair<double, double>> idle_ms;
  std::vector<float> ack_ms;  // per acknowledged message
  int64_t starts = 0;
  int64_t stops_received = 0;
  int64_t exits_completed = 0;
  int64_t exits_stopped = 0;
  int64_t reports_sent = 0;
  int64_t reports_acked = 0;
  int64_t messages_sent = 0;
  // Sanity: a StartTrial naming a slot another trial of ours still holds,
  // or a trial that is already running here.
  int64_t slot_conflicts = 0;
  int64_t duplicate_starts = 0;
  // ingest: acked reports per 100 ms bucket since the epoch.
  std::vector<int64_t> acked_per_bucket;
  std::string error;  // why the stream ended early, if it did
};

class SimWorker {
 public:
  SimWorker(std::string id, SimOptions options, Clock::time_point epoch);
  ~SimWorker();
  SimWorker(const SimWorker&) = delete;
  SimWorker& operator=(const SimWorker&) = delete;

  // Opens the stream, sends Hello and starts the threads.
  void Start();
  bool welcomed() const;
  // Ingest mode: from now on, exit each trial (COMPLETED) instead of
  // sending more reports.
  void FinishTrials();
  // Cancels the stream and joins the threads. Idempotent.
  void Stop();
  // Valid after Stop().
  const SimStats& stats() const { return stats_; }

 private:
  struct Trial {
    v1::TrialSpec spec;
    std::vector<int32_t> slot_ids;
    std::vector<int64_t> points;  // validation points, ascending, incl. target
    size_t next = 0;              // next point to report
    int64_t steps = 0;            // last steps reported
    Clock::time_point due;        // when the next point is reached
    double x = 0.5, y = 0.5;
    double batch_ms = 0;  // this trial's time per batch
  };
  struct Sent {
    int64_t seq;
    Clock::time_point at;
    bool report;
  };

  void ReaderLoop();
  void DriverLoop();
  // Driver thread only.
  bool Send(v1::WorkerMessage m, bool report);
  void OnStart(const v1::StartTrial& s);
  void OnStop(const v1::StopTrial& s);
  void ReportNext(Trial& t);
  void Exit(int64_t trial_id, v1::ExitReason reason);
  bool PumpIngest();  // returns false when the window is full

  const std::string id_;
  const SimOptions options_;
  const Clock::time_point epoch_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
  grpc::ClientContext ctx_;
  std::unique_ptr<
      grpc::ClientReaderWriter<v1::WorkerMessage, v1::MasterMessage>>
      stream_;
  std::thread reader_, driver_;
  bool stopped_ = false;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool welcomed_ = false;
  bool done_ = false;    // stop requested or stream ended
  bool finish_ = false;  // ingest: exit trials now
  std::chrono::milliseconds heartbeat_{2500};
  std::deque<v1::MasterMessage> inbox_;
  std::deque<Sent> unacked_;
  int64_t acked_ = 0;
  int64_t seq_ = 0;  // last seq written (driver)
  SimStats stats_;   // ack_ms/acked counts: reader; rest: driver

  // Driver-only state.
  std::map<int64_t, Trial> trials_;
  std::vector<Clock::time_point> slot_freed_;  // epoch() = never used
  std::vector<int64_t> slot_trial_;            // 0 = free
  std::mt19937_64 rng_;
};

}  // namespace det::bench

#endif  // DET_BENCH_SIM_SIM_WORKER_H_
