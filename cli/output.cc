#include "cli/output.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/type_resolver.h"
#include "google/protobuf/util/type_resolver_util.h"

namespace det::cli {

absl::StatusOr<std::string> MessageToJson(
    const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  options.add_whitespace = false;
  // What MessageToJsonString does, but from a deterministic serialization:
  // map entries (metrics, hyperparameters) then come out sorted by key, so
  // the same data always prints the same document.
  std::string binary;
  {
    google::protobuf::io::StringOutputStream stream(&binary);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    if (!message.SerializeToCodedStream(&coded)) {
      return absl::InternalError(
          absl::StrCat("cannot serialize ", message.GetTypeName()));
    }
  }
  static constexpr char kTypeUrlPrefix[] = "type.googleapis.com";
  // One resolver for the generated pool, made once and kept (it is
  // thread-safe and cheap to keep).
  static google::protobuf::util::TypeResolver* const resolver =
      google::protobuf::util::NewTypeResolverForDescriptorPool(
          kTypeUrlPrefix, google::protobuf::DescriptorPool::generated_pool());
  std::string json;
  auto status = google::protobuf::util::BinaryToJsonString(
      resolver,
      absl::StrCat(kTypeUrlPrefix, "/", message.GetDescriptor()->full_name()),
      binary, &json, options);
  if (!status.ok()) {
    return absl::InternalError(absl::StrCat("cannot print ",
                                            message.GetTypeName(),
                                            " as JSON: ", status.ToString()));
  }
  return json;
}

absl::StatusOr<std::string> AddJsonMember(absl::string_view object,
                                          absl::string_view key,
                                          absl::string_view value_json) {
  object = absl::StripAsciiWhitespace(object);
  if (object.size() < 2 || object.front() != '{' || object.back() != '}') {
    return absl::InternalError("AddJsonMember: not a JSON object");
  }
  absl::string_view inside =
      absl::StripAsciiWhitespace(object.substr(1, object.size() - 2));
  std::string out(object.substr(0, object.size() - 1));
  if (!inside.empty()) out += ',';
  absl::StrAppend(&out, JsonQuote(key), ":", value_json, "}");
  return out;
}

std::string JsonArray(const std::vector<std::string>& elements) {
  return absl::StrCat("[", absl::StrJoin(elements, ","), "]");
}

std::string IndentJson(absl::string_view json) {
  std::string out;
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  auto newline = [&] {
    out += '\n';
    out.append(2 * std::max(depth, 0), ' ');
  };
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      out += c;
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
      continue;
    }
    switch (c) {
      case '"':
        in_string = true;
        out += c;
        break;
      case '{':
      case '[': {
        // An empty container stays on one line: "{}" and "[]".
        size_t j = i + 1;
        while (j < json.size() &&
               std::isspace(static_cast<unsigned char>(json[j])))
          ++j;
        const char close = c == '{' ? '}' : ']';
        if (j < json.size() && json[j] == close) {
          out += c;
          out += close;
          i = j;
          break;
        }
        out += c;
        ++depth;
        newline();
        break;
      }
      case '}':
      case ']':
        --depth;
        newline();
        out += c;
        break;
      case ',':
        out += c;
        newline();
        break;
      case ':':
        out += ": ";
        break;
      default:
        if (!std::isspace(static_cast<unsigned char>(c))) out += c;
    }
  }
  return out;
}

void PrintJson(std::ostream& out, absl::string_view json) {
  out << IndentJson(json) << '\n';
}

std::string FormatTime(int64_t time_us) {
  if (time_us <= 0) return "-";
  return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMicros(time_us),
                          absl::LocalTimeZone());
}

std::string FormatDuration(int64_t start_us, int64_t end_us) {
  if (start_us <= 0) return "-";
  const int64_t end = end_us > 0 ? end_us : absl::ToUnixMicros(absl::Now());
  const int64_t s = std::max<int64_t>(0, (end - start_us) / 1000000);
  if (s >= 86400)
    return absl::StrFormat("%dd%02dh", s / 86400, s % 86400 / 3600);
  if (s >= 3600) return absl::StrFormat("%dh%02dm", s / 3600, s % 3600 / 60);
  if (s >= 60) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  return absl::StrFormat("%ds", s);
}

std::string FormatMetric(double value) {
  return absl::StrFormat("%.6g", value);
}

std::string FormatPercent(double fraction) {
  return absl::StrFormat("%.1f%%", 100.0 * fraction);
}

namespace {

std::string FormatValue(const google::protobuf::Value& v);

std::string FormatList(const google::protobuf::ListValue& list) {
  std::vector<std::string> items;
  for (const auto& item : list.values()) items.push_back(FormatValue(item));
  return absl::StrCat("[", absl::StrJoin(items, ","), "]");
}

std::string FormatValue(const google::protobuf::Value& v) {
  switch (v.kind_case()) {
    case google::protobuf::Value::kNumberValue:
      return absl::StrFormat("%.6g", v.number_value());
    case google::protobuf::Value::kStringValue:
      return v.string_value();
    case google::protobuf::Value::kBoolValue:
      return v.bool_value() ? "true" : "false";
    case google::protobuf::Value::kListValue:
      return FormatList(v.list_value());
    case google::protobuf::Value::kStructValue:
      return absl::StrCat("{", FormatHParams(v.struct_value()), "}");
    default:
      return "null";
  }
}

void Flatten(const google::protobuf::Struct& s, const std::string& prefix,
             std::vector<std::pair<std::string, std::string>>* parts) {
  // protobuf's Map has no order; hyperparameters read best sorted by name.
  std::map<std::string, const google::protobuf::Value*> sorted;
  for (const auto& [name, value] : s.fields()) sorted[name] = &value;
  for (const auto& [name, value] : sorted) {
    const std::string path = prefix.empty() ? name : prefix + "." + name;
    if (value->kind_case() == google::protobuf::Value::kStructValue) {
      Flatten(value->struct_value(), path, parts);
    } else {
      parts->emplace_back(path, FormatValue(*value));
    }
  }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> FlattenHParams(
    const google::protobuf::Struct& hparams) {
  std::vector<std::pair<std::string, std::string>> parts;
  Flatten(hparams, "", &parts);
  return parts;
}

std::string FormatHParams(const google::protobuf::Struct& hparams) {
  return absl::StrJoin(FlattenHParams(hparams), " ", absl::PairFormatter("="));
}

std::string BestMetricCell(const v1::Experiment& experiment) {
  auto it = experiment.best_validation_metrics().find(experiment.metric());
  if (it == experiment.best_validation_metrics().end()) return "-";
  return FormatMetric(it->second);
}

void PrintMetrics(std::ostream& out,
                  const google::protobuf::Map<std::string, double>& metrics,
                  int indent) {
  std::map<std::string, double> sorted(metrics.begin(), metrics.end());
  size_t width = 0;
  for (const auto& [name, value] : sorted) width = std::max(width, name.size());
  for (const auto& [name, value] : sorted) {
    out << std::string(indent, ' ') << name
        << std::string(width - name.size() + 2, ' ') << FormatMetric(value)
        << '\n';
  }
}

void PrintLogLine(std::ostream& out, const v1::TrialLogLine& line,
                  absl::string_view prefix) {
  absl::string_view text = line.line();
  absl::ConsumeSuffix(&text, "\n");
  out << prefix;
  // The trial's own output reads as it printed it; lines from the worker or
  // the master say where they came from.
  if (line.source() != "stdout" && line.source() != "stderr" &&
      !line.source().empty()) {
    out << '[' << line.source() << "] ";
  }
  out << text << '\n';
}

}  // namespace det::cli
