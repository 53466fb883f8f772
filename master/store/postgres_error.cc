#include "master/store/postgres_error.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace det::store {

absl::StatusCode PostgresErrorCode(absl::string_view sqlstate) {
  using C = absl::StatusCode;
  // A connection that broke before or while the server answered carries no
  // SQLSTATE: the network or the server, not the value.
  if (sqlstate.size() != 5) return C::kUnavailable;
  // Exact codes first, then classes (the first two characters).
  if (sqlstate == "23503") return C::kNotFound;       // foreign_key_violation
  if (sqlstate == "23505") return C::kAlreadyExists;  // unique_violation
  if (sqlstate == "53100") return C::kResourceExhausted;  // disk_full
  if (sqlstate == "53200") return C::kResourceExhausted;  // out_of_memory
  if (sqlstate == "53300") return C::kUnavailable;  // too_many_connections
  if (sqlstate == "54000" || sqlstate == "54001") {
    return C::kInvalidArgument;  // a value or statement over a limit
  }
  if (sqlstate == "57014") return C::kUnavailable;  // query_canceled
  if (sqlstate == "57P01" || sqlstate == "57P02" || sqlstate == "57P03") {
    return C::kUnavailable;  // admin/crash shutdown, cannot connect now
  }
  if (sqlstate == "55P03") return C::kUnavailable;         // lock_not_available
  if (sqlstate == "25006") return C::kPermissionDenied;    // read-only tx
  if (sqlstate == "42501") return C::kPermissionDenied;    // no privilege
  if (sqlstate == "3D000") return C::kFailedPrecondition;  // no such database
  if (sqlstate == "58030") return C::kUnavailable;         // io_error
  if (sqlstate == "XX001" || sqlstate == "XX002") return C::kDataLoss;
  absl::string_view cls = sqlstate.substr(0, 2);
  if (cls == "23") return C::kInvalidArgument;  // other integrity constraint
  if (cls == "22") return C::kInvalidArgument;  // data exception
  if (cls == "08") return C::kUnavailable;      // connection exception
  if (cls == "40") return C::kUnavailable;  // serialization failure, deadlock
  if (cls == "53") return C::kResourceExhausted;  // insufficient resources
  if (cls == "28") return C::kPermissionDenied;   // invalid authorization
  return C::kInternal;
}

absl::Status PostgresError(absl::string_view sqlstate, absl::string_view what,
                           absl::string_view detail) {
  // libpq's messages end with a newline (and may carry "DETAIL:" lines).
  while (absl::EndsWith(detail, "\n")) detail.remove_suffix(1);
  absl::StatusCode code = PostgresErrorCode(sqlstate);
  std::string message = absl::StrCat(what, ": ", detail);
  if (!sqlstate.empty())
    absl::StrAppend(&message, " [SQLSTATE ", sqlstate, "]");
  if (code == absl::StatusCode::kNotFound && sqlstate == "23503") {
    message = absl::StrCat(what, ": the record it refers to does not exist");
  }
  return absl::Status(code, message);
}

}  // namespace det::store
