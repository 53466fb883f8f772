#include "tests/store/store_backend.h"

#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "master/store/postgres_store.h"
#include "master/store/sqlite_store.h"

namespace det::store {
namespace {

class SqliteBackend : public StoreBackend {
 public:
  explicit SqliteBackend(bool memory) : memory_(memory) {}

  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(::testing::TempDir()) /
           absl::StrCat("det_store_", getpid(), "_", info->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = memory_ ? ":memory:" : (dir_ / "master.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  absl::StatusOr<std::unique_ptr<Store>> Open() override {
    return OpenSqliteStore(path_);
  }
  absl::StatusOr<std::unique_ptr<Store>> OpenOther() override {
    return OpenSqliteStore(memory_ ? ":memory:" : (dir_ / "other.db").string());
  }
  std::string Locator() override { return path_; }
  void SetWriteObserver(Store* store,
                        std::function<void(absl::Duration)> fn) override {
    dynamic_cast<SqliteStore*>(store)->SetWriteObserver(std::move(fn));
  }
  std::string RawSql(const std::string& sql) override {
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
  int SchemaVersion() override {
    int v = 0;
    EXPECT_TRUE(absl::SimpleAtoi(RawSql("PRAGMA user_version"), &v));
    return v;
  }
  void SetSchemaVersion(int v) override {
    RawSql(absl::StrCat("PRAGMA user_version = ", v));
  }
  int TableCount() override {
    int n = 0;
    EXPECT_TRUE(absl::SimpleAtoi(
        RawSql("SELECT count(*) FROM sqlite_master WHERE type = 'table'"), &n));
    return n;
  }
  std::string CheckIntegrity() override {
    std::string integrity = RawSql("PRAGMA integrity_check");
    std::string fk = RawSql("PRAGMA foreign_key_check");
    return fk.empty() ? integrity : "foreign key check: " + fk;
  }

 private:
  bool memory_;
  std::filesystem::path dir_;
  std::string path_;
};

class PostgresBackend : public StoreBackend {
 public:
  std::string Unavailable() override {
    if (base_.empty()) {
      return "no PostgreSQL test server: run through ctest (fixture "
             "'postgres', scripts/pg-local.sh) or set DET_TEST_POSTGRES_URL";
    }
    return "";
  }

  void SetUp() override {
    static std::atomic<int> counter{0};
    int n = ++counter;
    schema_ = absl::StrCat("det_t", getpid(), "_", n);
    other_ = schema_ + "_other";
    admin_ = PQconnectdb(base_.c_str());
    ASSERT_EQ(PQstatus(admin_), CONNECTION_OK) << PQerrorMessage(admin_);
    Exec(absl::StrCat("DROP SCHEMA IF EXISTS ", schema_, " CASCADE; ",
                      "DROP SCHEMA IF EXISTS ", other_, " CASCADE; ",
                      "CREATE SCHEMA ", schema_, "; CREATE SCHEMA ", other_,
                      "; SET search_path TO ", schema_));
  }
  void TearDown() override {
    if (admin_ == nullptr) return;
    Exec(absl::StrCat("DROP SCHEMA IF EXISTS ", schema_, " CASCADE; ",
                      "DROP SCHEMA IF EXISTS ", other_, " CASCADE"));
    PQfinish(admin_);
    admin_ = nullptr;
  }

  absl::StatusOr<std::unique_ptr<Store>> Open() override {
    return Wrap(PostgresStore::Open(UrlFor(schema_)));
  }
  absl::StatusOr<std::unique_ptr<Store>> OpenOther() override {
    return Wrap(PostgresStore::Open(UrlFor(other_)));
  }
  std::string Locator() override {
    PGconn* c = admin_;
    return absl::StrCat(PQhost(c), ":", PQport(c), "/", PQdb(c));
  }
  void SetWriteObserver(Store* store,
                        std::function<void(absl::Duration)> fn) override {
    dynamic_cast<PostgresStore*>(store)->SetWriteObserver(std::move(fn));
  }
  std::string RawSql(const std::string& sql) override { return Exec(sql); }
  int SchemaVersion() override {
    if (Exec("SELECT to_regclass('det_schema') IS NOT NULL") != "t") return 0;
    int v = 0;
    EXPECT_TRUE(absl::SimpleAtoi(Exec("SELECT version FROM det_schema"), &v));
    return v;
  }
  void SetSchemaVersion(int v) override {
    Exec(absl::StrCat("UPDATE det_schema SET version = ", v));
  }
  int TableCount() override {
    int n = 0;
    EXPECT_TRUE(absl::SimpleAtoi(
        Exec(absl::StrCat("SELECT count(*) FROM information_schema.tables "
                          "WHERE table_schema = '",
                          schema_, "'")),
        &n));
    return n;
  }
  std::string CheckIntegrity() override {
    // The server enforces the foreign keys; check that no row escaped them
    // and that every unique index is valid.
    std::string orphans = Exec(
        "SELECT (SELECT count(*) FROM metrics m WHERE NOT EXISTS (SELECT 1 "
        "FROM trials t WHERE t.id = m.trial_id)) + (SELECT count(*) FROM logs "
        "l WHERE NOT EXISTS (SELECT 1 FROM trials t WHERE t.id = l.trial_id))");
    std::string invalid = Exec(
        "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = "
        "i.indexrelid WHERE NOT i.indisvalid");
    if (orphans != "0") return "orphan rows: " + orphans;
    if (invalid != "0") return "invalid indexes: " + invalid;
    return "ok";
  }

  std::string base_ = TestPostgresUrl();

 private:
  static absl::StatusOr<std::unique_ptr<Store>> Wrap(
      absl::StatusOr<std::unique_ptr<PostgresStore>> s) {
    if (!s.ok()) return s.status();
    return std::unique_ptr<Store>(std::move(*s));
  }
  std::string UrlFor(const std::string& schema) {
    return absl::StrCat(base_, base_.find('?') == std::string::npos ? "?" : "&",
                        "options=-csearch_path%3D", schema);
  }
  // Runs sql (possibly several statements); the first column of the first
  // row of the last result.
  std::string Exec(const std::string& sql) {
    PGresult* r = PQexec(admin_, sql.c_str());
    ExecStatusType st = PQresultStatus(r);
    EXPECT_TRUE(st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        << sql << ": " << PQresultErrorMessage(r);
    std::string out;
    if (st == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) {
      out = PQgetvalue(r, 0, 0);
      if (PQftype(r, 0) == 17) {  // BYTEA: its bytes, not the hex text
        size_t len = 0;
        unsigned char* raw = PQunescapeBytea(
            reinterpret_cast<const unsigned char*>(out.c_str()), &len);
        out.assign(reinterpret_cast<char*>(raw), len);
        PQfreemem(raw);
      }
    }
    PQclear(r);
    return out;
  }

  std::string schema_, other_;
  PGconn* admin_ = nullptr;
};

}  // namespace

std::string TestPostgresUrl() {
  if (const char* url = std::getenv("DET_TEST_POSTGRES_URL"); url && *url) {
    return url;
  }
  const char* state = std::getenv("DET_TEST_POSTGRES_STATE");
  if (state == nullptr || *state == '\0') return "";
  std::ifstream in(state);
  std::string dir, url;
  std::getline(in, dir);
  std::getline(in, url);
  return url;
}

std::unique_ptr<StoreBackend> MakeSqliteBackend(bool memory) {
  return std::make_unique<SqliteBackend>(memory);
}

std::unique_ptr<StoreBackend> MakePostgresBackend() {
  return std::make_unique<PostgresBackend>();
}

}  // namespace det::store
