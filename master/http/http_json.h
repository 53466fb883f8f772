// JSON for the master's HTTP API: protobuf messages in their canonical JSON
// mapping with the .proto field names kept (the same names as `det ... --json`
// and gRPC), and error bodies with an HTTP status derived from absl codes.
#ifndef DET_MASTER_HTTP_HTTP_JSON_H_
#define DET_MASTER_HTTP_HTTP_JSON_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/value.h"
#include "google/protobuf/message.h"

namespace det::http {

// The message as JSON: proto field names (snake_case), enums by name,
// fields at their default value included (so clients need no fallbacks),
// 64-bit integers as strings (the proto3 JSON mapping).
std::string ToJson(const google::protobuf::Message& m);

// The HTTP status for an absl status: NOT_FOUND 404, INVALID_ARGUMENT and
// OUT_OF_RANGE 400, FAILED_PRECONDITION and ALREADY_EXISTS 409,
// UNAUTHENTICATED 401, PERMISSION_DENIED 403, UNAVAILABLE 503,
// DEADLINE_EXCEEDED 504, RESOURCE_EXHAUSTED 429, anything else 500.
int HttpStatusFor(const absl::Status& s);

// {"error":{"code":<http>,"status":"<reason>","message":"..."}} where reason
// is the canonical absl code name when given, else the HTTP reason phrase.
std::string ErrorJson(int http_status, absl::string_view message,
                      absl::string_view reason = "");

}  // namespace det::http

#endif  // DET_MASTER_HTTP_HTTP_JSON_H_
