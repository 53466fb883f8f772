// The store test suites run against every Store implementation through a
// StoreBackend: it makes a fresh, empty database for each test, opens
// stores on it (opening again is a master restart), and runs raw SQL on it
// as an operator would. Each test binary instantiates the suites for one
// backend (store_sqlite_main.cc, store_postgres_main.cc).
#ifndef DET_TESTS_STORE_STORE_BACKEND_H_
#define DET_TESTS_STORE_STORE_BACKEND_H_

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "master/store/store.h"

namespace det::store {

class StoreBackend {
 public:
  virtual ~StoreBackend() = default;
  // Empty when the backend can run here; else why not (the test skips).
  virtual std::string Unavailable() { return ""; }
  // The database every Open() of this test uses, made empty.
  virtual void SetUp() = 0;
  virtual void TearDown() = 0;
  virtual absl::StatusOr<std::unique_ptr<Store>> Open() = 0;
  // A store on a second, separate empty database.
  virtual absl::StatusOr<std::unique_ptr<Store>> OpenOther() = 0;
  // What Open() uses (a path, a URL), as it appears in error messages.
  virtual std::string Locator() = 0;
  virtual void SetWriteObserver(Store* store,
                                std::function<void(absl::Duration)> fn) = 0;
  // Runs `sql` on the test's database over a separate connection; the
  // first column of the first row ("" if none), BYTEA as its bytes.
  virtual std::string RawSql(const std::string& sql) = 0;
  // The schema version recorded in the database (0 when new), and setting
  // it behind the store's back.
  virtual int SchemaVersion() = 0;
  virtual void SetSchemaVersion(int v) = 0;
  // Tables in the test's database (schema).
  virtual int TableCount() = 0;
  // "ok" when the database's own consistency checks pass.
  virtual std::string CheckIntegrity() = 0;
};

using BackendFactory = std::function<std::unique_ptr<StoreBackend>()>;

struct BackendParam {
  std::string name;
  BackendFactory make;
};

// SQLite on ":memory:" (memory = true, every Open() is a new database) or
// on a file in a temporary folder.
std::unique_ptr<StoreBackend> MakeSqliteBackend(bool memory);
// PostgreSQL from $DET_TEST_POSTGRES_URL, or the server whose state file
// (scripts/pg-local.sh) $DET_TEST_POSTGRES_STATE names; each test gets a
// schema of its own, dropped after it.
std::unique_ptr<StoreBackend> MakePostgresBackend();

// The backends this test binary runs the shared suites on, defined by the
// binary's store_*_main.cc. `persistent`: databases that outlive a store
// object (the files suite), else the fastest kind (SQLite in memory).
std::vector<BackendParam> TestBackends(bool persistent);

// The URL of the test server (from the variables above); empty when none.
std::string TestPostgresUrl();

inline void PrintTo(const BackendParam& p, std::ostream* os) { *os << p.name; }

inline std::string BackendName(
    const ::testing::TestParamInfo<BackendParam>& info) {
  return info.param.name;
}

}  // namespace det::store

#endif  // DET_TESTS_STORE_STORE_BACKEND_H_
