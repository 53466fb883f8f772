// SqliteStore on database files, the cases only a file has: WAL mode,
// files that are not ours or not databases, a missing directory. What
// every store shares is in store_files_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "master/store/sqlite_schema.h"
#include "master/store/sqlite_store.h"

namespace det::store {
namespace {

using ::testing::HasSubstr;

class SqliteStoreFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(::testing::TempDir()) /
           ("det_store_" + std::to_string(getpid()) + "_" + info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "master.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::unique_ptr<SqliteStore> OpenOrDie() {
    absl::StatusOr<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(path_);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  // Runs one constant statement on the file with a separate connection,
  // as an operator with the sqlite3 shell would; returns the first column
  // of the first row, if any.
  std::string RawSql(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    std::string out;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    EXPECT_TRUE(rc == SQLITE_ROW || rc == SQLITE_DONE) << sqlite3_errmsg(db);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
  }

  std::filesystem::path dir_;
  std::string path_;
};

TEST_F(SqliteStoreFilesTest, EmptyPathIsRefused) {
  auto s = SqliteStore::Open("");
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SqliteStoreFilesTest, FileIsInWalModeAtTheCurrentVersion) {
  { ASSERT_NE(OpenOrDie(), nullptr); }
  EXPECT_EQ(RawSql("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(RawSql("PRAGMA user_version"), std::to_string(kSchemaVersion));
}

TEST_F(SqliteStoreFilesTest, AnotherProgramsDatabaseIsRefused) {
  RawSql("PRAGMA application_id = 12345");
  RawSql("CREATE TABLE notes (text TEXT)");
  absl::StatusOr<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(path_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr("another program"));
}

TEST_F(SqliteStoreFilesTest, FileThatIsNotADatabaseIsRefused) {
  std::ofstream(path_) << std::string(4096, 'x');
  absl::StatusOr<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(path_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(s.status().message(), HasSubstr(path_));
}

TEST_F(SqliteStoreFilesTest, MissingDirectoryIsAClearError) {
  std::string path = (dir_ / "no" / "such" / "dir" / "master.db").string();
  absl::StatusOr<std::unique_ptr<SqliteStore>> s = SqliteStore::Open(path);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr(path));
  EXPECT_THAT(s.status().message(), HasSubstr("directory"));
}

}  // namespace
}  // namespace det::store
