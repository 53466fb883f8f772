// Field-level checking of a YamlNode tree: typed reads that report "expected
// X, found Y" with the field's path and position, unknown-field detection
// with "did you mean", and the collected errors and warnings.
//
// Every reader reports and returns false on a problem, and validation goes
// on, so one pass reports every problem in the document.
#ifndef DET_COMMON_CONFIG_CHECKER_H_
#define DET_COMMON_CONFIG_CHECKER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/config_yaml.h"

namespace det::config_internal {

// "a.b" + "c" -> "a.b.c"; "" + "c" -> "c".
std::string JoinPath(const std::string& parent, const std::string& key);
// "a.b" + 2 -> "a.b[2]".
std::string IndexPath(const std::string& parent, size_t index);

// Edit distance counting insertions, deletions, substitutions and swaps of
// adjacent characters (optimal string alignment), each 1.
size_t EditDistance(const std::string& a, const std::string& b);

// The candidate closest to `name` when close enough to be a likely typo,
// else "".
std::string ClosestName(const std::string& name,
                        const std::vector<std::string>& candidates);

class Checker {
 public:
  void Error(const YamlNode& at, const std::string& path, std::string message);
  void Warn(const YamlNode& at, const std::string& path, std::string message);

  // Reports each key of `map` that is not in `known` as an unknown field,
  // suggesting the closest known one. Keys in `ignored` are accepted with a
  // warning that they have no effect.
  void CheckKeys(const YamlNode& map, const std::string& path,
                 const std::vector<std::string>& known,
                 const std::vector<std::string>& ignored = {});

  // True when `node` is a map; else reports "expected a map".
  bool ExpectMap(const YamlNode& node, const std::string& path,
                 const std::string& what = "a map");

  // Typed reads of a scalar. Integers must be written as integers; numbers
  // must be finite; booleans are true/false.
  bool ReadInt(const YamlNode& node, const std::string& path, int64_t* out);
  bool ReadNumber(const YamlNode& node, const std::string& path, double* out);
  bool ReadBool(const YamlNode& node, const std::string& path, bool* out);
  bool ReadString(const YamlNode& node, const std::string& path,
                  std::string* out);

  // ReadInt plus a lower bound (and an optional upper bound) with a message
  // naming the accepted range.
  bool ReadIntAtLeast(const YamlNode& node, const std::string& path,
                      int64_t min, int64_t* out);
  bool ReadIntInRange(const YamlNode& node, const std::string& path,
                      int64_t min, int64_t max, int64_t* out);

  std::vector<ConfigError>& errors() { return errors_; }
  std::vector<ConfigError>& warnings() { return warnings_; }

 private:
  std::vector<ConfigError> errors_;
  std::vector<ConfigError> warnings_;
};

}  // namespace det::config_internal

#endif  // DET_COMMON_CONFIG_CHECKER_H_
