// gRPC server reflection (grpc.reflection.v1alpha) for det-master, so that
// `grpcurl -plaintext HOST:PORT list` and `describe` discover det.v1.Api.
// Answers from the protobuf descriptors linked into the master. When the
// master has a token, every reflection stream must carry it (as any other
// call but health), which gRPC's own reflection plugin cannot do.
#ifndef DET_MASTER_API_REFLECTION_SERVICE_H_
#define DET_MASTER_API_REFLECTION_SERVICE_H_

#include <string>
#include <vector>

#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace det::master {

class ReflectionService final
    : public grpc::reflection::v1alpha::ServerReflection::Service {
 public:
  // `services`: full names listed by list_services (this service's own
  // name is added). `token` empty: no check.
  ReflectionService(std::vector<std::string> services, std::string token);

  grpc::Status ServerReflectionInfo(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<
          grpc::reflection::v1alpha::ServerReflectionResponse,
          grpc::reflection::v1alpha::ServerReflectionRequest>* stream) override;

  // One request's answer (pure; what the stream sends for it). `sent`
  // holds the files already sent on this stream, which are not resent.
  grpc::reflection::v1alpha::ServerReflectionResponse Answer(
      const grpc::reflection::v1alpha::ServerReflectionRequest& req,
      std::vector<std::string>* sent) const;

 private:
  std::vector<std::string> services_;
  std::string token_;
};

}  // namespace det::master

#endif  // DET_MASTER_API_REFLECTION_SERVICE_H_
