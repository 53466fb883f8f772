#include "master/store/sqlite_schema.h"

#include "absl/strings/str_cat.h"
#include "master/store/sqlite_statement.h"

namespace det::store {
namespace {

// Migration i (0-based) takes the schema from version i to version i + 1.
// Append new migrations; never edit one that has shipped.
//
// Columns hold what the master queries or orders by; `proto` holds the
// whole serialized det.v1 message, so a field added to a message needs no
// migration.
constexpr const char* kMigrations[] = {
    // 1: initial schema.
    R"sql(
CREATE TABLE meta (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE experiments (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  state INTEGER NOT NULL,
  proto BLOB NOT NULL,
  context BLOB NOT NULL,
  searcher_snapshot BLOB NOT NULL
);
CREATE INDEX experiments_by_state ON experiments (state);

CREATE TABLE trials (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  experiment_id INTEGER NOT NULL REFERENCES experiments (id),
  state INTEGER NOT NULL,
  request_id INTEGER NOT NULL,
  run_id INTEGER NOT NULL,
  steps_completed INTEGER NOT NULL,
  checkpoint_period INTEGER NOT NULL,
  validation_points TEXT NOT NULL,
  proto BLOB NOT NULL
);
CREATE INDEX trials_by_experiment ON trials (experiment_id, id);

CREATE TABLE metrics (
  trial_id INTEGER NOT NULL REFERENCES trials (id),
  grp INTEGER NOT NULL,
  steps_completed INTEGER NOT NULL,
  time_us INTEGER NOT NULL,
  proto BLOB NOT NULL,
  PRIMARY KEY (trial_id, grp, steps_completed)
) WITHOUT ROWID;

CREATE TABLE checkpoints (
  uuid TEXT PRIMARY KEY,
  trial_id INTEGER NOT NULL REFERENCES trials (id),
  steps_completed INTEGER NOT NULL,
  proto BLOB NOT NULL
);
CREATE INDEX checkpoints_by_trial ON checkpoints (trial_id, steps_completed);

CREATE TABLE logs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  trial_id INTEGER NOT NULL REFERENCES trials (id),
  time_us INTEGER NOT NULL,
  source TEXT NOT NULL,
  line TEXT NOT NULL
);
CREATE INDEX logs_by_trial ON logs (trial_id, id);

CREATE TABLE agents (
  id TEXT PRIMARY KEY,
  proto BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE worker_seqs (
  worker_id TEXT PRIMARY KEY,
  seq INTEGER NOT NULL
) WITHOUT ROWID;
)sql",
    // 2: the searcher's events since its last snapshot, replayed on restart
    // (so the whole snapshot need not be rewritten on every event).
    R"sql(
CREATE TABLE searcher_events (
  experiment_id INTEGER NOT NULL REFERENCES experiments (id),
  seq INTEGER NOT NULL,
  event TEXT NOT NULL,
  PRIMARY KEY (experiment_id, seq)
) WITHOUT ROWID;
)sql",
    // 3: the searcher's snapshot in a row of its own. An UPDATE rewrites
    // the whole row, so in the experiment's row (experiments.searcher_snapshot,
    // still read when this table has no row for the experiment) it made
    // every per-event update of the experiment cost in proportion to the
    // trials.
    R"sql(
CREATE TABLE searcher_snapshots (
  experiment_id INTEGER PRIMARY KEY REFERENCES experiments (id),
  snapshot BLOB NOT NULL
);
)sql",
    // 4: a checkpoint's garbage-collection state (v1::CheckpointState:
    // 1 ACTIVE, 2 DELETING, 3 DELETED); every earlier checkpoint is ACTIVE.
    R"sql(
ALTER TABLE checkpoints ADD COLUMN state INTEGER NOT NULL DEFAULT 1;
CREATE INDEX checkpoints_by_state ON checkpoints (state, trial_id,
                                                  steps_completed);
)sql",
};

static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == kSchemaVersion,
              "kSchemaVersion must equal the number of migrations");

// Runs constant SQL (schema text and pragmas). Such text carries no values,
// so there is nothing to bind; everything with values goes through
// StatementCache.
absl::Status Exec(sqlite3* db, const std::string& sql,
                  const std::string& what) {
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  if (rc == SQLITE_OK) return absl::OkStatus();
  absl::Status s = SqliteError(db, rc, what);
  sqlite3_free(err);
  return s;
}

absl::StatusOr<int64_t> PragmaInt(sqlite3* db, const char* pragma,
                                  const std::string& what) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, pragma, -1, &stmt, nullptr);
  if (rc != SQLITE_OK) return SqliteError(db, rc, what);
  rc = sqlite3_step(stmt);
  int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(stmt, 0) : 0;
  sqlite3_finalize(stmt);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqliteError(db, rc, what);
  return v;
}

}  // namespace

absl::StatusOr<int> SchemaVersion(sqlite3* db) {
  absl::StatusOr<int64_t> v =
      PragmaInt(db, "PRAGMA user_version", "reading the schema version");
  if (!v.ok()) return v.status();
  return static_cast<int>(*v);
}

absl::Status CheckSchema(sqlite3* db, const std::string& path) {
  absl::StatusOr<int> version = SchemaVersion(db);
  if (!version.ok()) {
    return absl::Status(version.status().code(),
                        absl::StrCat("store database '", path,
                                     "': ", version.status().message()));
  }
  if (*version > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "store database '", path, "' has schema version ", *version,
        ", newer than this det-master supports (", kSchemaVersion,
        "); run the det-master that wrote it, or a newer one"));
  }
  absl::StatusOr<int64_t> app_id =
      PragmaInt(db, "PRAGMA application_id", "reading the application id");
  if (!app_id.ok()) return app_id.status();
  if (*app_id != 0 && *app_id != kApplicationId) {
    return absl::FailedPreconditionError(
        absl::StrCat("'", path, "' is a SQLite database of another program ",
                     "(application_id ", *app_id,
                     "), not a det store; give det-master another file"));
  }
  return absl::OkStatus();
}

absl::Status MigrateSchema(sqlite3* db, const std::string& path) {
  if (absl::Status s = CheckSchema(db, path); !s.ok()) return s;
  absl::StatusOr<int> version = SchemaVersion(db);
  if (!version.ok()) return version.status();
  for (int v = *version; v < kSchemaVersion; ++v) {
    std::string what =
        absl::StrCat("migrating store '", path, "' to schema version ", v + 1);
    if (absl::Status s = Exec(db, "BEGIN IMMEDIATE", what); !s.ok()) return s;
    // PRAGMAs take no bound parameters; the numbers are constants of this
    // file, not input.
    absl::Status s =
        Exec(db,
             absl::StrCat(kMigrations[v], "PRAGMA user_version = ", v + 1,
                          ";\nPRAGMA application_id = ", kApplicationId, ";"),
             what);
    if (s.ok()) s = Exec(db, "COMMIT", what);
    if (!s.ok()) {
      if (sqlite3_get_autocommit(db) == 0)
        sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace det::store
