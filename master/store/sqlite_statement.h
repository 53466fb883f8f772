// Thin helpers over the sqlite3 C API: a cache of prepared statements, a
// scoped handle that binds parameters and reads columns, and the mapping of
// SQLite result codes to absl::Status.
//
// Values reach SQL only through bound parameters: the SQL text of every
// cached statement is a constant of the store, never built from input.
//
// Not thread-safe: the owner (SqliteStore) serialises access.
#ifndef DET_MASTER_STORE_SQLITE_STATEMENT_H_
#define DET_MASTER_STORE_SQLITE_STATEMENT_H_

#include <sqlite3.h>

#include <cstdint>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace det::store {

// The status for SQLite result code `rc` (primary or extended) on `db`,
// with `what` (the operation, in the user's words) before SQLite's own
// message. The code says whose fault it is, so that a caller can tell a
// write that will never succeed from one worth retrying:
//  - the value written: a missing parent row (foreign key) is NOT_FOUND, a
//    duplicate primary or unique key ALREADY_EXISTS, any other constraint
//    (NOT NULL, CHECK), a string or blob over the length limit (TOOBIG) or
//    a type mismatch INVALID_ARGUMENT;
//  - the database: busy or locked, and I/O errors, are UNAVAILABLE, a full
//    disk or no memory RESOURCE_EXHAUSTED, a corrupt or foreign file
//    DATA_LOSS, a read-only one PERMISSION_DENIED, one that cannot be
//    opened FAILED_PRECONDITION;
//  - anything else (misuse, a bad parameter index) INTERNAL.
absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what);

// A prepared statement borrowed from a StatementCache. Parameters are bound
// in order with Bind*(); Step() runs it. On destruction the statement is
// reset and its bindings cleared, ready for the next user.
class Statement {
 public:
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  Statement(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  Statement& operator=(Statement&&) = delete;
  ~Statement();

  // Bind the next parameter (1, 2, ...). A binding error is remembered and
  // returned by the next Step().
  Statement& BindInt(int64_t v);
  Statement& BindText(absl::string_view v);
  Statement& BindBlob(absl::string_view v);

  // Runs one step: true when a row is available, false when done.
  absl::StatusOr<bool> Step(absl::string_view what);
  // Runs a statement that returns no rows.
  absl::Status Run(absl::string_view what);

  // Columns of the current row, 0-based.
  int64_t ColumnInt(int i) const;
  // Text and blob columns; the view is valid until the next Step().
  absl::string_view ColumnText(int i) const;
  absl::string_view ColumnBlob(int i) const;

  // Rows changed by the last completed INSERT/UPDATE/DELETE on the
  // connection.
  int Changes() const { return sqlite3_changes(db_); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_;
  int next_param_ = 1;
  int bind_rc_ = SQLITE_OK;
};

// Prepares each distinct SQL text once and keeps it for the life of the
// connection (statements are finalized by the destructor, before the
// connection is closed).
class StatementCache {
 public:
  explicit StatementCache(sqlite3* db) : db_(db) {}
  StatementCache(const StatementCache&) = delete;
  StatementCache& operator=(const StatementCache&) = delete;
  ~StatementCache();

  // `sql` is a single statement with static storage duration (a constant
  // of the store): it is cached by address. A statement already borrowed
  // and not yet returned must not be borrowed again (the store never nests
  // them).
  absl::StatusOr<Statement> Get(const char* sql);

 private:
  sqlite3* db_;
  std::unordered_map<const char*, sqlite3_stmt*> stmts_;
};

}  // namespace det::store

#endif  // DET_MASTER_STORE_SQLITE_STATEMENT_H_
