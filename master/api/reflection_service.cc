#include "master/api/reflection_service.h"

#include <algorithm>
#include <utility>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor.pb.h"
#include "master/api/auth.h"

namespace det::master {
namespace {

namespace rv = grpc::reflection::v1alpha;
namespace pb = google::protobuf;

void SetError(rv::ServerReflectionResponse* resp, grpc::StatusCode code,
              const std::string& msg) {
  resp->mutable_error_response()->set_error_code(static_cast<int>(code));
  resp->mutable_error_response()->set_error_message(msg);
}

// `file` and the files it imports, each once per stream, the file first
// (clients build their pool from whatever order; grpcurl accepts any).
void AddFile(const pb::FileDescriptor* file, std::vector<std::string>* sent,
             rv::FileDescriptorResponse* out) {
  if (std::find(sent->begin(), sent->end(), file->name()) != sent->end()) {
    return;
  }
  sent->push_back(file->name());
  pb::FileDescriptorProto proto;
  file->CopyTo(&proto);
  proto.SerializeToString(out->add_file_descriptor_proto());
  for (int i = 0; i < file->dependency_count(); ++i) {
    AddFile(file->dependency(i), sent, out);
  }
}

}  // namespace

ReflectionService::ReflectionService(std::vector<std::string> services,
                                     std::string token)
    : services_(std::move(services)), token_(std::move(token)) {
  services_.push_back(rv::ServerReflection::service_full_name());
}

rv::ServerReflectionResponse ReflectionService::Answer(
    const rv::ServerReflectionRequest& req,
    std::vector<std::string>* sent) const {
  const pb::DescriptorPool* pool = pb::DescriptorPool::generated_pool();
  rv::ServerReflectionResponse resp;
  resp.set_valid_host(req.host());
  *resp.mutable_original_request() = req;
  switch (req.message_request_case()) {
    case rv::ServerReflectionRequest::kListServices:
      for (const std::string& s : services_) {
        resp.mutable_list_services_response()->add_service()->set_name(s);
      }
      break;
    case rv::ServerReflectionRequest::kFileByFilename: {
      const pb::FileDescriptor* f =
          pool->FindFileByName(req.file_by_filename());
      if (!f) {
        SetError(&resp, grpc::StatusCode::NOT_FOUND,
                 "no file named " + req.file_by_filename());
        break;
      }
      AddFile(f, sent, resp.mutable_file_descriptor_response());
      break;
    }
    case rv::ServerReflectionRequest::kFileContainingSymbol: {
      const pb::FileDescriptor* f =
          pool->FindFileContainingSymbol(req.file_containing_symbol());
      if (!f) {
        SetError(&resp, grpc::StatusCode::NOT_FOUND,
                 "no symbol named " + req.file_containing_symbol());
        break;
      }
      AddFile(f, sent, resp.mutable_file_descriptor_response());
      break;
    }
    case rv::ServerReflectionRequest::kFileContainingExtension: {
      const auto& ext = req.file_containing_extension();
      const pb::Descriptor* type =
          pool->FindMessageTypeByName(ext.containing_type());
      const pb::FieldDescriptor* field =
          type ? pool->FindExtensionByNumber(type, ext.extension_number())
               : nullptr;
      if (!field) {
        SetError(&resp, grpc::StatusCode::NOT_FOUND,
                 "no extension " + std::to_string(ext.extension_number()) +
                     " of " + ext.containing_type());
        break;
      }
      AddFile(field->file(), sent, resp.mutable_file_descriptor_response());
      break;
    }
    case rv::ServerReflectionRequest::kAllExtensionNumbersOfType: {
      const pb::Descriptor* type =
          pool->FindMessageTypeByName(req.all_extension_numbers_of_type());
      if (!type) {
        SetError(
            &resp, grpc::StatusCode::NOT_FOUND,
            "no message type named " + req.all_extension_numbers_of_type());
        break;
      }
      std::vector<const pb::FieldDescriptor*> exts;
      pool->FindAllExtensions(type, &exts);
      auto* out = resp.mutable_all_extension_numbers_response();
      out->set_base_type_name(type->full_name());
      for (const auto* e : exts) out->add_extension_number(e->number());
      break;
    }
    case rv::ServerReflectionRequest::MESSAGE_REQUEST_NOT_SET:
      SetError(&resp, grpc::StatusCode::INVALID_ARGUMENT,
               "the request names no question (list_services, "
               "file_by_filename, file_containing_symbol, ...)");
      break;
  }
  return resp;
}

grpc::Status ReflectionService::ServerReflectionInfo(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<rv::ServerReflectionResponse,
                             rv::ServerReflectionRequest>* stream) {
  if (grpc::Status s = CheckToken(ctx, token_); !s.ok()) return s;
  std::vector<std::string> sent;
  rv::ServerReflectionRequest req;
  while (stream->Read(&req)) {
    if (!stream->Write(Answer(req, &sent))) break;
  }
  return grpc::Status::OK;
}

}  // namespace det::master
