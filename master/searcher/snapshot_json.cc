#include "master/searcher/snapshot_json.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace det::searcher {

std::string ExactDouble(double d) { return absl::StrFormat("\"%.17g\"", d); }

bool ReadExactDouble(const Value& v, double* out) {
  return v.is_string() && absl::SimpleAtod(v.as_string(), out);
}

bool ReadInt(const Value& v, int64_t* out) {
  if (!v.is_number()) return false;
  double d = v.as_number();
  if (!std::isfinite(d) || d != std::floor(d) || std::fabs(d) > 9e15) {
    return false;
  }
  *out = static_cast<int64_t>(d);
  return true;
}

absl::Status MalformedSnapshot(absl::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("searcher snapshot is malformed: ", what));
}

absl::StatusOr<Value> ParseSnapshot(const std::string& snapshot,
                                    absl::string_view method, int64_t version) {
  auto parsed = ParseJson(snapshot);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("searcher snapshot: ", parsed.status().message()));
  }
  const Value& root = *parsed;
  if (!root.is_map()) return MalformedSnapshot("not a JSON object");
  if (!root["method"].is_string() || root["method"].as_string() != method) {
    return absl::InvalidArgumentError(absl::StrCat(
        "searcher snapshot is of a '",
        root["method"].is_string() ? root["method"].as_string() : "?",
        "' search, not '", method, "'"));
  }
  int64_t found = 0;
  if (!ReadInt(root["version"], &found) || found != version) {
    return MalformedSnapshot("unsupported version");
  }
  return parsed;
}

}  // namespace det::searcher
