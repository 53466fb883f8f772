#include "examples/fake_trial/fake_checkpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/checksum/sha256.h"

namespace det::fake {
namespace {

namespace fs = std::filesystem;

constexpr char kState[] = "state.json";
constexpr char kManifest[] = "SHA256SUMS";

std::string NewUuid() {
  std::random_device rd;
  uint32_t w[4] = {rd(), rd(), rd(), rd()};
  w[1] = (w[1] & 0xffff0fffu) | 0x00004000u;  // version 4
  w[2] = (w[2] & 0x3fffffffu) | 0x80000000u;  // variant 1
  return absl::StrFormat("%08x-%04x-%04x-%04x-%04x%08x", w[0], w[1] >> 16,
                         w[1] & 0xffff, w[2] >> 16, w[2] & 0xffff, w[3]);
}

absl::Status WriteSynced(const fs::path& path, const std::string& data) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write ", path.string(), ": ", strerror(errno)));
  }
  const bool ok = write(fd, data.data(), data.size()) ==
                      static_cast<ssize_t>(data.size()) &&
                  fsync(fd) == 0;
  close(fd);
  if (!ok) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write ", path.string()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path.string()));
  }
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

absl::StatusOr<WrittenCheckpoint> WriteCheckpoint(
    const std::string& checkpoint_dir, int64_t trial_id, int64_t steps) {
  WrittenCheckpoint out;
  out.uuid = NewUuid();
  const fs::path tmp = fs::path(checkpoint_dir) / (".tmp-" + out.uuid);
  const fs::path final_dir = fs::path(checkpoint_dir) / out.uuid;
  std::error_code ec;
  fs::create_directories(tmp, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create ", tmp.string(), ": ", ec.message()));
  }
  const std::string state = absl::StrFormat(
      "{\"trial_id\": %d, \"steps_completed\": %d}\n", trial_id, steps);
  const std::string sha = Sha256Hex(state);
  const std::string manifest = absl::StrCat(sha, "  ", kState, "\n");
  absl::Status s = WriteSynced(tmp / kState, state);
  if (s.ok()) s = WriteSynced(tmp / kManifest, manifest);
  if (s.ok()) {
    fs::rename(tmp, final_dir, ec);
    if (ec) {
      s = absl::FailedPreconditionError(
          absl::StrCat("cannot rename ", tmp.string(), ": ", ec.message()));
    }
  }
  if (!s.ok()) {
    fs::remove_all(tmp, ec);
    return s;
  }
  // Make the rename durable too.
  int dfd = open(checkpoint_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  out.size_bytes = static_cast<int64_t>(state.size() + manifest.size());
  out.file_sha256[kState] = sha;
  out.file_sha256[kManifest] = Sha256Hex(manifest);
  return out;
}

absl::StatusOr<int64_t> ReadCheckpoint(const std::string& checkpoint_dir,
                                       const std::string& uuid) {
  const fs::path dir = fs::path(checkpoint_dir) / uuid;
  absl::StatusOr<std::string> manifest = ReadAll(dir / kManifest);
  if (!manifest.ok()) return manifest.status();
  absl::StatusOr<std::string> state = ReadAll(dir / kState);
  if (!state.ok()) return state.status();
  const std::string want = absl::StrCat(Sha256Hex(*state), "  ", kState);
  if (absl::StripAsciiWhitespace(*manifest) != want) {
    return absl::DataLossError(absl::StrCat((dir / kState).string(),
                                            " does not match its SHA256SUMS"));
  }
  // {"trial_id": T, "steps_completed": N}
  const size_t at = state->find("\"steps_completed\":");
  int64_t steps = 0;
  if (at == std::string::npos ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(absl::StripSuffix(
                            absl::StripAsciiWhitespace(
                                absl::string_view(*state).substr(at + 18)),
                            "}")),
                        &steps)) {
    return absl::DataLossError(
        absl::StrCat((dir / kState).string(), " has no steps_completed"));
  }
  return steps;
}

}  // namespace det::fake
