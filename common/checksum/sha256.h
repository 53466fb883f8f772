// SHA-256 of files and strings (OpenSSL's EVP), and checking a directory's
// files against expected digests: how checkpoints are verified.
#ifndef DET_COMMON_CHECKSUM_SHA256_H_
#define DET_COMMON_CHECKSUM_SHA256_H_

#include <map>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace det {

// Lower-case hex SHA-256 of `data`.
std::string Sha256Hex(std::string_view data);

// Lower-case hex SHA-256 of a file's contents; NotFound when it cannot be
// opened, DataLoss when reading fails part way.
absl::StatusOr<std::string> Sha256OfFile(const std::string& path);

// Checks that every file named in `expected` (relative name -> hex digest)
// exists under `dir` with that digest. NotFound for a missing directory or
// file, DataLoss naming the file whose digest differs.
absl::Status VerifyFiles(const std::string& dir,
                         const std::map<std::string, std::string>& expected);

}  // namespace det

#endif  // DET_COMMON_CHECKSUM_SHA256_H_
