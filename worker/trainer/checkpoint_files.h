// Checkpoint directories on checkpoint storage: written atomically, with a
// SHA-256 manifest so a corrupt or partial checkpoint is caught on restore.
//
// A checkpoint is <checkpoint_dir>/<uuid>/ holding the files the trainer
// wrote plus SHA256SUMS (the `sha256sum` format, so `sha256sum -c SHA256SUMS`
// checks it by hand). The files are written into a hidden temporary
// directory beside it and renamed into place only when complete, so a crash
// never leaves a half-written <uuid>/.
//
// Torch-free: what goes into the files is the trainer's business.
#ifndef DET_WORKER_TRAINER_CHECKPOINT_FILES_H_
#define DET_WORKER_TRAINER_CHECKPOINT_FILES_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/checksum/sha256.h"

namespace det::trainer {

inline constexpr char kManifestName[] = "SHA256SUMS";

struct CheckpointInfo {
  std::string uuid;
  std::string path;  // <checkpoint_dir>/<uuid>
  int64_t steps_completed = 0;
  int64_t size_bytes = 0;  // all files, manifest included
  std::map<std::string, std::string> file_sha256;  // file name -> hex digest
};

// A random (version 4) UUID.
std::string NewUuid();

// Checksums come from common/checksum (det::Sha256OfFile).
using ::det::Sha256OfFile;

// Creates <checkpoint_dir>/<new uuid>/: calls `write_files` with a fresh
// empty temporary directory, checksums every regular file it left there,
// writes the manifest, syncs and renames the directory into place.
// On any failure the temporary directory is removed.
absl::StatusOr<CheckpointInfo> WriteCheckpoint(
    const std::string& checkpoint_dir, int64_t steps_completed,
    const std::function<absl::Status(const std::string& dir)>& write_files);

// Checks <checkpoint_dir>/<uuid>/ against its manifest and returns its path.
// NotFound when the directory or manifest is missing; DataLoss naming the
// file when a file is missing or its checksum differs.
absl::StatusOr<std::string> VerifyCheckpoint(const std::string& checkpoint_dir,
                                             const std::string& uuid);

}  // namespace det::trainer

#endif  // DET_WORKER_TRAINER_CHECKPOINT_FILES_H_
