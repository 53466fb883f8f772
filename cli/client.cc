#include "cli/client.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/rpc/status_convert.h"

namespace det::cli {
namespace {

// Replies (a long experiment list with every config) may exceed gRPC's
// 4 MiB default.
constexpr int kMaxReceiveBytes = 256 << 20;

struct Address {
  std::string target;  // host:port
  bool tls = false;
};

absl::StatusOr<Address> ParseMaster(absl::string_view master) {
  Address address;
  absl::string_view rest = absl::StripAsciiWhitespace(master);
  if (absl::ConsumePrefix(&rest, "https://")) {
    address.tls = true;
  } else {
    absl::ConsumePrefix(&rest, "http://") ||
        absl::ConsumePrefix(&rest, "grpc://");
  }
  while (absl::ConsumeSuffix(&rest, "/")) {
  }
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad master address \"", master, "\": ", why,
        " (write HOST:PORT, e.g. 127.0.0.1:8090, in DET_MASTER or -m)"));
  };
  if (rest.empty()) return bad("it is empty");

  absl::string_view host;
  absl::string_view port;
  if (rest.front() == '[') {  // [IPv6]:port
    const size_t close = rest.find(']');
    if (close == absl::string_view::npos) return bad("missing ']'");
    host = rest.substr(0, close + 1);
    absl::string_view after = rest.substr(close + 1);
    if (!after.empty()) {
      if (!absl::ConsumePrefix(&after, ":")) return bad("junk after ']'");
      port = after;
    }
  } else {
    const size_t colon = rest.find(':');
    if (colon == absl::string_view::npos) {
      host = rest;
    } else {
      if (rest.find(':', colon + 1) != absl::string_view::npos) {
        return bad("write IPv6 addresses as [ADDRESS]:PORT");
      }
      host = rest.substr(0, colon);
      port = rest.substr(colon + 1);
    }
  }
  if (host.empty() || host == "[]") return bad("no host");
  int port_number = kDefaultMasterPort;
  if (!port.empty() && (!absl::SimpleAtoi(port, &port_number) ||
                        port_number < 1 || port_number > 65535)) {
    return bad(absl::StrCat("\"", port, "\" is not a port number"));
  }
  address.target = absl::StrCat(host, ":", port_number);
  return address;
}

std::chrono::system_clock::time_point DeadlineIn(absl::Duration timeout) {
  return std::chrono::system_clock::now() +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(
             absl::ToChronoMicroseconds(timeout));
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is a directory, not a file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("error reading ", path));
  }
  return text.str();
}

absl::StatusOr<std::unique_ptr<Client>> Client::Create(
    const ClientOptions& options) {
  absl::StatusOr<Address> address = ParseMaster(options.master);
  if (!address.ok()) return address.status();

  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (!options.tls_ca_file.empty() || address->tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options.tls_ca_file.empty()) {
      absl::StatusOr<std::string> pem = ReadFile(options.tls_ca_file);
      if (!pem.ok()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "TLS CA certificate (--tls-ca / DET_MASTER_CERT_FILE): ",
            pem.status().message()));
      }
      ssl.pem_root_certs = *pem;
    }
    credentials = grpc::SslCredentials(ssl);
  } else {
    credentials = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxReceiveBytes);
  auto channel = grpc::CreateCustomChannel(address->target, credentials, args);
  return std::unique_ptr<Client>(
      new Client(options, address->target, std::move(channel)));
}

Client::Client(ClientOptions options, std::string target,
               std::shared_ptr<grpc::Channel> channel)
    : options_(std::move(options)),
      target_(std::move(target)),
      channel_(std::move(channel)),
      stub_(v1::Api::NewStub(channel_)) {}

std::unique_ptr<grpc::ClientContext> Client::NewContext(
    absl::Duration timeout) const {
  auto context = std::make_unique<grpc::ClientContext>();
  if (timeout != absl::InfiniteDuration()) {
    context->set_deadline(DeadlineIn(timeout));
  }
  if (!options_.token.empty()) {
    context->AddMetadata("authorization",
                         absl::StrCat("Bearer ", options_.token));
  }
  return context;
}

