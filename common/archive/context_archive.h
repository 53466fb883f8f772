// Packing a context directory into a tar.gz (the CLI, at experiment create)
// and unpacking it safely (the worker, as a trial's working directory).
#ifndef DET_COMMON_ARCHIVE_CONTEXT_ARCHIVE_H_
#define DET_COMMON_ARCHIVE_CONTEXT_ARCHIVE_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/statusor.h"

namespace det {

struct ArchiveLimits {
  int64_t max_bytes = 96 << 20;  // uncompressed total (Determined: 95 MiB)
  int64_t max_files = 10000;
  // PackContext calls it once the tree is listed, before any file is read:
  // tests change the tree there to pin down what a concurrent writer does.
  std::function<void()> after_listing;
};

// Packs the regular files and directories under `dir` (symlinks are kept
// only when they point inside `dir`), skipping what `.detignore` in `dir`
// lists (gitignore-style patterns: "name", "dir/", "*.ext", "/anchored").
// Fails with a clear message (which limit, by how much) when the tree is
// over the limits. What is removed while it packs (a trial writing
// checkpoints under the context) is left out, not an error.
absl::StatusOr<std::string> PackContext(const std::string& dir,
                                        const ArchiveLimits& limits = {});

// Unpacks `archive` into `dest` (created if needed). Refuses entries with
// absolute paths or ".." components, links pointing outside `dest`, device
// files, and archives over the limits, naming the offending entry. Nothing
// is left half-unpacked on failure only in so far as `dest` is the caller's
// to remove.
absl::Status UnpackContext(const std::string& archive, const std::string& dest,
                           const ArchiveLimits& limits = {});

}  // namespace det

#endif  // DET_COMMON_ARCHIVE_CONTEXT_ARCHIVE_H_
