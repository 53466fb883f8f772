// absl::Status <-> grpc::Status. Both use the same canonical codes, so the
// conversion keeps the code and the message; one copy for every server and
// client in the tree.
#ifndef DET_COMMON_RPC_STATUS_CONVERT_H_
#define DET_COMMON_RPC_STATUS_CONVERT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"

namespace det {

grpc::Status ToGrpcStatus(const absl::Status& s);

// With a non-empty `what`, the message reads "what: <message>".
absl::Status FromGrpcStatus(const grpc::Status& s, absl::string_view what = "");

}  // namespace det

#endif  // DET_COMMON_RPC_STATUS_CONVERT_H_