absl::Status Client::Convert(const grpc::Status& status) const {
  absl::Status converted = FromGrpcStatus(status);
  if (converted.ok()) return converted;
  const auto code = converted.code();
  std::string message(converted.message());
  switch (status.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      message = absl::StrCat(
          "cannot reach the master at ", target_, " (", message,
          "); is det-master running there? Set DET_MASTER (or -m/--master) "
          "to the master's HOST:PORT");
      break;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      message = absl::StrCat("the master at ", target_,
                             " did not answer in time (", message, ")");
      break;
    case grpc::StatusCode::UNAUTHENTICATED:
      message = absl::StrCat(message, " (set DET_TOKEN or --token)");
      break;
    default:
      break;
  }
  return absl::Status(code, message);
}

template <typename Request, typename Response>
absl::StatusOr<Response> Client::Unary(
    grpc::Status (v1::Api::StubInterface::*method)(grpc::ClientContext*,
                                                   const Request&, Response*),
    const Request& request, absl::Duration timeout) {
  auto context = NewContext(timeout);
  Response response;
  grpc::Status status =
      (stub_.get()->*method)(context.get(), request, &response);
  if (!status.ok()) return Convert(status);
  return response;
}

template <typename Request, typename Message>
absl::Status Client::Stream(
    std::unique_ptr<grpc::ClientReaderInterface<Message>> (
        v1::Api::StubInterface::*method)(grpc::ClientContext*, const Request&),
    const Request& request, absl::Duration max_duration,
    const std::function<bool(const Message&)>& on_message) {
  auto context = NewContext(max_duration);
  auto reader = (stub_.get()->*method)(context.get(), request);
  Message message;
  bool stopped = false;
  while (reader->Read(&message)) {
    if (!on_message(message)) {
      stopped = true;
      context->TryCancel();
      break;
    }
  }
  if (stopped) {
    while (reader->Read(&message)) {
    }
    reader->Finish();  // CANCELLED, by us: not an error.
    return absl::OkStatus();
  }
  return Convert(reader->Finish());
}

absl::StatusOr<v1::CreateExperimentResponse> Client::CreateExperiment(
    const v1::CreateExperimentRequest& request) {
  return Unary(&v1::Api::StubInterface::CreateExperiment, request,
               options_.create_timeout);
}

absl::StatusOr<v1::Experiment> Client::GetExperiment(int64_t experiment_id) {
  v1::GetExperimentRequest request;
  request.set_experiment_id(experiment_id);
  return Unary(&v1::Api::StubInterface::GetExperiment, request,
               options_.call_timeout);
}

absl::StatusOr<v1::ListExperimentsResponse> Client::ListExperiments() {
  return Unary(&v1::Api::StubInterface::ListExperiments,
               v1::ListExperimentsRequest(), options_.call_timeout);
}

absl::StatusOr<v1::ListTrialsResponse> Client::ListTrials(
    int64_t experiment_id) {
  v1::ListTrialsRequest request;
  request.set_experiment_id(experiment_id);
  return Unary(&v1::Api::StubInterface::ListTrials, request,
               options_.call_timeout);
}

absl::StatusOr<v1::Trial> Client::GetTrial(int64_t trial_id) {
  v1::GetTrialRequest request;
  request.set_trial_id(trial_id);
  return Unary(&v1::Api::StubInterface::GetTrial, request,
               options_.call_timeout);
}

absl::StatusOr<v1::GetTrialMetricsResponse> Client::GetTrialMetrics(
    int64_t trial_id, v1::MetricGroup group) {
  v1::GetTrialMetricsRequest request;
  request.set_trial_id(trial_id);
  request.set_group(group);
  return Unary(&v1::Api::StubInterface::GetTrialMetrics, request,
               options_.call_timeout);
}

absl::StatusOr<v1::Experiment> Client::ChangeExperiment(
    int64_t experiment_id, ExperimentAction action) {
  v1::ExperimentIdRequest request;
  request.set_experiment_id(experiment_id);
  switch (action) {
    case ExperimentAction::kPause:
      return Unary(&v1::Api::StubInterface::PauseExperiment, request,
                   options_.call_timeout);
    case ExperimentAction::kActivate:
      return Unary(&v1::Api::StubInterface::ActivateExperiment, request,
                   options_.call_timeout);
    case ExperimentAction::kCancel:
      return Unary(&v1::Api::StubInterface::CancelExperiment, request,
                   options_.call_timeout);
    case ExperimentAction::kKill:
      return Unary(&v1::Api::StubInterface::KillExperiment, request,
                   options_.call_timeout);
  }
  return absl::InvalidArgumentError("unknown experiment action");
}

