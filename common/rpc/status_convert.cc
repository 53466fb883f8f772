#include "common/rpc/status_convert.h"

#include "absl/strings/str_cat.h"

namespace det {

grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()),
                      std::string(s.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()),
                      what.empty()
                          ? s.error_message()
                          : absl::StrCat(what, ": ", s.error_message()));
}

}  // namespace det
