// PostgreSQL errors -> absl::Status, with the same meaning of each code as
// the SQLite store (sqlite_statement.h), so that callers can tell a write
// that will never succeed from one worth retrying:
//  - the value written: a missing parent row (foreign key) is NOT_FOUND, a
//    duplicate key ALREADY_EXISTS, any other constraint or a bad value
//    (data exception, a value over a limit) INVALID_ARGUMENT;
//  - the database: a lost or refused connection, a server shutting down or
//    starting, lock or serialization conflicts, a cancelled statement and
//    I/O errors are UNAVAILABLE, a full disk or no memory
//    RESOURCE_EXHAUSTED (the transient kinds); corrupt data DATA_LOSS; no
//    privilege, failed authentication or a read-only server
//    PERMISSION_DENIED; a missing database FAILED_PRECONDITION;
//  - anything else (a syntax error, an unknown column: a bug in the store)
//    INTERNAL.
#ifndef DET_MASTER_STORE_POSTGRES_ERROR_H_
#define DET_MASTER_STORE_POSTGRES_ERROR_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace det::store {

// The code for a five-character SQLSTATE (empty when the server sent none,
// e.g. the connection broke: UNAVAILABLE).
absl::StatusCode PostgresErrorCode(absl::string_view sqlstate);

// `what` (the operation, in the user's words), then the server's message,
// under the code of `sqlstate`.
absl::Status PostgresError(absl::string_view sqlstate, absl::string_view what,
                           absl::string_view detail);

}  // namespace det::store

#endif  // DET_MASTER_STORE_POSTGRES_ERROR_H_
