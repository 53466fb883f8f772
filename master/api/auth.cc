#include "master/api/auth.h"

namespace det::master {
namespace {

// Compares in time that depends only on the lengths, so a caller cannot
// learn the token a byte at a time.
bool SameSecret(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  }
  return diff == 0;
}

}  // namespace

grpc::Status CheckToken(const grpc::ServerContext* ctx,
                        const std::string& token) {
  if (token.empty()) return grpc::Status::OK;
  const auto& md = ctx->client_metadata();
  auto it = md.find("authorization");
  if (it == md.end()) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "this master requires a token: set DET_TOKEN or pass "
                        "--token");
  }
  std::string got(it->second.data(), it->second.size());
  if (!SameSecret(got, "Bearer " + token)) {
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "the token given does not match the master's");
  }
  return grpc::Status::OK;
}

}  // namespace det::master
