#include "common/value.h"

#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "google/protobuf/struct.pb.h"
#include "google/protobuf/util/json_util.h"

namespace det {

const Value& Value::operator[](const std::string& key) const {
  static const Value kNull;
  if (!is_map()) return kNull;
  auto it = as_map().find(key);
  return it == as_map().end() ? kNull : it->second;
}

namespace {

void AppendJsonString(const std::string& s, std::string* out) {
  out->append(JsonQuote(s));
}

void AppendJson(const Value& v, std::string* out) {
  if (v.is_null()) {
    out->append("null");
  } else if (v.is_bool()) {
    out->append(v.as_bool() ? "true" : "false");
  } else if (v.is_int()) {
    absl::StrAppend(out, v.as_int());
  } else if (v.is_double()) {
    double d = v.as_number();
    if (!std::isfinite(d)) {
      out->append("null");  // JSON has no NaN/Inf
    } else {
      // The shortest text that reads back as the same double.
      char buf[64];
      auto res = std::to_chars(buf, buf + sizeof(buf), d);
      std::string s(buf, res.ptr);
      // Keep doubles distinguishable from ints when read back.
      if (s.find_first_of(".eE") == std::string::npos) s += ".0";
      out->append(s);
    }
  } else if (v.is_string()) {
    AppendJsonString(v.as_string(), out);
  } else if (v.is_list()) {
    out->push_back('[');
    bool first = true;
    for (const Value& e : v.as_list()) {
      if (!first) out->push_back(',');
      first = false;
      AppendJson(e, out);
    }
    out->push_back(']');
  } else {
    out->push_back('{');
    bool first = true;
    for (const auto& [k, e] : v.as_map()) {
      if (!first) out->push_back(',');
      first = false;
      AppendJsonString(k, out);
      out->push_back(':');
      AppendJson(e, out);
    }
    out->push_back('}');
  }
}

}  // namespace

std::string JsonQuote(absl::string_view text) {
  std::string out = "\"";
  for (unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == '<' || c == 0x7f) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string Value::ToJson() const {
  std::string out;
  AppendJson(*this, &out);
  return out;
}

void ToProto(const Value& v, google::protobuf::Value* out) {
  if (v.is_null()) {
    out->set_null_value(google::protobuf::NULL_VALUE);
  } else if (v.is_bool()) {
    out->set_bool_value(v.as_bool());
  } else if (v.is_number()) {
    out->set_number_value(v.as_number());
  } else if (v.is_string()) {
    out->set_string_value(v.as_string());
  } else if (v.is_list()) {
    auto* list = out->mutable_list_value();
    for (const Value& e : v.as_list()) ToProto(e, list->add_values());
  } else {
    ToProto(v.as_map(), out->mutable_struct_value());
  }
}

void ToProto(const ValueMap& m, google::protobuf::Struct* out) {
  out->clear_fields();
  for (const auto& [k, e] : m) ToProto(e, &(*out->mutable_fields())[k]);
}

Value FromProto(const google::protobuf::Value& v) {
  switch (v.kind_case()) {
    case google::protobuf::Value::kBoolValue:
      return Value(v.bool_value());
    case google::protobuf::Value::kNumberValue: {
      double d = v.number_value();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) {
        return Value(static_cast<int64_t>(d));
      }
      return Value(d);
    }
    case google::protobuf::Value::kStringValue:
      return Value(v.string_value());
    case google::protobuf::Value::kListValue: {
      ValueList l;
      for (const auto& e : v.list_value().values()) l.push_back(FromProto(e));
      return Value(std::move(l));
    }
    case google::protobuf::Value::kStructValue:
      return Value(FromProto(v.struct_value()));
    default:
      return Value();
  }
}

ValueMap FromProto(const google::protobuf::Struct& s) {
  ValueMap m;
  for (const auto& [k, e] : s.fields()) m[k] = FromProto(e);
  return m;
}

absl::StatusOr<Value> ParseJson(const std::string& text) {
  google::protobuf::Value pv;
  auto st = google::protobuf::util::JsonStringToMessage(text, &pv);
  if (!st.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid JSON: ", st.message().as_string()));
  }
  return FromProto(pv);
}

}  // namespace det
