#include "tests/cli/fake_api.h"

#include <stdexcept>
#include <string>

namespace det::cli::testing {
namespace {

grpc::Status NotFound(const char* what, int64_t id) {
  return grpc::Status(
      grpc::StatusCode::NOT_FOUND,
      std::string(what) + " " + std::to_string(id) + " not found");
}

}  // namespace

void FakeApi::Record(grpc::ServerContext* context) {
  std::string authorization;
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("authorization");
  if (it != metadata.end()) {
    authorization.assign(it->second.data(), it->second.size());
  }
  std::lock_guard<std::mutex> lock(mu);
  authorizations.push_back(authorization);
}

bool FakeApi::TakeBreak() {
  std::lock_guard<std::mutex> lock(mu);
  if (break_first_stream_after < 0) return false;
  return true;
}

grpc::Status FakeApi::CreateExperiment(
    grpc::ServerContext* context, const v1::CreateExperimentRequest* request,
    v1::CreateExperimentResponse* response) {
  Record(context);
  std::lock_guard<std::mutex> lock(mu);
  create_requests.push_back(*request);
  if (request->config_yaml().find(reject_config_containing) !=
      std::string::npos) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "line 1, column 1: invalid: unknown field");
  }
  response->add_warnings("max_concurrent_trials is larger than the cluster");
  if (request->validate_only()) return grpc::Status::OK;
  v1::Experiment& e = *response->mutable_experiment();
  e.set_id(next_experiment_id);
  e.set_state(request->activate() ? v1::STATE_ACTIVE : v1::STATE_PAUSED);
  e.set_config_yaml(request->config_yaml());
  experiments[e.id()] = e;
  return grpc::Status::OK;
}

grpc::Status FakeApi::GetExperiment(grpc::ServerContext* context,
                                    const v1::GetExperimentRequest* request,
                                    v1::Experiment* response) {
  Record(context);
  std::lock_guard<std::mutex> lock(mu);
  auto it = experiments.find(request->experiment_id());
  if (it == experiments.end()) {
    return NotFound("experiment", request->experiment_id());
  }
  *response = it->second;
  return grpc::Status::OK;
}

grpc::Status FakeApi::ListExperiments(grpc::ServerContext* context,
                                      const v1::ListExperimentsRequest*,
                                      v1::ListExperimentsResponse* response) {
  Record(context);
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& [id, e] : experiments) *response->add_experiments() = e;
  return grpc::Status::OK;
}

grpc::Status FakeApi::ListTrials(grpc::ServerContext* context,
                                 const v1::ListTrialsRequest* request,
                                 v1::ListTrialsResponse* response) {
  Record(context);
  std::lock_guard<std::mutex> lock(mu);
  if (experiments.count(request->experiment_id()) == 0) {
    return NotFound("experiment", request->experiment_id());
  }
  for (const auto& [id, t] : trials) {
    if (t.experiment_id() == request->experiment_id()) {
      *response->add_trials() = t;
    }
  }
  return grpc::Status::OK;
}

grpc::Status FakeApi::GetTrial(grpc::ServerContext* context,
                               const v1::GetTrialRequest* request,
                               v1::Trial* response) {
  Record(context);
  std::lock_guard<std::mutex> lock(mu);
  auto it = trials.find(request->trial_id());
  if (it == trials.end()) return NotFound("trial", request->trial_id());
  *response = it->second;
  return grpc::Status::OK;
}

grpc::Status FakeApi::GetTrialMetrics(grpc::ServerContext* context,
                                      const v1::GetTrialMetricsRequest* request,
                                      v1::GetTrialMetricsResponse* response) {
  Record(context);
  std::lock_guard<std::mutex> lock(mu);
  if (trials.count(request->trial_id()) == 0) {
    return NotFound("trial", request->trial_id());
  }
  auto reports = validations.find(request->trial_id());
  if (reports == validations.end()) return grpc::Status::OK;
  for (const auto& report : reports->second) {
    if (request->group() == v1::METRIC_GROUP_UNSPECIFIED ||
        request->group() == report.group()) {
      *response->add_reports() = report;
    }
  }
  return grpc::Status::OK;
}

grpc::Status FakeApi::StreamTrialLogs(
    grpc::ServerContext* context, const v1::StreamTrialLogsRequest* request,
    grpc::ServerWriter<v1::TrialLogLine>* writer) {
  Record(context);
  std::vector<v1::TrialLogLine> lines;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (trials.count(request->trial_id()) == 0) {
      return NotFound("trial", request->trial_id());
    }
    log_after_ids.push_back(request->after_id());
    auto it = logs.find(request->trial_id());
    if (it != logs.end()) lines = it->second;
  }
  const bool breaks = request->follow() && TakeBreak();
  int sent = 0;
  for (const auto& line : lines) {
    if (line.id() <= request->after_id()) continue;
    if (breaks && sent == break_first_stream_after) {
      std::lock_guard<std::mutex> lock(mu);
      break_first_stream_after = -1;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "master restarting");
    }
    if (!writer->Write(line)) return grpc::Status::CANCELLED;
    ++sent;
  }
  return grpc::Status::OK;
}

