// Safe loading of untrusted YAML into a small tree that remembers where each
// node came from (line and column), for the experiment config validator.
//
// yaml-cpp shares the node behind an alias between every place that names
// it, so a naive walk over a "billion laughs" document visits billions of
// nodes. LoadYamlTree copies the document into YamlNode values while counting
// every node it visits (aliases expanded) and the nesting depth, and stops at
// ParseLimits. It also refuses input that is too large or is not text before
// yaml-cpp sees it, and applies YAML merge keys ("<<: *base"), which yaml-cpp
// leaves to the application.
#ifndef DET_COMMON_CONFIG_YAML_H_
#define DET_COMMON_CONFIG_YAML_H_

#include <string>
#include <vector>

#include "common/config.h"
#include "common/value.h"
#include "yaml-cpp/yaml.h"

namespace det::config_internal {

struct YamlNode {
  enum class Kind { kNull, kScalar, kSequence, kMap };
  struct Entry;

  Kind kind = Kind::kNull;
  std::string scalar;   // kScalar: the text as written
  bool quoted = false;  // kScalar: quoted, block or !!str: always a string
  int line = 0;         // 1-based; 0 when unknown
  int column = 0;       // 1-based
  std::vector<YamlNode> items;  // kSequence
  std::vector<Entry> entries;   // kMap, in document order, keys unique

  bool is_null() const { return kind == Kind::kNull; }
  bool is_scalar() const { return kind == Kind::kScalar; }
  bool is_sequence() const { return kind == Kind::kSequence; }
  bool is_map() const { return kind == Kind::kMap; }

  // kMap: the value under `key`, or nullptr.
  const YamlNode* Find(const std::string& key) const;
};

struct YamlNode::Entry {
  std::string key;
  int line = 0;  // of the key
  int column = 0;
  YamlNode value;
};

// Parses `text` (one YAML document). Problems are appended to `errors` with
// an empty path (the caller's root); returns false when the document could
// not be loaded at all. Duplicate and non-string keys are reported and
// skipped, loading goes on.
bool LoadYamlTree(const std::string& text, const ParseLimits& limits,
                  YamlNode* root, std::vector<ConfigError>* errors);

// Loads `text` as exactly one YAML document with yaml-cpp, guarding against
// its known hang (a stray ',' outside a flow collection); more than one
// document is an error. An empty text gives a null node. No limits
// are applied: callers check size and text first.
bool LoadSingleDocument(const std::string& text, YAML::Node* node,
                        std::vector<ConfigError>* errors);

// Checks that `text` is YAML-able text: no NUL bytes, no control characters
// other than tab/newline/carriage return, valid UTF-8. Reports the first
// offending byte with its offset.
bool CheckIsText(const std::string& text, std::vector<ConfigError>* errors);

// YAML 1.2 core-schema resolution of a plain (unquoted) scalar: null, bool,
// int, float (incl. .inf/.nan), else string.
Value PlainScalarToValue(const std::string& text);

// The node as a Value (maps, lists and resolved scalars).
Value ToValue(const YamlNode& node);

// A short description of what a node is, for "expected X, found Y".
std::string Describe(const YamlNode& node);

}  // namespace det::config_internal

#endif  // DET_COMMON_CONFIG_YAML_H_
