#include "worker/daemon/restore_choice.h"

#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/checksum/sha256.h"

namespace det::worker {

namespace {

// The files of checkpoint `c` under `root` against its SHA-256s.
absl::Status CheckFiles(const std::string& root, const v1::Checkpoint& c) {
  std::string dir = absl::StrCat(root, "/", c.uuid());
  if (c.uuid().empty() || c.uuid().find('/') != std::string::npos ||
      c.uuid().find("..") != std::string::npos) {
    return absl::InvalidArgumentError("not a checkpoint name");
  }
  if (!std::filesystem::is_directory(dir)) {
    return absl::NotFoundError(absl::StrCat(dir, " does not exist"));
  }
  std::map<std::string, std::string> expected(c.file_sha256().begin(),
                                              c.file_sha256().end());
  return VerifyFiles(dir, expected);
}

bool HasWarmStart(const v1::TrialSpec& spec) {
  return spec.has_warm_start() && spec.restore_uuid().empty();
}

}  // namespace

absl::Status CheckWarmStart(const v1::TrialSpec& spec) {
  if (!HasWarmStart(spec)) return absl::OkStatus();
  const v1::Checkpoint& c = spec.warm_start();
  absl::Status st = c.file_sha256().empty()
                        ? absl::NotFoundError(
                              "the master has no record of its files (the "
                              "checkpoint was deleted)")
                        : CheckFiles(spec.warm_start_dir(), c);
  if (st.ok()) return st;
  return absl::FailedPreconditionError(
      absl::StrCat("warm-start checkpoint ", c.uuid(), " (under ",
                   spec.warm_start_dir(), ") is unusable: ", st.message()));
}

std::string WarmStartPath(const v1::TrialSpec& spec) {
  if (!HasWarmStart(spec)) return "";
  return absl::StrCat(spec.warm_start_dir(), "/", spec.warm_start().uuid());
}

std::string ChooseRestoreCheckpoint(const v1::TrialSpec& spec,
                                    std::vector<std::string>* notes) {
  if (spec.restore_candidates().empty()) return "";  // a fresh start
  for (const v1::Checkpoint& c : spec.restore_candidates()) {
    absl::Status st = CheckFiles(spec.checkpoint_dir(), c);
    if (st.ok()) return c.uuid();
    notes->push_back(
        absl::StrCat("checkpoint ", c.uuid(), " (step ", c.steps_completed(),
                     ") is unusable: ", st.message(), "; trying an older one"));
  }
  notes->push_back("no intact checkpoint left: starting from scratch");
  return "";
}

}  // namespace det::worker