// Continue (issue 15)
absl::StatusOr<v1::ContinueExperimentResponse> Client::ContinueExperiment(
    const v1::ContinueExperimentRequest& request) {
  return Unary(&v1::Api::StubInterface::ContinueExperiment, request,
               options_.call_timeout);
}

absl::StatusOr<v1::ListAgentsResponse> Client::ListAgents() {
  return Unary(&v1::Api::StubInterface::ListAgents, v1::ListAgentsRequest(),
               options_.call_timeout);
}

absl::StatusOr<v1::MasterInfo> Client::GetMasterInfo() {
  return Unary(&v1::Api::StubInterface::GetMasterInfo,
               v1::GetMasterInfoRequest(), options_.call_timeout);
}

// Experiment administration (issue 15).

absl::StatusOr<v1::Experiment> Client::PatchExperiment(
    const v1::PatchExperimentRequest& request) {
  return Unary(&v1::Api::StubInterface::PatchExperiment, request,
               options_.call_timeout);
}

absl::StatusOr<v1::Experiment> Client::SetExperimentArchived(
    int64_t experiment_id, bool archived) {
  v1::ExperimentIdRequest request;
  request.set_experiment_id(experiment_id);
  return Unary(archived ? &v1::Api::StubInterface::ArchiveExperiment
                        : &v1::Api::StubInterface::UnarchiveExperiment,
               request, options_.call_timeout);
}

absl::StatusOr<std::string> Client::GetExperimentConfig(int64_t experiment_id) {
  v1::ExperimentIdRequest request;
  request.set_experiment_id(experiment_id);
  auto response = Unary(&v1::Api::StubInterface::GetExperimentConfig, request,
                        options_.call_timeout);
  if (!response.ok()) return response.status();
  return std::move(*response->mutable_config_yaml());
}

absl::StatusOr<v1::CreateExperimentResponse> Client::ForkExperiment(
    const v1::ForkExperimentRequest& request) {
  return Unary(&v1::Api::StubInterface::ForkExperiment, request,
               options_.create_timeout);
}

absl::StatusOr<v1::Trial> Client::KillTrial(int64_t trial_id) {
  v1::KillTrialRequest request;
  request.set_trial_id(trial_id);
  return Unary(&v1::Api::StubInterface::KillTrial, request,
               options_.call_timeout);
}

absl::Status Client::WatchExperiment(
    int64_t experiment_id, absl::Duration max_duration,
    const std::function<bool(const v1::Experiment&)>& on_message) {
  v1::ExperimentIdRequest request;
  request.set_experiment_id(experiment_id);
  return Stream(&v1::Api::StubInterface::WatchExperiment, request, max_duration,
                on_message);
}

absl::Status Client::StreamTrialLogs(
    const v1::StreamTrialLogsRequest& request, absl::Duration max_duration,
    const std::function<bool(const v1::TrialLogLine&)>& on_message) {
  return Stream(&v1::Api::StubInterface::StreamTrialLogs, request, max_duration,
                on_message);
}

// ---- Checkpoints (issue 15) ----

absl::StatusOr<v1::GetExperimentCheckpointsResponse>
Client::GetExperimentCheckpoints(int64_t experiment_id, int best) {
  v1::GetExperimentCheckpointsRequest request;
  request.set_experiment_id(experiment_id);
  request.set_best(best);
  return Unary(&v1::Api::StubInterface::GetExperimentCheckpoints, request,
               options_.call_timeout);
}

absl::StatusOr<v1::CheckpointDetail> Client::GetCheckpoint(
    const std::string& uuid) {
  v1::GetCheckpointRequest request;
  request.set_uuid(uuid);
  return Unary(&v1::Api::StubInterface::GetCheckpoint, request,
               options_.call_timeout);
}

absl::StatusOr<v1::DeleteExperimentResponse> Client::DeleteExperiment(
    int64_t experiment_id) {
  v1::ExperimentIdRequest request;
  request.set_experiment_id(experiment_id);
  return Unary(&v1::Api::StubInterface::DeleteExperiment, request,
               options_.call_timeout);
}

absl::Status Client::DownloadCheckpoint(
    const std::string& uuid, absl::Duration max_duration,
    const std::function<bool(const v1::CheckpointChunk&)>& on_message) {
  v1::GetCheckpointRequest request;
  request.set_uuid(uuid);
  return Stream(&v1::Api::StubInterface::DownloadCheckpoint, request,
                max_duration, on_message);
}

}  // namespace det::cli
