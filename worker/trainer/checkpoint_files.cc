#include "worker/trainer/checkpoint_files.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace det::trainer {
namespace {

namespace fs = std::filesystem;

// fsync a file or directory so the rename below publishes durable data.
void SyncPath(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

std::string NewUuid() {
  unsigned char b[16];
  if (RAND_bytes(b, sizeof b) != 1) {
    // OpenSSL's generator only fails without an entropy source; fall back
    // to the OS device rather than abort a checkpoint.
    std::ifstream("/dev/urandom", std::ios::binary)
        .read(reinterpret_cast<char*>(b), sizeof b);
  }
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  std::string s;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s += '-';
    absl::StrAppendFormat(&s, "%02x", b[i]);
  }
  return s;
}

absl::StatusOr<CheckpointInfo> WriteCheckpoint(
    const std::string& checkpoint_dir, int64_t steps_completed,
    const std::function<absl::Status(const std::string& dir)>& write_files) {
  std::error_code ec;
  fs::create_directories(checkpoint_dir, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat(
        "checkpoint directory ", checkpoint_dir, ": ", ec.message()));
  }
  CheckpointInfo info;
  info.uuid = NewUuid();
  info.steps_completed = steps_completed;
  info.path = absl::StrCat(checkpoint_dir, "/", info.uuid);
  const std::string tmp = absl::StrCat(checkpoint_dir, "/.tmp-", info.uuid);
  fs::create_directory(tmp, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", tmp, ": ", ec.message()));
  }
  auto fail = [&](absl::Status s) {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
    return s;
  };
  if (absl::Status s = write_files(tmp); !s.ok()) return fail(s);

  std::string manifest;
  for (const auto& entry : fs::directory_iterator(tmp)) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    absl::StatusOr<std::string> sha = Sha256OfFile(entry.path().string());
    if (!sha.ok()) return fail(sha.status());
    SyncPath(entry.path().string());
    info.file_sha256[name] = *sha;
    info.size_bytes += static_cast<int64_t>(entry.file_size());
  }
  for (const auto& [name, sha] : info.file_sha256) {
    absl::StrAppend(&manifest, sha, "  ", name, "\n");
  }
  {
    std::ofstream out(tmp + "/" + kManifestName, std::ios::binary);
    out << manifest;
    if (!out.flush()) {
      return fail(absl::UnavailableError(
          absl::StrCat("cannot write ", tmp, "/", kManifestName)));
    }
  }
  info.size_bytes += static_cast<int64_t>(manifest.size());
  SyncPath(tmp + "/" + kManifestName);
  SyncPath(tmp);
  fs::rename(tmp, info.path, ec);
  if (ec) {
    return fail(absl::UnavailableError(absl::StrCat(
        "cannot rename ", tmp, " to ", info.path, ": ", ec.message())));
  }
  SyncPath(checkpoint_dir);
  return info;
}

absl::StatusOr<std::string> VerifyCheckpoint(const std::string& checkpoint_dir,
                                             const std::string& uuid) {
  const std::string dir = absl::StrCat(checkpoint_dir, "/", uuid);
  std::error_code ec;
  if (uuid.empty() || uuid.find('/') != std::string::npos ||
      !fs::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("checkpoint ", uuid, ": no directory ", dir));
  }
  const std::string manifest_path = dir + "/" + kManifestName;
  std::ifstream in(manifest_path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("checkpoint ", uuid, ": missing ", manifest_path));
  }
  std::stringstream text;
  text << in.rdbuf();
  int files = 0;
  for (absl::string_view line :
       absl::StrSplit(text.str(), '\n', absl::SkipEmpty())) {
    std::vector<std::string> parts =
        absl::StrSplit(line, absl::MaxSplits("  ", 1));
    if (parts.size() != 2 || parts[0].size() != 64) {
      return absl::DataLossError(
          absl::StrCat(manifest_path, ": malformed line '", line, "'"));
    }
    const std::string file = dir + "/" + parts[1];
    absl::StatusOr<std::string> sha = Sha256OfFile(file);
    if (!sha.ok()) {
      return absl::DataLossError(absl::StrCat("checkpoint ", uuid, ": ", file,
                                              " is missing or unreadable"));
    }
    if (*sha != parts[0]) {
      return absl::DataLossError(
          absl::StrCat("checkpoint ", uuid, ": ", file, " is corrupt (SHA-256 ",
                       *sha, ", manifest says ", parts[0], ")"));
    }
    ++files;
  }
  if (files == 0) {
    return absl::DataLossError(absl::StrCat(manifest_path, ": lists no files"));
  }
  return dir;
}

}  // namespace det::trainer
