#include "common/config_hparams.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "common/config_checker.h"
#include "common/config_yaml.h"

namespace det {
namespace {

void Flatten(const HParamSpecs& specs, std::vector<std::string>* names,
             std::vector<HParamLeaf>* out) {
  for (const auto& [name, spec] : specs) {
    names->push_back(name);
    if (spec.type == HParamSpec::Type::kGroup) {
      Flatten(spec.group, names, out);
    } else {
      HParamLeaf leaf;
      leaf.names = *names;
      for (const std::string& n : *names) {
        leaf.path = leaf.path.empty() ? n : absl::StrCat(leaf.path, ".", n);
      }
      leaf.spec = &spec;
      out->push_back(std::move(leaf));
    }
    names->pop_back();
  }
}

void Build(const HParamSpecs& specs, const std::string& prefix,
           const std::function<Value(const std::string&, const HParamSpec&)>&
               leaf_value,
           ValueMap* out) {
  for (const auto& [name, spec] : specs) {
    std::string path = prefix.empty() ? name : absl::StrCat(prefix, ".", name);
    if (spec.type == HParamSpec::Type::kGroup) {
      ValueMap group;
      Build(spec.group, path, leaf_value, &group);
      (*out)[name] = Value(std::move(group));
    } else {
      (*out)[name] = leaf_value(path, spec);
    }
  }
}

}  // namespace

std::vector<HParamLeaf> FlattenHParams(const HParamSpecs& specs) {
  std::vector<HParamLeaf> leaves;
  std::vector<std::string> names;
  Flatten(specs, &names, &leaves);
  std::sort(
      leaves.begin(), leaves.end(),
      [](const HParamLeaf& a, const HParamLeaf& b) { return a.path < b.path; });
  return leaves;
}

int64_t GridAxisSize(const HParamSpec& spec) {
  int64_t count = spec.count.value_or(1);
  switch (spec.type) {
    case HParamSpec::Type::kConst:
      return 1;
    case HParamSpec::Type::kCategorical:
      return static_cast<int64_t>(spec.vals.size());
    case HParamSpec::Type::kInt: {
      // Clamp to the number of integers in the range.
      __int128 range = static_cast<__int128>(spec.maxval) -
                       static_cast<__int128>(spec.minval) + 1;
      return static_cast<int64_t>(std::min<__int128>(count, range));
    }
    case HParamSpec::Type::kDouble:
    case HParamSpec::Type::kLog:
      return count;
    case HParamSpec::Type::kGroup:
      return 1;
  }
  return 1;
}

Value GridAxisValue(const HParamSpec& spec, int64_t index) {
  int64_t count = GridAxisSize(spec);
  switch (spec.type) {
    case HParamSpec::Type::kConst:
      return spec.val;
    case HParamSpec::Type::kCategorical:
      return spec.vals[static_cast<size_t>(index)];
    case HParamSpec::Type::kInt: {
      int64_t lo = static_cast<int64_t>(spec.minval);
      int64_t hi = static_cast<int64_t>(spec.maxval);
      if (count == 1) {
        return Value(static_cast<int64_t>(std::round(
            (static_cast<double>(lo) + static_cast<double>(hi)) / 2.0)));
      }
      __int128 span = static_cast<__int128>(index) *
                      (static_cast<__int128>(hi) - static_cast<__int128>(lo));
      return Value(static_cast<int64_t>(std::round(
          static_cast<double>(lo) +
          static_cast<double>(span) / static_cast<double>(count - 1))));
    }
    case HParamSpec::Type::kDouble:
    case HParamSpec::Type::kLog: {
      double u;
      if (count == 1) {
        u = (spec.minval + spec.maxval) / 2.0;
      } else {
        u = spec.minval + static_cast<double>(index) *
                              (spec.maxval - spec.minval) /
                              static_cast<double>(count - 1);
      }
      return Value(spec.type == HParamSpec::Type::kLog ? std::pow(spec.base, u)
                                                       : u);
    }
    case HParamSpec::Type::kGroup:
      break;
  }
  return Value();
}

int64_t GridSize(const HParamSpecs& specs) {
  int64_t size = 1;
  for (const HParamLeaf& leaf : FlattenHParams(specs)) {
    int64_t axis = GridAxisSize(*leaf.spec);
    if (axis == 0) return 0;
    if (size > std::numeric_limits<int64_t>::max() / axis) {
      return std::numeric_limits<int64_t>::max();
    }
    size *= axis;
  }
  return size;
}

ValueMap BuildHParams(
    const HParamSpecs& specs,
    const std::function<Value(const std::string& path, const HParamSpec&)>&
        leaf_value) {
  ValueMap out;
  Build(specs, "", leaf_value, &out);
  return out;
}

}  // namespace det

