#include "common/config_yaml.h"

#include <cmath>
#include <cstdlib>
#include <limits>
#include <map>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/yaml.h"

namespace det::config_internal {
namespace {

void AddError(std::vector<ConfigError>* errors, int line, int column,
              std::string message) {
  errors->push_back(ConfigError{"", line, column, std::move(message)});
}

// 1-based line and column of byte `offset`.
void PositionOf(const std::string& text, size_t offset, int* line,
                int* column) {
  int l = 1;
  size_t line_start = 0;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++l;
      line_start = i + 1;
    }
  }
  *line = l;
  *column = static_cast<int>(offset - line_start) + 1;
}

// Length of the UTF-8 sequence starting at text[i], or 0 when invalid.
size_t Utf8SequenceLength(const std::string& text, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char c = byte(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;  // continuation byte, overlong lead (C0/C1) or > U+10FFFF
  }
  if (i + n > text.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    unsigned char cc = byte(i + k);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;  // overlong, out of range, or a UTF-16 surrogate
  }
  return n;
}

bool IsDecimalInt(const std::string& s) {
  size_t i = (s[0] == '+' || s[0] == '-') ? 1 : 0;
  if (i == s.size()) return false;
  for (; i < s.size(); ++i) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(s[i]))) return false;
  }
  return true;
}

// [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?, the YAML 1.2 core
// schema's float (ints were matched before).
bool IsDecimalFloat(const std::string& s) {
  size_t i = 0, n = s.size();
  auto digits = [&] {
    size_t start = i;
    while (i < n && absl::ascii_isdigit(static_cast<unsigned char>(s[i]))) ++i;
    return i - start;
  };
  if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
  size_t int_digits = digits();
  size_t frac_digits = 0;
  if (i < n && s[i] == '.') {
    ++i;
    frac_digits = digits();
  }
  if (int_digits == 0 && frac_digits == 0) return false;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == n;
}

bool ParseBaseInt(const std::string& digits, int base, int64_t* out) {
  if (digits.empty()) return false;
  for (char c : digits) {
    bool ok = base == 16 ? absl::ascii_isxdigit(static_cast<unsigned char>(c))
                         : (c >= '0' && c <= '7');
    if (!ok) return false;
  }
  errno = 0;
  unsigned long long v = std::strtoull(digits.c_str(), nullptr, base);
  if (errno != 0 || v > static_cast<unsigned long long>(
                            std::numeric_limits<int64_t>::max())) {
    return false;
  }
  *out = static_cast<int64_t>(v);
  return true;
}

// Records where documents start, building nothing.
class DocumentStarts : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    marks.push_back(mark);
  }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  std::vector<YAML::Mark> marks;
};

class Converter {
 public:
  Converter(const ParseLimits& limits, std::vector<ConfigError>* errors)
      : limits_(limits), errors_(errors) {}

  // Copies `in` into `out`. `line`/`column` are the parent's position, used
  // when yaml-cpp has none for `in` (empty values).
  void Convert(const YAML::Node& in, size_t depth, int line, int column,
               YamlNode* out) {
    if (aborted_) return;
    if (++visited_ > limits_.max_nodes) {
      AddError(errors_, line, column,
               absl::StrCat("the document has more than ", limits_.max_nodes,
                            " YAML nodes once aliases are expanded (the "
                            "limit); is it an alias bomb?"));
      aborted_ = true;
      return;
    }
    const YAML::Mark mark = in.Mark();
    out->line = mark.line >= 0 ? mark.line + 1 : line;
    out->column = mark.column >= 0 ? mark.column + 1 : column;
    if (depth > static_cast<size_t>(limits_.max_depth)) {
      if (!depth_reported_) {
        AddError(errors_, out->line, out->column,
                 absl::StrCat("nesting is deeper than ", limits_.max_depth,
                              " levels (the limit)"));
        depth_reported_ = true;
      }
      return;
    }
    switch (in.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        out->kind = YamlNode::Kind::kNull;
        return;
      case YAML::NodeType::Scalar:
        out->kind = YamlNode::Kind::kScalar;
        out->scalar = in.Scalar();
        out->quoted = in.Tag() == "!" || in.Tag() == "tag:yaml.org,2002:str";
        return;
      case YAML::NodeType::Sequence:
        out->kind = YamlNode::Kind::kSequence;
        for (const YAML::Node& child : in) {
          if (aborted_) return;
          out->items.emplace_back();
          Convert(child, depth + 1, out->line, out->column, &out->items.back());
        }
        return;
      case YAML::NodeType::Map:
        out->kind = YamlNode::Kind::kMap;
        ConvertMap(in, depth, out);
        return;
    }
  }

