// The patterns of a context directory's .detignore file, which names what
// PackContext leaves out. The syntax is gitignore's, minus its rarer parts:
//   # comment           blank lines and lines starting with '#' are skipped
//   name  *.ext  a?c     match a file or directory of that name at any depth
//   dir/                 trailing '/': match directories only
//   /anchored  a/b.txt   a '/' before the end: match the path from the root
//   **/name  a/**        "**" matches across directories
//   !pattern             re-include what an earlier pattern excluded
// The last matching pattern decides. A directory that is ignored is not
// descended into, so nothing under it can be re-included (as in git).
#ifndef DET_COMMON_ARCHIVE_DETIGNORE_H_
#define DET_COMMON_ARCHIVE_DETIGNORE_H_

#include <string>
#include <vector>

namespace det {

class DetIgnore {
 public:
  // Parses the text of a .detignore file; never fails (every line is a
  // pattern, as in git).
  static DetIgnore Parse(const std::string& text);

  // Whether `path` (relative to the context root, '/'-separated, no leading
  // "./") is ignored. `is_dir` says whether it names a directory.
  bool Ignored(const std::string& path, bool is_dir) const;

  bool empty() const { return patterns_.empty(); }

 private:
  struct Pattern {
    std::string glob;
    bool negate = false;
    bool dir_only = false;
    // Matched against the whole path rather than the last component.
    bool anchored = false;
    // Contains "**": '*' may match '/'.
    bool crosses_dirs = false;
    // Came as "**/a/b": anchored, but may start at any directory.
    bool any_depth = false;
  };

  std::vector<Pattern> patterns_;
};

}  // namespace det

#endif  // DET_COMMON_ARCHIVE_DETIGNORE_H_