namespace det::config_internal {
namespace {

// Integers beyond 2^53 cannot travel as JSON/protobuf numbers exactly.
constexpr int64_t kMaxIntHParam = int64_t{1} << 53;
constexpr int64_t kMaxCount = 1000000;

const std::vector<std::string>& HParamTypes() {
  static const auto* types = new std::vector<std::string>{
      "const", "int", "double", "log", "categorical"};
  return *types;
}

void ParseSpec(const YamlNode& node, const std::string& path, bool grid,
               Checker* c, HParamSpec* out);

void ParseGroup(const YamlNode& map, const std::string& path, bool grid,
                Checker* c, HParamSpecs* out) {
  for (const YamlNode::Entry& e : map.entries) {
    std::string p = JoinPath(path, e.key);
    if (e.key.empty() || e.key.find('.') != std::string::npos) {
      YamlNode at;
      at.line = e.line;
      at.column = e.column;
      c->Error(at, p,
               "a hyperparameter name must be non-empty and must not contain "
               "'.' (nested groups are written as nested maps)");
      continue;
    }
    ParseSpec(e.value, p, grid, c, &(*out)[e.key]);
  }
}

// Reads a required field of a typed spec; reports it missing.
const YamlNode* Required(const YamlNode& spec, const std::string& path,
                         const std::string& key, const std::string& type,
                         Checker* c) {
  const YamlNode* n = spec.Find(key);
  if (n == nullptr) {
    c->Error(
        spec, JoinPath(path, key),
        absl::StrCat("missing: a ", type, " hyperparameter needs '", key, "'"));
  }
  return n;
}

void ParseCount(const YamlNode& spec, const std::string& path, bool grid,
                const std::string& type, Checker* c, HParamSpec* out) {
  const YamlNode* count = spec.Find("count");
  if (count != nullptr) {
    int64_t v;
    if (c->ReadIntInRange(*count, JoinPath(path, "count"), 1, kMaxCount, &v)) {
      out->count = v;
    }
  } else if (grid) {
    c->Error(spec, JoinPath(path, "count"),
             absl::StrCat("missing: the grid searcher needs a count for every "
                          "int, double and log hyperparameter (this one is ",
                          type, ")"));
  }
}

void CheckOrder(const YamlNode& spec, const std::string& path, double lo,
                double hi, Checker* c) {
  if (lo > hi) {
    c->Error(
        *spec.Find("minval"), JoinPath(path, "minval"),
        absl::StrCat("minval (", lo, ") is greater than maxval (", hi, ")"));
  }
}

void ParseTyped(const YamlNode& node, const std::string& path,
                const std::string& type, bool grid, Checker* c,
                HParamSpec* out) {
  if (type == "const") {
    out->type = HParamSpec::Type::kConst;
    c->CheckKeys(node, path, {"type", "val"});
    if (const YamlNode* val = Required(node, path, "val", type, c)) {
      out->val = ToValue(*val);
    }
  } else if (type == "int") {
    out->type = HParamSpec::Type::kInt;
    c->CheckKeys(node, path, {"type", "minval", "maxval", "count"});
    int64_t lo = 0, hi = 0;
    bool ok = true;
    for (auto [key, dst] :
         {std::make_pair("minval", &lo), std::make_pair("maxval", &hi)}) {
      const YamlNode* n = Required(node, path, key, type, c);
      ok = n != nullptr &&
           c->ReadIntInRange(*n, JoinPath(path, key), -kMaxIntHParam,
                             kMaxIntHParam, dst) &&
           ok;
    }
    out->minval = static_cast<double>(lo);
    out->maxval = static_cast<double>(hi);
    if (ok) CheckOrder(node, path, out->minval, out->maxval, c);
    ParseCount(node, path, grid, type, c, out);
  } else if (type == "double" || type == "log") {
    bool log = type == "log";
    out->type = log ? HParamSpec::Type::kLog : HParamSpec::Type::kDouble;
    std::vector<std::string> keys = {"type", "minval", "maxval", "count"};
    if (log) keys.push_back("base");
    c->CheckKeys(node, path, keys);
    bool ok = true;
    for (auto [key, dst] : {std::make_pair("minval", &out->minval),
                            std::make_pair("maxval", &out->maxval)}) {
      const YamlNode* n = Required(node, path, key, type, c);
      ok = n != nullptr && c->ReadNumber(*n, JoinPath(path, key), dst) && ok;
    }
    if (ok) CheckOrder(node, path, out->minval, out->maxval, c);
    if (log) {
      const YamlNode* base = node.Find("base");
      std::string base_path = JoinPath(path, "base");
      if (base != nullptr && c->ReadNumber(*base, base_path, &out->base)) {
        if (out->base <= 0) {
          c->Error(*base, base_path,
                   absl::StrCat("the base of a log hyperparameter must be > 0, "
                                "found ",
                                out->base));
          ok = false;
        } else if (out->base == 1) {
          c->Warn(*base, base_path, "base 1 makes every value 1");
        }
      } else if (base != nullptr) {
        ok = false;
      }
      if (ok) {
        for (double e : {out->minval, out->maxval}) {
          double v = std::pow(out->base, e);
          if (!std::isfinite(v) || v == 0) {
            c->Error(node, path,
                     absl::StrCat(out->base, "^", e,
                                  " is out of the range of a double; minval "
                                  "and maxval are exponents"));
            break;
          }
        }
      }
    }
    ParseCount(node, path, grid, type, c, out);
  } else {  // categorical
    out->type = HParamSpec::Type::kCategorical;
    c->CheckKeys(node, path, {"type", "vals"});
    const YamlNode* vals = Required(node, path, "vals", type, c);
    if (vals == nullptr) return;
    std::string vals_path = JoinPath(path, "vals");
    if (!vals->is_sequence()) {
      c->Error(*vals, vals_path,
               absl::StrCat("expected a non-empty list of values, found ",
                            Describe(*vals)));
    } else if (vals->items.empty()) {
      c->Error(*vals, vals_path,
               "the list is empty: a categorical hyperparameter needs at "
               "least one value");
    } else {
      for (const YamlNode& item : vals->items) {
        out->vals.push_back(ToValue(item));
      }
    }
  }
}

void ParseSpec(const YamlNode& node, const std::string& path, bool grid,
               Checker* c, HParamSpec* out) {
  if (!node.is_map()) {
    // A bare scalar or list is a const.
    out->type = HParamSpec::Type::kConst;
    out->val = ToValue(node);
    return;
  }
  const YamlNode* type = node.Find("type");
  if (type == nullptr) {
    out->type = HParamSpec::Type::kGroup;
    ParseGroup(node, path, grid, c, &out->group);
    return;
  }
  const std::vector<std::string>& types = HParamTypes();
  if (type->is_scalar() &&
      std::find(types.begin(), types.end(), type->scalar) != types.end()) {
    ParseTyped(node, path, type->scalar, grid, c, out);
    return;
  }
  std::string found = Describe(*type);
  std::string message =
      absl::StrCat("unknown hyperparameter type ", found,
                   "; expected const, int, double, log or categorical");
  std::string closest =
      type->is_scalar() ? ClosestName(type->scalar, types) : "";
  if (!closest.empty()) {
    absl::StrAppend(&message, "; did you mean '", closest, "'?");
  } else {
    absl::StrAppend(&message,
                    " (a map with a 'type' key is a hyperparameter spec; to "
                    "nest a hyperparameter named 'type' in a group, write "
                    "'type: {type: const, val: ...}')");
  }
  c->Error(*type, JoinPath(path, "type"), std::move(message));
}

}  // namespace

void ParseHyperparameters(const YamlNode& node, const std::string& path,
                          bool grid, Checker* checker, HParamSpecs* out) {
  if (node.is_null()) return;
  if (!checker->ExpectMap(node, path,
                          "a map of hyperparameter names to values or "
                          "specs")) {
    return;
  }
  ParseGroup(node, path, grid, checker, out);
}

}  // namespace det::config_internal