  // True when a limit stopped the copy: the tree is incomplete.
  bool stopped() const { return aborted_ || depth_reported_; }

 private:
  void ConvertMap(const YAML::Node& in, size_t depth, YamlNode* out) {
    std::map<std::string, std::pair<int, int>> seen;  // key -> position
    std::vector<YamlNode> merges;
    for (auto it = in.begin(); it != in.end(); ++it) {
      if (aborted_) return;
      YamlNode key;
      Convert(it->first, depth + 1, out->line, out->column, &key);
      if (aborted_) return;
      if (!key.is_scalar()) {
        AddError(
            errors_, key.line, key.column,
            absl::StrCat("a map key must be a string, found ", Describe(key)));
        continue;
      }
      YamlNode value;
      Convert(it->second, depth + 1, key.line, key.column, &value);
      if (aborted_) return;
      if (key.scalar == "<<" && !key.quoted) {
        merges.push_back(std::move(value));
        continue;
      }
      auto [pos, inserted] =
          seen.emplace(key.scalar, std::make_pair(key.line, key.column));
      if (!inserted) {
        AddError(errors_, key.line, key.column,
                 absl::StrCat("duplicate key '", key.scalar,
                              "' (first given at line ", pos->second.first,
                              ", column ", pos->second.second, ")"));
        continue;
      }
      out->entries.push_back(
          {key.scalar, key.line, key.column, std::move(value)});
    }
    // Merge keys: explicit keys win, then earlier merge sources.
    for (const YamlNode& m : merges) {
      std::vector<const YamlNode*> sources;
      if (m.is_map()) {
        sources.push_back(&m);
      } else if (m.is_sequence()) {
        for (const YamlNode& s : m.items) sources.push_back(&s);
      }
      bool ok = !sources.empty();
      for (const YamlNode* s : sources) {
        if (!s->is_map()) {
          ok = false;
          continue;
        }
        for (const YamlNode::Entry& e : s->entries) {
          if (seen.emplace(e.key, std::make_pair(e.line, e.column)).second) {
            out->entries.push_back(e);
          }
        }
      }
      if (!ok) {
        AddError(errors_, m.line, m.column,
                 absl::StrCat("a '<<' merge key needs a map or a list of "
                              "maps, found ",
                              Describe(m)));
      }
    }
  }

  const ParseLimits& limits_;
  std::vector<ConfigError>* errors_;
  size_t visited_ = 0;
  bool aborted_ = false;
  bool depth_reported_ = false;
};

}  // namespace

const YamlNode* YamlNode::Find(const std::string& key) const {
  for (const Entry& e : entries) {
    if (e.key == key) return &e.value;
  }
  return nullptr;
}

bool CheckIsText(const std::string& text, std::vector<ConfigError>* errors) {
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    std::string problem;
    if (c == 0) {
      problem = "a NUL byte";
    } else if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) {
      problem =
          absl::StrCat("control character 0x", absl::Hex(c, absl::kZeroPad2));
    } else {
      size_t n = Utf8SequenceLength(text, i);
      if (n == 0) {
        problem = absl::StrCat("invalid UTF-8 (byte 0x",
                               absl::Hex(c, absl::kZeroPad2), ")");
      } else {
        i += n;
        continue;
      }
    }
    int line, column;
    PositionOf(text, i, &line, &column);
    AddError(errors, line, column,
             absl::StrCat("this is binary data, not YAML text: ", problem,
                          " at byte offset ", i));
    return false;
  }
  return true;
}

