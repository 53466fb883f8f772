// Client: the det command's connection to the master's det.v1.Api service.
//
// It owns the gRPC channel, adds the bearer token to every call, puts a
// deadline on every unary call, and turns gRPC failures into absl::Status
// values whose messages tell the user what to do (where it tried to reach
// the master and how to point it elsewhere). Not thread-safe: one command
// uses it from one thread.
#ifndef DET_CLI_CLIENT_H_
#define DET_CLI_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "det/v1/api.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace det::cli {

// The master's gRPC port when DET_MASTER names only a host.
inline constexpr int kDefaultMasterPort = 8090;
inline constexpr char kDefaultMaster[] = "127.0.0.1:8090";

struct ClientOptions {
  // HOST:PORT; "http://", "grpc://" and "https://" prefixes are accepted
  // ("https://" turns TLS on), and a missing port means 8090.
  std::string master = kDefaultMaster;
  // Sent as "authorization: Bearer <token>" when not empty.
  std::string token;
  // PEM file of the CA that signed the master's certificate: TLS when set.
  std::string tls_ca_file;
  // Deadline of ordinary calls, and of experiment creation (which uploads
  // and validates a context directory).
  absl::Duration call_timeout = absl::Seconds(30);
  absl::Duration create_timeout = absl::Seconds(120);
};

// What to do to a running experiment.
enum class ExperimentAction { kPause, kActivate, kCancel, kKill };

class Client {
 public:
  // Builds the channel (no network traffic yet). Fails when the address is
  // malformed or the CA file cannot be read.
  static absl::StatusOr<std::unique_ptr<Client>> Create(
      const ClientOptions& options);

  // The address calls go to, as the user should write it in DET_MASTER.
  const std::string& target() const { return target_; }

  absl::StatusOr<v1::CreateExperimentResponse> CreateExperiment(
      const v1::CreateExperimentRequest& request);
  absl::StatusOr<v1::Experiment> GetExperiment(int64_t experiment_id);
  absl::StatusOr<v1::ListExperimentsResponse> ListExperiments();
  absl::StatusOr<v1::ListTrialsResponse> ListTrials(int64_t experiment_id);
  absl::StatusOr<v1::Trial> GetTrial(int64_t trial_id);
  absl::StatusOr<v1::GetTrialMetricsResponse> GetTrialMetrics(
      int64_t trial_id, v1::MetricGroup group);
  absl::StatusOr<v1::Experiment> ChangeExperiment(int64_t experiment_id,
                                                  ExperimentAction action);
  absl::StatusOr<v1::ListAgentsResponse> ListAgents();
  // Continue (issue 15)
  absl::StatusOr<v1::ContinueExperimentResponse> ContinueExperiment(
      const v1::ContinueExperimentRequest& request);
  absl::StatusOr<v1::MasterInfo> GetMasterInfo();

  // Experiment administration (issue 15).
  absl::StatusOr<v1::Experiment> PatchExperiment(
      const v1::PatchExperimentRequest& request);
  absl::StatusOr<v1::Experiment> SetExperimentArchived(int64_t experiment_id,
                                                       bool archived);
  // The config as it stands (the YAML with later changes written in).
  absl::StatusOr<std::string> GetExperimentConfig(int64_t experiment_id);
  absl::StatusOr<v1::CreateExperimentResponse> ForkExperiment(
      const v1::ForkExperimentRequest& request);
  absl::StatusOr<v1::Trial> KillTrial(int64_t trial_id);

  // Server streams. `on_message` is called for each message; returning
  // false ends the stream early (and the result is then OK). `max_duration`
  // bounds the whole stream: a stream that outlives it ends with
  // DEADLINE_EXCEEDED, which callers treat as "watch again".
  absl::Status WatchExperiment(
      int64_t experiment_id, absl::Duration max_duration,
      const std::function<bool(const v1::Experiment&)>& on_message);
  absl::Status StreamTrialLogs(
      const v1::StreamTrialLogsRequest& request, absl::Duration max_duration,
      const std::function<bool(const v1::TrialLogLine&)>& on_message);

  // Checkpoints (issue 15).
  absl::StatusOr<v1::GetExperimentCheckpointsResponse> GetExperimentCheckpoints(
      int64_t experiment_id, int best);
  absl::StatusOr<v1::CheckpointDetail> GetCheckpoint(const std::string& uuid);
  absl::StatusOr<v1::DeleteExperimentResponse> DeleteExperiment(
      int64_t experiment_id);
  absl::Status DownloadCheckpoint(
      const std::string& uuid, absl::Duration max_duration,
      const std::function<bool(const v1::CheckpointChunk&)>& on_message);

  // A gRPC status as an absl::Status, with hints for the failures a user
  // can fix (unreachable master, missing token).
  absl::Status Convert(const grpc::Status& status) const;

 private:
  Client(ClientOptions options, std::string target,
         std::shared_ptr<grpc::Channel> channel);

  // A context with the token and a deadline `timeout` from now.
  std::unique_ptr<grpc::ClientContext> NewContext(absl::Duration timeout) const;

  template <typename Request, typename Response>
  absl::StatusOr<Response> Unary(
      grpc::Status (v1::Api::StubInterface::*method)(grpc::ClientContext*,
                                                     const Request&, Response*),
      const Request& request, absl::Duration timeout);

  template <typename Request, typename Message>
  absl::Status Stream(std::unique_ptr<grpc::ClientReaderInterface<Message>> (
                          v1::Api::StubInterface::*method)(grpc::ClientContext*,
                                                           const Request&),
                      const Request& request, absl::Duration max_duration,
                      const std::function<bool(const Message&)>& on_message);

  ClientOptions options_;
  std::string target_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Api::StubInterface> stub_;
};

// Reads a whole file; the error names the path and the reason.
absl::StatusOr<std::string> ReadFile(const std::string& path);

}  // namespace det::cli

#endif  // DET_CLI_CLIENT_H_
