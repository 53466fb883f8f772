#include "common/archive/archive_paths.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace det {

absl::StatusOr<std::vector<std::string>> SplitEntryPath(
    const std::string& name) {
  if (name.empty()) {
    return absl::InvalidArgumentError("archive entry with an empty name");
  }
  if (name.front() == '/') {
    return absl::InvalidArgumentError(absl::StrCat(
        "archive entry '", name, "' has an absolute path; refusing it"));
  }
  std::vector<std::string> out;
  for (absl::string_view c : absl::StrSplit(name, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      return absl::InvalidArgumentError(absl::StrCat(
          "archive entry '", name, "' has a '..' component; refusing it"));
    }
    out.emplace_back(c);
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("archive entry '", name, "' names no file"));
  }
  return out;
}

bool LinkStaysInside(const std::vector<std::string>& link_components,
                     const std::string& target) {
  if (link_components.empty() || target.empty() || target.front() == '/') {
    return false;
  }
  // Start from the link's directory, which is made of real directories.
  size_t depth = link_components.size() - 1;
  bool descended = false;
  for (absl::string_view c : absl::StrSplit(target, '/')) {
    if (c.empty() || c == ".") continue;
    if (c == "..") {
      if (descended || depth == 0) return false;
      --depth;
    } else {
      descended = true;
    }
  }
  return true;
}

}  // namespace det