bool LoadSingleDocument(const std::string& text, YAML::Node* node,
                        std::vector<ConfigError>* errors) {
  auto report = [&](const YAML::Mark& m, const std::string& message) {
    AddError(errors, m.is_null() ? 0 : m.line + 1,
             m.is_null() ? 0 : m.column + 1, message);
    return false;
  };
  try {
    // A first pass over the events: yaml-cpp 0.7 never consumes a stray ','
    // outside a flow collection and starts empty documents at it forever
    // (YAML::LoadAll(",") exhausts memory), so count documents and notice
    // one starting where the last one did.
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts starts;
    for (int i = 0; i < 3 && parser.HandleNextDocument(starts); ++i) {
      const std::vector<YAML::Mark>& m = starts.marks;
      if (m.size() >= 2 && m[m.size() - 1].pos == m[m.size() - 2].pos) {
        size_t pos = static_cast<size_t>(std::max(m.back().pos, 0));
        std::string found = pos < text.size()
                                ? absl::StrCat("'", text.substr(pos, 1), "'")
                                : "the end";
        return report(m.back(),
                      absl::StrCat("malformed YAML: unexpected ", found));
      }
    }
    if (starts.marks.size() > 1) {
      return report(starts.marks[1],
                    "found more than one YAML document ('---'); an "
                    "experiment configuration is a single document");
    }
    // No document at all (empty text, comments only) stays a null node.
    node->reset(starts.marks.empty() ? YAML::Node() : YAML::Load(text));
  } catch (const YAML::Exception& e) {
    return report(e.mark, absl::StrCat("malformed YAML: ", e.msg));
  } catch (const std::exception& e) {
    AddError(errors, 0, 0, absl::StrCat("malformed YAML: ", e.what()));
    return false;
  }
  return true;
}

bool LoadYamlTree(const std::string& text, const ParseLimits& limits,
                  YamlNode* root, std::vector<ConfigError>* errors) {
  *root = YamlNode();
  if (text.size() > limits.max_bytes) {
    AddError(errors, 0, 0,
             absl::StrCat("the configuration is ", text.size(),
                          " bytes; the limit is ", limits.max_bytes, " bytes"));
    return false;
  }
  if (!CheckIsText(text, errors)) return false;
  YAML::Node doc;
  if (!LoadSingleDocument(text, &doc, errors)) return false;
  if (doc.IsNull()) return true;  // nothing (or only null): a null root
  Converter converter(limits, errors);
  try {
    converter.Convert(doc, 0, 1, 1, root);
  } catch (const YAML::Exception& e) {
    AddError(errors, 0, 0, absl::StrCat("malformed YAML: ", e.msg));
    return false;
  }
  // A document cut short by the limits is not worth validating further.
  return !converter.stopped();
}

Value PlainScalarToValue(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") {
    return Value();
  }
  if (s == "true" || s == "True" || s == "TRUE") return Value(true);
  if (s == "false" || s == "False" || s == "FALSE") return Value(false);
  if (IsDecimalInt(s)) {
    int64_t v;
    if (absl::SimpleAtoi(s, &v)) return Value(v);
    double d;
    if (absl::SimpleAtod(s, &d)) return Value(d);  // too big for int64
  }
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    int64_t v;
    if (ParseBaseInt(s.substr(2), s[1] == 'x' ? 16 : 8, &v)) return Value(v);
  }
  if (IsDecimalFloat(s)) {
    double d;
    if (absl::SimpleAtod(s, &d)) return Value(d);
  }
  std::string lower = absl::AsciiStrToLower(s);
  if (lower == ".inf" || lower == "+.inf") {
    return Value(std::numeric_limits<double>::infinity());
  }
  if (lower == "-.inf") return Value(-std::numeric_limits<double>::infinity());
  if (lower == ".nan") return Value(std::numeric_limits<double>::quiet_NaN());
  return Value(s);
}

Value ToValue(const YamlNode& node) {
  switch (node.kind) {
    case YamlNode::Kind::kNull:
      return Value();
    case YamlNode::Kind::kScalar:
      return node.quoted ? Value(node.scalar) : PlainScalarToValue(node.scalar);
    case YamlNode::Kind::kSequence: {
      ValueList list;
      for (const YamlNode& item : node.items) list.push_back(ToValue(item));
      return Value(std::move(list));
    }
    case YamlNode::Kind::kMap: {
      ValueMap map;
      for (const YamlNode::Entry& e : node.entries) {
        map[e.key] = ToValue(e.value);
      }
      return Value(std::move(map));
    }
  }
  return Value();
}

std::string Describe(const YamlNode& node) {
  switch (node.kind) {
    case YamlNode::Kind::kNull:
      return "nothing (null)";
    case YamlNode::Kind::kSequence:
      return "a list";
    case YamlNode::Kind::kMap:
      return "a map";
    case YamlNode::Kind::kScalar:
      break;
  }
  std::string text = node.scalar;
  if (text.size() > 40) text = text.substr(0, 37) + "...";
  return node.quoted ? absl::StrCat("the string \"", text, "\"")
                     : absl::StrCat("'", text, "'");
}

}  // namespace det::config_internal
