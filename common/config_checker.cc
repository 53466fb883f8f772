#include "common/config_checker.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace det::config_internal {

std::string JoinPath(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : absl::StrCat(parent, ".", key);
}

std::string IndexPath(const std::string& parent, size_t index) {
  return absl::StrCat(parent, "[", index, "]");
}

size_t EditDistance(const std::string& a, const std::string& b) {
  // Optimal string alignment: Levenshtein plus adjacent transpositions, the
  // commonest typo ("gird" for "grid").
  const size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> d(n + 1, std::vector<size_t>(m + 1));
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] =
          std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::string ClosestName(const std::string& name,
                        const std::vector<std::string>& candidates) {
  // A third of the name's length (at least 1, at most 3) separates typos
  // from different words; names are short.
  size_t limit = std::clamp<size_t>(name.size() / 3, 1, 3);
  std::string best;
  size_t best_distance = limit + 1;
  for (const std::string& c : candidates) {
    // The distance is at least the difference in length: skip early, which
    // also keeps a megabyte-long key from costing a megabyte-sized table.
    size_t diff = name.size() > c.size() ? name.size() - c.size()
                                         : c.size() - name.size();
    if (diff > limit) continue;
    size_t d = EditDistance(name, c);
    if (d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

void Checker::Error(const YamlNode& at, const std::string& path,
                    std::string message) {
  errors_.push_back(ConfigError{path, at.line, at.column, std::move(message)});
}

void Checker::Warn(const YamlNode& at, const std::string& path,
                   std::string message) {
  warnings_.push_back(
      ConfigError{path, at.line, at.column, std::move(message)});
}

void Checker::CheckKeys(const YamlNode& map, const std::string& path,
                        const std::vector<std::string>& known,
                        const std::vector<std::string>& ignored) {
  for (const YamlNode::Entry& e : map.entries) {
    if (std::find(known.begin(), known.end(), e.key) != known.end()) continue;
    YamlNode at;
    at.line = e.line;
    at.column = e.column;
    std::string field = JoinPath(path, e.key);
    if (std::find(ignored.begin(), ignored.end(), e.key) != ignored.end()) {
      Warn(at, field,
           "accepted for compatibility with Determined; it has no effect in "
           "det");
      continue;
    }
    std::vector<std::string> all = known;
    all.insert(all.end(), ignored.begin(), ignored.end());
    std::string message = absl::StrCat("unknown field '", e.key, "'");
    std::string closest = ClosestName(e.key, all);
    if (!closest.empty()) {
      absl::StrAppend(&message, "; did you mean '", closest, "'?");
    } else {
      std::vector<std::string> sorted = known;
      std::sort(sorted.begin(), sorted.end());
      absl::StrAppend(&message, "; expected one of ",
                      absl::StrJoin(sorted, ", "));
    }
    Error(at, field, std::move(message));
  }
}

bool Checker::ExpectMap(const YamlNode& node, const std::string& path,
                        const std::string& what) {
  if (node.is_map()) return true;
  Error(node, path,
        absl::StrCat("expected ", what, ", found ", Describe(node)));
  return false;
}

bool Checker::ReadInt(const YamlNode& node, const std::string& path,
                      int64_t* out) {
  if (node.is_scalar() && !node.quoted) {
    Value v = PlainScalarToValue(node.scalar);
    if (v.is_int()) {
      *out = v.as_int();
      return true;
    }
  }
  Error(node, path,
        absl::StrCat("expected an integer, found ", Describe(node)));
  return false;
}

bool Checker::ReadNumber(const YamlNode& node, const std::string& path,
                         double* out) {
  if (node.is_scalar() && !node.quoted) {
    Value v = PlainScalarToValue(node.scalar);
    if (v.is_number() && std::isfinite(v.as_number())) {
      *out = v.as_number();
      return true;
    }
    if (v.is_number()) {
      Error(node, path,
            absl::StrCat("expected a finite number, found ", Describe(node)));
      return false;
    }
  }
  Error(node, path, absl::StrCat("expected a number, found ", Describe(node)));
  return false;
}

bool Checker::ReadBool(const YamlNode& node, const std::string& path,
                       bool* out) {
  if (node.is_scalar() && !node.quoted) {
    Value v = PlainScalarToValue(node.scalar);
    if (v.is_bool()) {
      *out = v.as_bool();
      return true;
    }
  }
  Error(node, path,
        absl::StrCat("expected true or false, found ", Describe(node)));
  return false;
}

bool Checker::ReadString(const YamlNode& node, const std::string& path,
                         std::string* out) {
  if (node.is_scalar()) {
    *out = node.scalar;
    return true;
  }
  Error(node, path, absl::StrCat("expected a string, found ", Describe(node)));
  return false;
}

bool Checker::ReadIntAtLeast(const YamlNode& node, const std::string& path,
                             int64_t min, int64_t* out) {
  int64_t v;
  if (!ReadInt(node, path, &v)) return false;
  if (v < min) {
    Error(node, path,
          absl::StrCat("expected an integer >= ", min, ", found ", v));
    return false;
  }
  *out = v;
  return true;
}

bool Checker::ReadIntInRange(const YamlNode& node, const std::string& path,
                             int64_t min, int64_t max, int64_t* out) {
  int64_t v;
  if (!ReadInt(node, path, &v)) return false;
  if (v < min || v > max) {
    Error(node, path,
          absl::StrCat("expected an integer from ", min, " to ", max,
                       ", found ", v));
    return false;
  }
  *out = v;
  return true;
}

}  // namespace det::config_internal
