// --help for det's daemons: Abseil lists only the flags defined in a file
// named like the binary (det-master.cc), which ours are not, so --help
// printed "No flags matched". This makes --help (and --helpshort) list the
// flags defined in det's own sources, and leaves --helpfull as it is.
#ifndef DET_COMMON_FLAGS_HELP_FLAGS_H_
#define DET_COMMON_FLAGS_HELP_FLAGS_H_

#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"

namespace det {

// Call before absl::ParseCommandLine. `source_dir` is the folder of the
// binary's main.cc relative to the repository root, e.g. "master/".
inline void ListOwnFlagsInHelp(const char* source_dir) {
  static const char* dir = source_dir;
  absl::FlagsUsageConfig config;
  auto ours = [](absl::string_view file) {
    return absl::StrContains(file, dir);
  };
  config.contains_help_flags = ours;
  config.contains_helpshort_flags = ours;
  absl::SetFlagsUsageConfig(config);
}

}  // namespace det

#endif  // DET_COMMON_FLAGS_HELP_FLAGS_H_
