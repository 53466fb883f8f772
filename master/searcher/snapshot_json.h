// Small readers and writers the searchers' snapshots share: the snapshots
// are JSON written directly and read back with det::ParseJson.
#ifndef DET_MASTER_SEARCHER_SNAPSHOT_JSON_H_
#define DET_MASTER_SEARCHER_SNAPSHOT_JSON_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/value.h"

namespace det::searcher {

// A double as a quoted "%.17g" string, exact: det::Value's JSON output keeps
// six significant digits, and restored rankings must be exactly the same.
std::string ExactDouble(double d);

// Reads what ExactDouble wrote. False when `v` is not such a string.
bool ReadExactDouble(const Value& v, double* out);

// Reads an integral number (at most 9e15 in magnitude). False otherwise.
bool ReadInt(const Value& v, int64_t* out);

// InvalidArgument "searcher snapshot is malformed: <what>".
absl::Status MalformedSnapshot(absl::string_view what);

// Parses a searcher's snapshot and checks its frame, the part every
// searcher's shares: a JSON object whose "method" is `method` and whose
// "version" is `version`. InvalidArgument saying which is wrong otherwise.
absl::StatusOr<Value> ParseSnapshot(const std::string& snapshot,
                                    absl::string_view method, int64_t version);

}  // namespace det::searcher

#endif  // DET_MASTER_SEARCHER_SNAPSHOT_JSON_H_