grpc::Status FakeApi::ContinueExperiment(
    grpc::ServerContext* context, const v1::ContinueExperimentRequest* request,
    v1::ContinueExperimentResponse* response) {
  Record(context);
  std::lock_guard<std::mutex> lock(mu);
  continue_requests.push_back(*request);
  auto it = experiments.find(request->experiment_id());
  if (it == experiments.end()) {
    return NotFound("experiment", request->experiment_id());
  }
  it->second.set_state(v1::STATE_ACTIVE);
  *response->mutable_experiment() = it->second;
  return grpc::Status::OK;
}

grpc::Status FakeApi::PauseExperiment(grpc::ServerContext* context,
                                      const v1::ExperimentIdRequest* request,
                                      v1::Experiment* response) {
  Record(context);
  std::lock_guard<std::mutex> lock(mu);
  auto it = experiments.find(request->experiment_id());
  if (it == experiments.end()) {
    return NotFound("experiment", request->experiment_id());
  }
  if (it->second.state() != v1::STATE_ACTIVE) {
    return grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        "experiment " + std::to_string(it->first) + " is not active");
  }
  it->second.set_state(v1::STATE_PAUSED);
  *response = it->second;
  return grpc::Status::OK;
}

grpc::Status FakeApi::CancelExperiment(grpc::ServerContext* context,
                                       const v1::ExperimentIdRequest* request,
                                       v1::Experiment* response) {
  Record(context);
  std::lock_guard<std::mutex> lock(mu);
  auto it = experiments.find(request->experiment_id());
  if (it == experiments.end()) {
    return NotFound("experiment", request->experiment_id());
  }
  it->second.set_state(v1::STATE_STOPPING_CANCELED);
  *response = it->second;
  return grpc::Status::OK;
}

grpc::Status FakeApi::WatchExperiment(
    grpc::ServerContext* context, const v1::ExperimentIdRequest* request,
    grpc::ServerWriter<v1::Experiment>* writer) {
  Record(context);
  std::vector<v1::Experiment> script;
  {
    std::lock_guard<std::mutex> lock(mu);
    ++watch_calls;
    auto it = watch_script.find(request->experiment_id());
    if (it == watch_script.end()) {
      return NotFound("experiment", request->experiment_id());
    }
    script = it->second;
  }
  const bool breaks = TakeBreak();
  int sent = 0;
  for (const auto& e : script) {
    if (breaks && sent == break_first_stream_after) {
      std::lock_guard<std::mutex> lock(mu);
      break_first_stream_after = -1;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "master restarting");
    }
    if (!writer->Write(e)) return grpc::Status::CANCELLED;
    ++sent;
  }
  return grpc::Status::OK;
}

grpc::Status FakeApi::ListAgents(grpc::ServerContext* context,
                                 const v1::ListAgentsRequest*,
                                 v1::ListAgentsResponse* response) {
  Record(context);
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& agent : agents) *response->add_agents() = agent;
  return grpc::Status::OK;
}

grpc::Status FakeApi::GetMasterInfo(grpc::ServerContext* context,
                                    const v1::GetMasterInfoRequest*,
                                    v1::MasterInfo* response) {
  Record(context);
  std::lock_guard<std::mutex> lock(mu);
  *response = master_info;
  return grpc::Status::OK;
}

FakeMaster::FakeMaster() : FakeMaster("", "") {}

FakeMaster::FakeMaster(const std::string& tls_key_pem,
                       const std::string& tls_cert_pem) {
  std::shared_ptr<grpc::ServerCredentials> credentials =
      grpc::InsecureServerCredentials();
  if (!tls_cert_pem.empty()) {
    grpc::SslServerCredentialsOptions ssl;
    ssl.pem_key_cert_pairs.push_back({tls_key_pem, tls_cert_pem});
    credentials = grpc::SslServerCredentials(ssl);
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", credentials, &port_);
  builder.RegisterService(&api_);
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    throw std::runtime_error("cannot start the fake master on 127.0.0.1");
  }
}

FakeMaster::~FakeMaster() { server_->Shutdown(); }

std::string FakeMaster::address() const {
  return "127.0.0.1:" + std::to_string(port_);
}

}  // namespace det::cli::testing
