#include "master/store/sqlite_statement.h"

#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace det::store {

absl::Status SqliteError(sqlite3* db, int rc, absl::string_view what) {
  // sqlite3_errmsg describes the most recent failure on the connection,
  // which is `rc` when called right after it; fall back to the code's text.
  const char* detail = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  std::string message = absl::StrCat(what, ": ", detail);
  switch (rc) {
    case SQLITE_CONSTRAINT_FOREIGNKEY:
      return absl::NotFoundError(
          absl::StrCat(what, ": the record it refers to does not exist"));
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_UNIQUE:
      return absl::AlreadyExistsError(message);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return absl::UnavailableError(absl::StrCat(
          message, " (another process holds the database; try again)"));
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return absl::DataLossError(message);
    case SQLITE_FULL:
    case SQLITE_NOMEM:
      return absl::ResourceExhaustedError(message);
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
      return absl::PermissionDeniedError(message);
    case SQLITE_CANTOPEN:
      return absl::FailedPreconditionError(absl::StrCat(
          message, " (check that the directory exists and is writable)"));
    default:
      break;
  }
  switch (rc & 0xff) {  // primary code of an extended one
    // The value itself is refused: it would be refused again, whenever and
    // however often it is written (a NOT NULL or CHECK constraint, a string
    // or blob over SQLITE_LIMIT_LENGTH, a value of the wrong type).
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
      return absl::InvalidArgumentError(message);
    // The database or its file system, not the value: may pass next time.
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_IOERR:
      return absl::UnavailableError(message);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(message);
    case SQLITE_READONLY:
      return absl::PermissionDeniedError(message);
    case SQLITE_CANTOPEN:
      return absl::FailedPreconditionError(message);
    default:  // SQLITE_RANGE, SQLITE_MISUSE, ...: a bug in the store
      return absl::InternalError(message);
  }
}

Statement::Statement(Statement&& other) noexcept
    : db_(other.db_),
      stmt_(std::exchange(other.stmt_, nullptr)),
      next_param_(other.next_param_),
      bind_rc_(other.bind_rc_) {}

Statement::~Statement() {
  if (stmt_ == nullptr) return;
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

Statement& Statement::BindInt(int64_t v) {
  int rc = sqlite3_bind_int64(stmt_, next_param_++, v);
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Statement& Statement::BindText(absl::string_view v) {
  int rc =
      v.size() > static_cast<size_t>(std::numeric_limits<int>::max())
          ? SQLITE_TOOBIG
          : sqlite3_bind_text(stmt_, next_param_, v.data(),
                              static_cast<int>(v.size()), SQLITE_TRANSIENT);
  ++next_param_;
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

Statement& Statement::BindBlob(absl::string_view v) {
  // sqlite3_bind_blob with a null pointer would bind NULL; an empty blob
  // must stay an empty blob for NOT NULL columns.
  int rc =
      v.size() > static_cast<size_t>(std::numeric_limits<int>::max())
          ? SQLITE_TOOBIG
          : sqlite3_bind_blob(stmt_, next_param_, v.empty() ? "" : v.data(),
                              static_cast<int>(v.size()), SQLITE_TRANSIENT);
  ++next_param_;
  if (bind_rc_ == SQLITE_OK) bind_rc_ = rc;
  return *this;
}

absl::StatusOr<bool> Statement::Step(absl::string_view what) {
  if (bind_rc_ != SQLITE_OK) return SqliteError(db_, bind_rc_, what);
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  // sqlite3_step (v2 interface) returns the extended code directly.
  return SqliteError(db_, rc, what);
}

absl::Status Statement::Run(absl::string_view what) {
  absl::StatusOr<bool> row = Step(what);
  if (!row.ok()) return row.status();
  if (*row) {
    return absl::InternalError(
        absl::StrCat(what, ": statement returned rows unexpectedly"));
  }
  return absl::OkStatus();
}

int64_t Statement::ColumnInt(int i) const {
  return sqlite3_column_int64(stmt_, i);
}

absl::string_view Statement::ColumnText(int i) const {
  const unsigned char* p = sqlite3_column_text(stmt_, i);
  if (p == nullptr) return {};
  return absl::string_view(reinterpret_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(stmt_, i)));
}

absl::string_view Statement::ColumnBlob(int i) const {
  const void* p = sqlite3_column_blob(stmt_, i);
  if (p == nullptr) return {};
  return absl::string_view(static_cast<const char*>(p),
                           static_cast<size_t>(sqlite3_column_bytes(stmt_, i)));
}

StatementCache::~StatementCache() {
  for (auto& [sql, stmt] : stmts_) sqlite3_finalize(stmt);
}

absl::StatusOr<Statement> StatementCache::Get(const char* sql) {
  auto it = stmts_.find(sql);
  if (it == stmts_.end()) {
    sqlite3_stmt* stmt = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt,
                                nullptr);
    if (rc != SQLITE_OK) {
      return SqliteError(db_, rc, absl::StrCat("preparing \"", sql, "\""));
    }
    it = stmts_.emplace(sql, stmt).first;
  }
  return Statement(db_, it->second);
}

}  // namespace det::store
