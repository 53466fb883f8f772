// Output helpers of the det command: JSON documents that follow the .proto
// schema (snake_case names, every field present) and the human forms of
// states, times, metrics and hyperparameters.
#ifndef DET_CLI_OUTPUT_H_
#define DET_CLI_OUTPUT_H_

#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/rpc/states.h"  // StateName, IsTerminal
#include "common/value.h"
#include "det/v1/api.pb.h"
#include "google/protobuf/message.h"
#include "google/protobuf/struct.pb.h"

namespace det::cli {

// Compact JSON of `message` with the .proto field names (snake_case) and
// every primitive field printed, even when it holds its default, so that
// scripts can rely on the keys being there. Follows protobuf's JSON mapping
// (int64 values are strings, enums are their names); map keys are sorted.
// Only for messages of the generated pool (all of det.v1).
absl::StatusOr<std::string> MessageToJson(
    const google::protobuf::Message& message);

// `object` (a JSON object's text) with `"key": value_json` added as its last
// member. `value_json` must be valid JSON text.
absl::StatusOr<std::string> AddJsonMember(absl::string_view object,
                                          absl::string_view key,
                                          absl::string_view value_json);

// A JSON array of the given JSON texts.
std::string JsonArray(const std::vector<std::string>& elements);

// Re-indents valid compact JSON with two spaces per level, for people who
// read --json without jq. Keeps member order and every value's text.
std::string IndentJson(absl::string_view json);

// Writes `json` indented, followed by a newline: the one document a --json
// command prints.
void PrintJson(std::ostream& out, absl::string_view json);

// "2024-05-01 12:34:56" in local time; "-" for 0 (not yet).
std::string FormatTime(int64_t time_us);

// "1h02m", "3m05s", "12s": the time between two Unix-microsecond instants;
// `end_us` 0 means now. "-" when `start_us` is 0.
std::string FormatDuration(int64_t start_us, int64_t end_us);

// A metric value with up to 6 significant digits ("0.7123", "1.23457e+06").
std::string FormatMetric(double value);

// "45.0%" for 0.45.
std::string FormatPercent(double fraction);

// The hyperparameters as (dotted name, value text) pairs, sorted by name:
// nested groups flattened ("model.layers"), numbers without needless digits.
std::vector<std::pair<std::string, std::string>> FlattenHParams(
    const google::protobuf::Struct& hparams);

// "dropout=0.5 learning_rate=0.01 model.layers=2".
std::string FormatHParams(const google::protobuf::Struct& hparams);

// The experiment's best value of its searcher metric, or "-" when none.
std::string BestMetricCell(const v1::Experiment& experiment);

// Writes "name  value" lines (indented by `indent` spaces), sorted by name.
void PrintMetrics(std::ostream& out,
                  const google::protobuf::Map<std::string, double>& metrics,
                  int indent);

// Writes one log line: `prefix` (e.g. "[Trial 3] "), then the line as the
// trial printed it; lines from the worker or the master say so
// ("[worker] ...").
void PrintLogLine(std::ostream& out, const v1::TrialLogLine& line,
                  absl::string_view prefix = "");

}  // namespace det::cli

#endif  // DET_CLI_OUTPUT_H_
