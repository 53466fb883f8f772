// Token authentication shared by the master's gRPC services: when a token
// is configured, every call must carry "authorization: Bearer <token>".
#ifndef DET_MASTER_API_AUTH_H_
#define DET_MASTER_API_AUTH_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"

namespace det::master {

// OK when `token` is empty or the call carries it; UNAUTHENTICATED with a
// message saying how to pass one otherwise.
grpc::Status CheckToken(const grpc::ServerContext* ctx,
                        const std::string& token);

}  // namespace det::master

#endif  // DET_MASTER_API_AUTH_H_
