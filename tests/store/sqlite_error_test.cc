// SqliteError maps SQLite's result codes to Abseil codes that say whose
// fault a failed write is: the value written (it will fail again however
// often it is retried: INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS) or the
// database (it may pass later: UNAVAILABLE, RESOURCE_EXHAUSTED, ...). The
// master relies on this to drop a worker message that can never be stored
// instead of retrying it forever. The errors here are SQLite's own, made by
// real statements on a real database.
#include <sqlite3.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "master/store/sqlite_statement.h"

namespace det::store {
namespace {

class SqliteErrorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(sqlite3_open(":memory:", &db_), SQLITE_OK);
    sqlite3_extended_result_codes(db_, 1);
    Exec("PRAGMA foreign_keys = ON");
    Exec("CREATE TABLE parent (id INTEGER PRIMARY KEY)");
    Exec(
        "CREATE TABLE child (id INTEGER PRIMARY KEY,"
        " parent_id INTEGER NOT NULL REFERENCES parent (id),"
        " name TEXT UNIQUE, n INTEGER CHECK (n >= 0))");
    Exec("CREATE TABLE strict_t (v INTEGER) STRICT");
    Exec("INSERT INTO parent (id) VALUES (1)");
    cache_ = std::make_unique<StatementCache>(db_);
  }
  void TearDown() override {
    cache_.reset();
    sqlite3_close(db_);
  }
  void Exec(const char* sql) {
    ASSERT_EQ(sqlite3_exec(db_, sql, nullptr, nullptr, nullptr), SQLITE_OK)
        << sql << ": " << sqlite3_errmsg(db_);
  }
  // Inserts a child row; the statement text is a constant, as in the store.
  absl::Status InsertChild(int64_t id, int64_t parent, const std::string& name,
                           int64_t n) {
    static constexpr char kSql[] =
        "INSERT INTO child (id, parent_id, name, n) VALUES (?, ?, ?, ?)";
    absl::StatusOr<Statement> st = cache_->Get(kSql);
    if (!st.ok()) return st.status();
    st->BindInt(id).BindInt(parent).BindText(name).BindInt(n);
    return st->Run("adding a child");
  }

  sqlite3* db_ = nullptr;
  std::unique_ptr<StatementCache> cache_;
};

TEST_F(SqliteErrorTest, ABadValueIsThePermanentKind) {
  ASSERT_TRUE(InsertChild(1, 1, "a", 0).ok());
  // A parent that does not exist.
  absl::Status s = InsertChild(2, 99, "b", 0);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound) << s;
  // A duplicate unique key, and a duplicate primary key.
  s = InsertChild(3, 1, "a", 0);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  s = InsertChild(1, 1, "c", 0);
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << s;
  // A CHECK constraint.
  s = InsertChild(4, 1, "d", -1);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  EXPECT_NE(s.message().find("adding a child"), std::string::npos) << s;
  // A value of the wrong type for a STRICT column.
  static constexpr char kStrict[] = "INSERT INTO strict_t (v) VALUES (?)";
  {
    absl::StatusOr<Statement> st = cache_->Get(kStrict);
    ASSERT_TRUE(st.ok()) << st.status();
    st->BindText("not a number");
    s = st->Run("adding a strict value");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  }
  // A string over the connection's length limit (SQLITE_TOOBIG).
  sqlite3_limit(db_, SQLITE_LIMIT_LENGTH, 1000);
  s = InsertChild(5, 1, std::string(2000, 'x'), 0);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  // The good row is still alone.
  sqlite3_stmt* count = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db_, "SELECT COUNT(*) FROM child", -1, &count,
                               nullptr),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_step(count), SQLITE_ROW);
  EXPECT_EQ(sqlite3_column_int(count, 0), 1);
  sqlite3_finalize(count);
}

TEST_F(SqliteErrorTest, ADatabaseProblemIsTheTransientKind) {
  struct Case {
    int rc;
    absl::StatusCode want;
  };
  for (Case c : {Case{SQLITE_BUSY, absl::StatusCode::kUnavailable},
                 Case{SQLITE_BUSY_SNAPSHOT, absl::StatusCode::kUnavailable},
                 Case{SQLITE_LOCKED, absl::StatusCode::kUnavailable},
                 Case{SQLITE_IOERR, absl::StatusCode::kUnavailable},
                 Case{SQLITE_IOERR_WRITE, absl::StatusCode::kUnavailable},
                 Case{SQLITE_IOERR_FSYNC, absl::StatusCode::kUnavailable},
                 Case{SQLITE_FULL, absl::StatusCode::kResourceExhausted},
                 Case{SQLITE_NOMEM, absl::StatusCode::kResourceExhausted},
                 Case{SQLITE_CORRUPT, absl::StatusCode::kDataLoss},
                 Case{SQLITE_NOTADB, absl::StatusCode::kDataLoss},
                 Case{SQLITE_READONLY, absl::StatusCode::kPermissionDenied},
                 Case{SQLITE_CANTOPEN, absl::StatusCode::kFailedPrecondition},
                 Case{SQLITE_RANGE, absl::StatusCode::kInternal},
                 Case{SQLITE_MISUSE, absl::StatusCode::kInternal}}) {
    absl::Status s = SqliteError(nullptr, c.rc, "writing");
    EXPECT_EQ(s.code(), c.want) << sqlite3_errstr(c.rc) << ": " << s;
    EXPECT_NE(s.message().find("writing"), std::string::npos) << s;
  }
}

}  // namespace
}  // namespace det::store
