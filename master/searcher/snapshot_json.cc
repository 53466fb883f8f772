#include "master/searcher/snapshot_json.h"

#include <cmath>

#include "absl/strings/numbers.h"
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

}  // namespace det::searcher
