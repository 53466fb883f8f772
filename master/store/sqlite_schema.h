// The SQLite store's schema and its migrations.
//
// The schema version lives in the database header (PRAGMA user_version).
// Migrations are an ordered list; opening a database applies, in order,
// every migration newer than its version, each inside its own transaction
// together with the version bump, so a crash leaves the database at one
// version or the next, never in between. A database written by a newer
// det-master (version above kSchemaVersion) is refused rather than risk
// writing rows that the newer code would misread.
#ifndef DET_MASTER_STORE_SQLITE_SCHEMA_H_
#define DET_MASTER_STORE_SQLITE_SCHEMA_H_

#include <sqlite3.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace det::store {

// The version this code writes: the number of migrations.
inline constexpr int kSchemaVersion = 4;

// PRAGMA application_id of a det store ("det1"), so that a SQLite file of
// some other program is recognised and left alone.
inline constexpr int32_t kApplicationId = 0x64657431;

// The database's schema version (0 for a new, empty database).
absl::StatusOr<int> SchemaVersion(sqlite3* db);

// Checks, without writing anything, that the database is empty or a det
// store of kSchemaVersion or older. FAILED_PRECONDITION when it is newer
// than this code or belongs to another application; DATA_LOSS when the
// file is not a SQLite database.
absl::Status CheckSchema(sqlite3* db, const std::string& path);

// Brings the database at `db` (named `path` in messages) up to
// kSchemaVersion, after the checks of CheckSchema.
absl::Status MigrateSchema(sqlite3* db, const std::string& path);

}  // namespace det::store

#endif  // DET_MASTER_STORE_SQLITE_SCHEMA_H_
