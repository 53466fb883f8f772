// The fake trial's checkpoints: <checkpoint_dir>/<uuid>/state.json (the
// steps completed) and SHA256SUMS (the layout det-trial uses, so
// `sha256sum -c SHA256SUMS` checks either). Written into a hidden
// temporary directory and renamed into place, so a crash never leaves a
// partial <uuid>/.
#ifndef DET_EXAMPLES_FAKE_TRIAL_FAKE_CHECKPOINT_H_
#define DET_EXAMPLES_FAKE_TRIAL_FAKE_CHECKPOINT_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"

namespace det::fake {

struct WrittenCheckpoint {
  std::string uuid;
  int64_t size_bytes = 0;
  std::map<std::string, std::string> file_sha256;
};

absl::StatusOr<WrittenCheckpoint> WriteCheckpoint(
    const std::string& checkpoint_dir, int64_t trial_id, int64_t steps);

// The steps completed recorded in <checkpoint_dir>/<uuid>/, after checking
// the files against SHA256SUMS. NotFound or DataLoss with the path named.
absl::StatusOr<int64_t> ReadCheckpoint(const std::string& checkpoint_dir,
                                       const std::string& uuid);

}  // namespace det::fake

#endif  // DET_EXAMPLES_FAKE_TRIAL_FAKE_CHECKPOINT_H_
