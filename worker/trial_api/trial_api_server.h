// The worker's side of the trial <-> worker API (proto/det/v1/trial.proto):
// a gRPC server on 127.0.0.1 (an ephemeral port) that the worker's trial
// processes call. Each run (trial id, run id) is registered with its spec and
// gets a random token; a process proves which run it belongs to by sending
// that token as "x-det-trial-token" metadata. Calls without a registered
// token fail with UNAUTHENTICATED.
//
//   auto server = TrialApiServer::Start({.on_metrics = ..., .on_checkpoint =
//   ...}); std::string token = (*server)->RegisterRun(spec);
//   // child env: DET_TRIAL_API_ADDR=(*server)->address(),
//   DET_TRIAL_TOKEN=token
//   (*server)->RequestStop(trial_id, run_id);   // ShouldStop now says true
//   (*server)->UnregisterRun(trial_id, run_id); // after the process exited
//
// Thread-safe: every method may be called from any thread. The handlers run
// on gRPC's server threads, never under the server's own lock.
#ifndef DET_WORKER_TRIAL_API_TRIAL_API_SERVER_H_
#define DET_WORKER_TRIAL_API_TRIAL_API_SERVER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "det/v1/common.pb.h"

namespace grpc {
class Server;
}  // namespace grpc

namespace det {

class TrialApiServer {
 public:
  // Receive what a run reported. The report's trial_id is already set to
  // the authenticated run's. A non-OK status goes back to the trial as the
  // call's status; UNAVAILABLE makes TrialContext retry with backoff (use
  // it for back-pressure), anything else fails the report.
  using MetricsHandler = std::function<absl::Status(
      int64_t trial_id, int32_t run_id, const v1::MetricReport& report)>;
  using CheckpointHandler = std::function<absl::Status(
      int64_t trial_id, int32_t run_id, const v1::Checkpoint& checkpoint)>;

  struct Handlers {
    MetricsHandler on_metrics;
    CheckpointHandler on_checkpoint;
  };

  // Starts serving on `host`:0 (an ephemeral port). Handlers left empty
  // accept and drop reports.
  static absl::StatusOr<std::unique_ptr<TrialApiServer>> Start(
      Handlers handlers, const std::string& host = "127.0.0.1");

  // Stops serving (in-flight calls get up to a second to finish).
  ~TrialApiServer();
  TrialApiServer(const TrialApiServer&) = delete;
  TrialApiServer& operator=(const TrialApiServer&) = delete;

  // "host:port", for DET_TRIAL_API_ADDR.
  const std::string& address() const { return address_; }

  // Registers the run spec.trial_id()/spec.run_id() and returns a fresh
  // token for its processes (all ranks of the run share it). Registering a
  // run again replaces its spec and token; the old token stops working.
  std::string RegisterRun(const v1::TrialSpec& spec);

  // Forgets the run: its token stops working. No-op when unknown.
  void UnregisterRun(int64_t trial_id, int32_t run_id);

  // Makes ShouldStop answer true for the run from now on. Returns false when
  // the run is not registered.
  bool RequestStop(int64_t trial_id, int32_t run_id);

  // Number of registered runs (for tests and status).
  int num_runs() const;

 private:
  class Service;
  struct Run {
    v1::TrialSpec spec;
    bool stop = false;
  };
  using RunKey = std::pair<int64_t, int32_t>;

  explicit TrialApiServer(Handlers handlers);

  // Copies out the run `token` belongs to; false when unknown.
  bool Lookup(const std::string& token, RunKey* key, v1::TrialSpec* spec,
              bool* stop) const;

  const Handlers handlers_;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;

  mutable absl::Mutex mu_;
  std::map<std::string, Run> runs_by_token_ ABSL_GUARDED_BY(mu_);
  std::map<RunKey, std::string> token_by_run_ ABSL_GUARDED_BY(mu_);
};

}  // namespace det

#endif  // DET_WORKER_TRIAL_API_TRIAL_API_SERVER_H_
