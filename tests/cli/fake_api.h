// A fake det.v1.Api master for the CLI tests: canned experiments, trials,
// agents and log lines, scripted WatchExperiment streams, and a record of
// what the CLI sent (requests and the authorization header). It listens on
// 127.0.0.1 on a free port.
#ifndef DET_TESTS_CLI_FAKE_API_H_
#define DET_TESTS_CLI_FAKE_API_H_

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "det/v1/api.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace det::cli::testing {

class FakeApi final : public v1::Api::Service {
 public:
  // Canned data; set before the CLI runs.
  std::map<int64_t, v1::Experiment> experiments;
  std::map<int64_t, v1::Trial> trials;
  std::map<int64_t, std::vector<v1::MetricReport>> validations;
  std::map<int64_t, std::vector<v1::TrialLogLine>> logs;
  std::vector<v1::Agent> agents;
  v1::MasterInfo master_info;
  int64_t next_experiment_id = 5;
  // The states WatchExperiment sends, in order, per experiment id.
  std::map<int64_t, std::vector<v1::Experiment>> watch_script;
  // When >= 0, the first WatchExperiment (or followed StreamTrialLogs) call
  // sends this many messages and then fails with UNAVAILABLE, as a master
  // going away would.
  int break_first_stream_after = -1;
  // A config_yaml containing this text is refused with INVALID_ARGUMENT.
  std::string reject_config_containing = "invalid: true";

  // What the CLI sent (read after it returned).
  std::mutex mu;
  std::vector<v1::CreateExperimentRequest> create_requests;
  std::vector<v1::ContinueExperimentRequest> continue_requests;
  std::vector<std::string> authorizations;  // one per call, "" when none
  std::vector<int64_t> log_after_ids;       // after_id of each logs call
  int watch_calls = 0;

  grpc::Status CreateExperiment(
      grpc::ServerContext* context, const v1::CreateExperimentRequest* request,
      v1::CreateExperimentResponse* response) override;
  grpc::Status GetExperiment(grpc::ServerContext* context,
                             const v1::GetExperimentRequest* request,
                             v1::Experiment* response) override;
  grpc::Status ListExperiments(grpc::ServerContext* context,
                               const v1::ListExperimentsRequest* request,
                               v1::ListExperimentsResponse* response) override;
  grpc::Status ListTrials(grpc::ServerContext* context,
                          const v1::ListTrialsRequest* request,
                          v1::ListTrialsResponse* response) override;
  grpc::Status GetTrial(grpc::ServerContext* context,
                        const v1::GetTrialRequest* request,
                        v1::Trial* response) override;
  grpc::Status GetTrialMetrics(grpc::ServerContext* context,
                               const v1::GetTrialMetricsRequest* request,
                               v1::GetTrialMetricsResponse* response) override;
  grpc::Status StreamTrialLogs(
      grpc::ServerContext* context, const v1::StreamTrialLogsRequest* request,
      grpc::ServerWriter<v1::TrialLogLine>* writer) override;
  // Continue (issue 15): records the request; the experiment becomes
  // ACTIVE (NOT_FOUND for an unknown id).
  grpc::Status ContinueExperiment(
      grpc::ServerContext* context,
      const v1::ContinueExperimentRequest* request,
      v1::ContinueExperimentResponse* response) override;
  grpc::Status PauseExperiment(grpc::ServerContext* context,
                               const v1::ExperimentIdRequest* request,
                               v1::Experiment* response) override;
  grpc::Status CancelExperiment(grpc::ServerContext* context,
                                const v1::ExperimentIdRequest* request,
                                v1::Experiment* response) override;
  grpc::Status WatchExperiment(
      grpc::ServerContext* context, const v1::ExperimentIdRequest* request,
      grpc::ServerWriter<v1::Experiment>* writer) override;
  grpc::Status ListAgents(grpc::ServerContext* context,
                          const v1::ListAgentsRequest* request,
                          v1::ListAgentsResponse* response) override;
  grpc::Status GetMasterInfo(grpc::ServerContext* context,
                             const v1::GetMasterInfoRequest* request,
                             v1::MasterInfo* response) override;

 private:
  void Record(grpc::ServerContext* context);
  // True (once) when this stream call should break.
  bool TakeBreak();
};

// The fake served on 127.0.0.1:<free port>.
class FakeMaster {
 public:
  // Plain text, or TLS with this PEM key and certificate.
  FakeMaster();
  FakeMaster(const std::string& tls_key_pem, const std::string& tls_cert_pem);
  ~FakeMaster();
  FakeApi& api() { return api_; }
  std::string address() const;

 private:
  FakeApi api_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace det::cli::testing

#endif  // DET_TESTS_CLI_FAKE_API_H_
