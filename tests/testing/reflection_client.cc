#include "tests/testing/reflection_client.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"

namespace det::testing {
namespace {

namespace rv = grpc::reflection::v1alpha;

// One request on a fresh stream; its one answer.
absl::StatusOr<rv::ServerReflectionResponse> Ask(
    grpc::Channel* channel, const std::string& token,
    const rv::ServerReflectionRequest& req) {
  auto stub = rv::ServerReflection::NewStub(
      std::shared_ptr<grpc::Channel>(channel, [](grpc::Channel*) {}));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  auto stream = stub->ServerReflectionInfo(&ctx);
  rv::ServerReflectionResponse resp;
  bool got = stream->Write(req) && stream->WritesDone() && stream->Read(&resp);
  rv::ServerReflectionResponse extra;  // one request, one answer: drain
  while (got && stream->Read(&extra)) {
  }
  grpc::Status s = stream->Finish();
  if (!s.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                        s.error_message());
  }
  if (!got) return absl::InternalError("the stream ended without an answer");
  if (resp.has_error_response()) {
    return absl::Status(
        static_cast<absl::StatusCode>(resp.error_response().error_code()),
        resp.error_response().error_message());
  }
  return resp;
}

}  // namespace

ReflectionClient::ReflectionClient(std::shared_ptr<grpc::Channel> channel,
                                   std::string token)
    : channel_(std::move(channel)), token_(std::move(token)) {}

absl::StatusOr<std::vector<std::string>> ReflectionClient::ListServices() {
  rv::ServerReflectionRequest req;
  req.set_list_services("*");
  auto resp = Ask(channel_.get(), token_, req);
  if (!resp.ok()) return resp.status();
  std::vector<std::string> names;
  for (const auto& s : resp->list_services_response().service()) {
    names.push_back(s.name());
  }
  return names;
}

absl::StatusOr<const google::protobuf::ServiceDescriptor*>
ReflectionClient::FindService(const std::string& full_name) {
  rv::ServerReflectionRequest req;
  req.set_file_containing_symbol(full_name);
  auto resp = Ask(channel_.get(), token_, req);
  if (!resp.ok()) return resp.status();
  for (const std::string& bytes :
       resp->file_descriptor_response().file_descriptor_proto()) {
    google::protobuf::FileDescriptorProto file;
    if (!file.ParseFromString(bytes)) {
      return absl::DataLossError("a file descriptor does not parse");
    }
    db_.Add(file);
  }
  pool_ = std::make_unique<google::protobuf::DescriptorPool>(&db_);
  const auto* service = pool_->FindServiceByName(full_name);
  if (!service) {
    return absl::NotFoundError(
        absl::StrCat(full_name, " is not in the files the server sent"));
  }
  return service;
}

}  // namespace det::testing
