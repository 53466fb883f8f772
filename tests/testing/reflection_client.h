// A small gRPC reflection client for tests: asks a server's reflection
// service (grpc.reflection.v1alpha) for its services and descriptors, as
// grpcurl does, and builds a descriptor pool from the answers.
#ifndef DET_TESTS_TESTING_REFLECTION_CLIENT_H_
#define DET_TESTS_TESTING_REFLECTION_CLIENT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/descriptor_database.h"
#include "grpcpp/grpcpp.h"

namespace det::testing {

class ReflectionClient {
 public:
  // `token` non-empty: sent as "authorization: Bearer <token>".
  ReflectionClient(std::shared_ptr<grpc::Channel> channel, std::string token);

  // list_services. An error status carries the server's refusal.
  absl::StatusOr<std::vector<std::string>> ListServices();
  // file_containing_symbol: the service's descriptor, from a pool built of
  // the files the server sent (so its imports resolved too).
  absl::StatusOr<const google::protobuf::ServiceDescriptor*> FindService(
      const std::string& full_name);

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::string token_;
  google::protobuf::SimpleDescriptorDatabase db_;
  std::unique_ptr<google::protobuf::DescriptorPool> pool_;
};

}  // namespace det::testing

#endif  // DET_TESTS_TESTING_REFLECTION_CLIENT_H_
