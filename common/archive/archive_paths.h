// Path rules shared by packing and unpacking: what an entry name may be and
// where a symbolic link may point. Purely lexical (no file system access).
#ifndef DET_COMMON_ARCHIVE_ARCHIVE_PATHS_H_
#define DET_COMMON_ARCHIVE_ARCHIVE_PATHS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace det {

// Splits an archive entry name into its components, dropping "." and empty
// components (so "./a//b/" is {"a", "b"}). Fails, naming the entry, when it
// is empty, absolute, or has a ".." component.
absl::StatusOr<std::vector<std::string>> SplitEntryPath(
    const std::string& name);

// Whether a symbolic link at `link_components` (as SplitEntryPath returns)
// whose target is `target` resolves, lexically, to a path inside the root
// the components are relative to. Absolute targets are never inside. A
// target that climbs out and back in ("../root/x") counts as outside. ".."
// is allowed only before the first named component ("../../a/b", not
// "a/../b"): after a named component, which may itself be a link, the
// lexical answer could differ from where the file system would go.
bool LinkStaysInside(const std::vector<std::string>& link_components,
                     const std::string& target);

}  // namespace det

#endif  // DET_COMMON_ARCHIVE_ARCHIVE_PATHS_H_
