#include "worker/daemon/restore_choice.h"

#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/checksum/sha256.h"

namespace det::worker {

std::string ChooseRestoreCheckpoint(const v1::TrialSpec& spec,
                                    std::vector<std::string>* notes) {
  if (spec.restore_candidates().empty()) return "";  // a fresh start
  for (const v1::Checkpoint& c : spec.restore_candidates()) {
    std::string dir = absl::StrCat(spec.checkpoint_dir(), "/", c.uuid());
    absl::Status st;
    if (c.uuid().empty() || c.uuid().find('/') != std::string::npos ||
        c.uuid().find("..") != std::string::npos) {
      st = absl::InvalidArgumentError("not a checkpoint name");
    } else if (!std::filesystem::is_directory(dir)) {
      st = absl::NotFoundError(absl::StrCat(dir, " does not exist"));
    } else {
      std::map<std::string, std::string> expected(c.file_sha256().begin(),
                                                  c.file_sha256().end());
      st = VerifyFiles(dir, expected);
    }
    if (st.ok()) return c.uuid();
    notes->push_back(
        absl::StrCat("checkpoint ", c.uuid(), " (step ", c.steps_completed(),
                     ") is unusable: ", st.message(), "; trying an older one"));
  }
  notes->push_back("no intact checkpoint left: starting from scratch");
  return "";
}

}  // namespace det::worker
