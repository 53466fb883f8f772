#include "common/archive/detignore.h"

#include <fnmatch.h>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace det {

DetIgnore DetIgnore::Parse(const std::string& text) {
  DetIgnore out;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    absl::ConsumeSuffix(&line, "\r");
    // gitignore keeps leading spaces but trailing ones are almost always
    // accidental; drop them.
    while (!line.empty() && (line.back() == ' ' || line.back() == '\t')) {
      line.remove_suffix(1);
    }
    if (line.empty() || line.front() == '#') continue;
    Pattern p;
    if (absl::ConsumePrefix(&line, "!")) p.negate = true;
    if (absl::ConsumeSuffix(&line, "/")) p.dir_only = true;
    // "**/name" is the same as an unanchored "name"; "**/a/b" is "a/b" at
    // any depth.
    bool leading_stars = false;
    while (absl::ConsumePrefix(&line, "**/")) leading_stars = true;
    if (!leading_stars && absl::ConsumePrefix(&line, "/")) p.anchored = true;
    if (absl::StrContains(line, '/')) {
      p.anchored = true;
      p.any_depth = leading_stars;
    }
    if (line.empty()) continue;
    p.glob = std::string(line);
    p.crosses_dirs = absl::StrContains(p.glob, "**");
    out.patterns_.push_back(std::move(p));
  }
  return out;
}

bool DetIgnore::Ignored(const std::string& path, bool is_dir) const {
  const size_t slash = path.rfind('/');
  const std::string base =
      slash == std::string::npos ? path : path.substr(slash + 1);
  bool ignored = false;
  for (const Pattern& p : patterns_) {
    if (p.dir_only && !is_dir) continue;
    const int flags = p.crosses_dirs ? 0 : FNM_PATHNAME;
    auto matches = [&](const std::string& subject) {
      return fnmatch(p.glob.c_str(), subject.c_str(), flags) == 0;
    };
    bool hit = matches(p.anchored ? path : base);
    // "**/a/b": try the path from every directory boundary.
    for (size_t i = path.find('/');
         !hit && p.any_depth && i != std::string::npos;
         i = path.find('/', i + 1)) {
      hit = matches(path.substr(i + 1));
    }
    if (hit) ignored = !p.negate;
  }
  return ignored;
}

}  // namespace det
