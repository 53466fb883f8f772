#include "master/store/sqlite_store.h"

#include <random>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "master/store/record_codec.h"
#include "master/store/sqlite_schema.h"

namespace det::store {
namespace {

// Every statement the store runs. Values are always bound ("?"), never
// spliced into the text.
constexpr const char kBegin[] = "BEGIN IMMEDIATE";
constexpr const char kCommit[] = "COMMIT";
constexpr const char kRollback[] = "ROLLBACK";
// One name serves every nesting level: SQLite resolves a savepoint name to
// the most recent savepoint with that name.
constexpr const char kSavepoint[] = "SAVEPOINT det_nested";
constexpr const char kRelease[] = "RELEASE det_nested";
constexpr const char kRollbackTo[] = "ROLLBACK TO det_nested";

constexpr const char kInsertMeta[] =
    "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)";
constexpr const char kSelectMeta[] = "SELECT value FROM meta WHERE key = ?";

constexpr const char kInsertExperiment[] =
    "INSERT INTO experiments (state, proto, context, searcher_snapshot) "
    "VALUES (?, ?, ?, ?)";
constexpr const char kUpdateExperiment[] =
    "UPDATE experiments SET state = ?, proto = ? WHERE id = ?";
constexpr const char kUpdateSnapshot[] =
    "INSERT INTO searcher_snapshots (snapshot, experiment_id) "
    "SELECT ?, id FROM experiments WHERE id = ? "
    "ON CONFLICT (experiment_id) DO UPDATE SET snapshot = excluded.snapshot";
constexpr const char kInsertSearcherEvent[] =
    "INSERT INTO searcher_events (experiment_id, seq, event) VALUES (?, "
    "(SELECT IFNULL(MAX(seq), 0) + 1 FROM searcher_events "
    "WHERE experiment_id = ?), ?)";
constexpr const char kSelectSearcherEvents[] =
    "SELECT event FROM searcher_events WHERE experiment_id = ? ORDER BY seq";
constexpr const char kDeleteSearcherEvents[] =
    "DELETE FROM searcher_events WHERE experiment_id = ?";
constexpr const char kSelectExperiment[] =
    "SELECT id, proto, context, IFNULL((SELECT snapshot FROM "
    "searcher_snapshots WHERE experiment_id = experiments.id), "
    "searcher_snapshot) FROM experiments "
    "WHERE id = ?";
constexpr const char kListExperiments[] =
    "SELECT id, proto FROM experiments ORDER BY id";
constexpr const char kListNonTerminal[] =
    "SELECT id, proto, context, IFNULL((SELECT snapshot FROM "
    "searcher_snapshots WHERE experiment_id = experiments.id), "
    "searcher_snapshot) FROM experiments "
    "WHERE state NOT IN (?, ?, ?) ORDER BY id";

constexpr const char kInsertTrial[] =
    "INSERT INTO trials (experiment_id, state, request_id, run_id, "
    "steps_completed, checkpoint_period, validation_points, proto) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)";
constexpr const char kUpdateTrial[] =
    "UPDATE trials SET experiment_id = ?, state = ?, request_id = ?, "
    "run_id = ?, steps_completed = ?, checkpoint_period = ?, "
    "validation_points = ?, proto = ? WHERE id = ?";
constexpr const char kSelectTrial[] =
    "SELECT id, request_id, run_id, checkpoint_period, validation_points, "
    "proto FROM trials WHERE id = ?";
constexpr const char kListTrials[] =
    "SELECT id, request_id, run_id, checkpoint_period, validation_points, "
    "proto FROM trials WHERE experiment_id = ? ORDER BY id";

constexpr const char kInsertMetric[] =
    "INSERT OR IGNORE INTO metrics (trial_id, grp, steps_completed, time_us, "
    "proto) VALUES (?, ?, ?, ?, ?)";
constexpr const char kSelectMetricsAll[] =
    "SELECT proto FROM metrics WHERE trial_id = ? "
    "ORDER BY grp, steps_completed";
constexpr const char kSelectMetricsGroup[] =
    "SELECT proto FROM metrics WHERE trial_id = ? AND grp = ? "
    "ORDER BY steps_completed";

constexpr const char kInsertCheckpoint[] =
    "INSERT OR IGNORE INTO checkpoints (uuid, trial_id, steps_completed, "
    "proto) VALUES (?, ?, ?, ?)";
constexpr const char kListCheckpoints[] =
    "SELECT proto, state FROM checkpoints WHERE trial_id = ? AND state = 1 "
    "ORDER BY steps_completed, uuid";
constexpr const char kListCheckpointsInState[] =
    "SELECT proto, state FROM checkpoints WHERE state = ? "
    "ORDER BY trial_id, steps_completed, uuid";
constexpr const char kCheckpointState[] =
    "SELECT state FROM checkpoints WHERE uuid = ?";
constexpr const char kGetCheckpoint[] =
    "SELECT proto, state FROM checkpoints WHERE uuid = ?";
constexpr const char kSetCheckpointState[] =
    "UPDATE checkpoints SET state = ? WHERE uuid = ?";
constexpr const char kDeleteCheckpoint[] =
    "DELETE FROM checkpoints WHERE uuid = ?";
constexpr const char kListExperimentCheckpoints[] =
    "SELECT c.proto, c.state FROM checkpoints c JOIN trials t "
    "ON c.trial_id = t.id WHERE t.experiment_id = ? "
    "ORDER BY c.trial_id, c.steps_completed, c.uuid";
// Children first; each takes the experiment id once.
constexpr const char* kDeleteExperiment[] = {
    "DELETE FROM metrics WHERE trial_id IN "
    "(SELECT id FROM trials WHERE experiment_id = ?)",
    "DELETE FROM checkpoints WHERE trial_id IN "
    "(SELECT id FROM trials WHERE experiment_id = ?)",
    "DELETE FROM logs WHERE trial_id IN "
    "(SELECT id FROM trials WHERE experiment_id = ?)",
    "DELETE FROM trials WHERE experiment_id = ?",
    "DELETE FROM searcher_events WHERE experiment_id = ?",
    "DELETE FROM searcher_snapshots WHERE experiment_id = ?",
    "DELETE FROM experiments WHERE id = ?",
};

constexpr const char kInsertLog[] =
    "INSERT INTO logs (trial_id, time_us, source, line) VALUES (?, ?, ?, ?)";
constexpr const char kSelectLogs[] =
    "SELECT id, time_us, source, line FROM logs "
    "WHERE trial_id = ? AND id > ? ORDER BY id LIMIT ?";

constexpr const char kUpsertAgent[] =
    "INSERT INTO agents (id, proto) VALUES (?, ?) "
    "ON CONFLICT (id) DO UPDATE SET proto = excluded.proto";
constexpr const char kListAgents[] = "SELECT proto FROM agents ORDER BY id";

constexpr const char kUpsertWorkerSeq[] =
    "INSERT INTO worker_seqs (worker_id, seq) VALUES (?, ?) "
    "ON CONFLICT (worker_id) DO UPDATE SET seq = excluded.seq";
constexpr const char kSelectWorkerSeq[] =
    "SELECT seq FROM worker_seqs WHERE worker_id = ?";

constexpr const char kClusterIdKey[] = "cluster_id";
// Long enough to ride out another process (a backup, the sqlite3 shell)
// holding the write lock briefly, short enough that a stuck one surfaces
// as an error instead of a hung master.
constexpr int kBusyTimeoutMs = 5000;

// A foreign-key failure means the parent row is missing: say which.
absl::Status NameMissingParent(absl::Status s, absl::string_view parent) {
  if (!absl::IsNotFound(s)) return s;
  return absl::NotFoundError(absl::StrCat(parent, " not found"));
}

// Steps through every row of `st`, calling `on_row` for each; stops at the
// first error from either.
absl::Status ForEachRow(Statement& st, absl::string_view what,
                        absl::FunctionRef<absl::Status()> on_row) {
  while (true) {
    absl::StatusOr<bool> row = st.Step(what);
    if (!row.ok()) return row.status();
    if (!*row) return absl::OkStatus();
    if (absl::Status s = on_row(); !s.ok()) return s;
  }
}

}  // namespace

// Holds the connection for one call, unless this thread already holds it
// for its transaction (then the call joins that transaction).
absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(
    const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError(
        "store path is empty; give a database file (or \":memory:\")");
  }
  sqlite3* db = nullptr;
  // NOMUTEX: the store serialises use of its one connection itself.
  int rc = sqlite3_open_v2(
      path.c_str(), &db,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  if (rc != SQLITE_OK) {
    absl::Status s = SqliteError(
        db, rc, absl::StrCat("opening store database '", path, "'"));
    sqlite3_close(db);
    return s;
  }
  std::unique_ptr<SqliteStore> store(new SqliteStore(db, path));
  if (absl::Status s = store->Init(); !s.ok()) return s;
  return store;
}

absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(
    const std::string& path) {
  absl::StatusOr<std::unique_ptr<SqliteStore>> store = SqliteStore::Open(path);
  if (!store.ok()) return store.status();
  return std::unique_ptr<Store>(std::move(*store));
}

SqliteStore::SqliteStore(sqlite3* db, std::string path)
    : db_(db), path_(std::move(path)) {}

SqliteStore::~SqliteStore() {
  statements_.reset();  // statements must be finalized before closing
  sqlite3_close(db_);
}

absl::Status SqliteStore::ExecConstant(const char* sql, const char* what) {
  int rc = sqlite3_exec(db_, sql, nullptr, nullptr, nullptr);
  if (rc == SQLITE_OK) return absl::OkStatus();
  return SqliteError(db_, rc,
                     absl::StrCat(what, " on store database '", path_, "'"));
}

// Runs before Open hands the store out: no other thread can use it yet.
absl::Status SqliteStore::Init() {
  sqlite3_extended_result_codes(db_, 1);
  sqlite3_busy_timeout(db_, kBusyTimeoutMs);
  // Before any pragma that writes: a file that is not ours stays untouched.
  if (absl::Status s = CheckSchema(db_, path_); !s.ok()) return s;

  // journal_mode answers with the mode now in force: a file system without
  // shared memory (some network mounts) keeps the old one.
  sqlite3_stmt* stmt = nullptr;
  int rc =
      sqlite3_prepare_v2(db_, "PRAGMA journal_mode = WAL", -1, &stmt, nullptr);
  std::string mode;
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW) {
      const unsigned char* text = sqlite3_column_text(stmt, 0);
      mode = text != nullptr ? reinterpret_cast<const char*>(text) : "";
      rc = SQLITE_OK;
    }
  }
  sqlite3_finalize(stmt);
  if (rc != SQLITE_OK) {
    return SqliteError(db_, rc,
                       absl::StrCat("opening store database '", path_, "'"));
  }
  if (mode != "wal" && mode != "memory") {
    return absl::FailedPreconditionError(absl::StrCat(
        "store database '", path_, "' cannot use WAL mode (SQLite kept '", mode,
        "'); put it on a local file system"));
  }
  if (absl::Status s =
          ExecConstant("PRAGMA synchronous = NORMAL", "setting synchronous");
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          ExecConstant("PRAGMA foreign_keys = ON", "enabling foreign keys");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = MigrateSchema(db_, path_); !s.ok()) return s;

  statements_ = std::make_unique<StatementCache>(db_);
  // Insert-if-absent then read back: the id made by the first master that
  // opened this file wins and stays.
  {
    absl::StatusOr<Statement> st = statements_->Get(kInsertMeta);
    if (!st.ok()) return st.status();
    st->BindText(kClusterIdKey).BindText(NewUuid());
    if (absl::Status s = st->Run("storing the cluster id"); !s.ok()) return s;
  }
  absl::StatusOr<Statement> st = statements_->Get(kSelectMeta);
  if (!st.ok()) return st.status();
  st->BindText(kClusterIdKey);
  absl::StatusOr<bool> row = st->Step("reading the cluster id");
  if (!row.ok()) return row.status();
  if (!*row) return absl::InternalError("store: the cluster id is missing");
  cluster_id_ = std::string(st->ColumnText(0));
  return absl::OkStatus();
}

absl::Status SqliteStore::RunCached(const char* sql) {
  absl::StatusOr<Statement> st = statements_->Get(sql);
  if (!st.ok()) return st.status();
  return st->Run(absl::StrCat("\"", sql, "\" on store '", path_, "'"));
}

absl::Status SqliteStore::Begin() { return RunCached(kBegin); }

absl::Status SqliteStore::Commit() { return RunCached(kCommit); }

void SqliteStore::Rollback() {
  if (sqlite3_get_autocommit(db_) == 0) RunCached(kRollback).IgnoreError();
}

absl::Status SqliteStore::Savepoint() { return RunCached(kSavepoint); }

absl::Status SqliteStore::ReleaseSavepoint() { return RunCached(kRelease); }

void SqliteStore::RollbackToSavepoint() {
  // SQLite may already have rolled the whole transaction back (a full
  // disk, for one); then there is no savepoint left to undo.
  if (sqlite3_get_autocommit(db_) == 0) {
    RunCached(kRollbackTo).IgnoreError();
    RunCached(kRelease).IgnoreError();
  }
}

// ---- Experiments ----

absl::StatusOr<ExperimentRecord> SqliteStore::ReadExperimentRow(
    const Statement& st) {
  ExperimentRecord r;
  int64_t id = st.ColumnInt(0);
  if (absl::Status s = ParseRecord(st.ColumnBlob(1), &r.experiment,
                                   absl::StrCat("experiment ", id));
      !s.ok()) {
    return s;
  }
  // The row id is the truth: AddExperiment stores the message before the
  // id exists.
  r.experiment.set_id(id);
  r.context = std::string(st.ColumnBlob(2));
  r.searcher_snapshot = std::string(st.ColumnBlob(3));
  return r;
}

absl::StatusOr<int64_t> SqliteStore::AddExperiment(const ExperimentRecord& e) {
  absl::StatusOr<std::string> blob =
      SerializeRecord(e.experiment, "adding an experiment");
  if (!blob.ok()) return blob.status();
  int64_t id = 0;
  absl::Status s = gate_.Write([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kInsertExperiment);
    if (!st.ok()) return st.status();
    st->BindInt(e.experiment.state())
        .BindBlob(*blob)
        .BindBlob(e.context)
        .BindBlob(e.searcher_snapshot);
    if (absl::Status s = st->Run("adding an experiment"); !s.ok()) return s;
    id = sqlite3_last_insert_rowid(db_);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return id;
}

absl::Status SqliteStore::UpdateExperiment(const v1::Experiment& e) {
  std::string what = absl::StrCat("updating experiment ", e.id());
  absl::StatusOr<std::string> blob = SerializeRecord(e, what);
  if (!blob.ok()) return blob.status();
  return gate_.Write([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kUpdateExperiment);
    if (!st.ok()) return st.status();
    st->BindInt(e.state()).BindBlob(*blob).BindInt(e.id());
    if (absl::Status s = st->Run(what); !s.ok()) return s;
    if (st->Changes() == 0) {
      return absl::NotFoundError(
          absl::StrCat("experiment ", e.id(), " not found"));
    }
    return absl::OkStatus();
  });
}

absl::Status SqliteStore::SaveSearcherSnapshot(int64_t experiment_id,
                                               const std::string& snapshot) {
  return gate_.Write([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kUpdateSnapshot);
    if (!st.ok()) return st.status();
    st->BindBlob(snapshot).BindInt(experiment_id);
    if (absl::Status s = st->Run(absl::StrCat(
            "saving the searcher snapshot of experiment ", experiment_id));
        !s.ok()) {
      return s;
    }
    if (st->Changes() == 0) {
      return absl::NotFoundError(
          absl::StrCat("experiment ", experiment_id, " not found"));
    }
    absl::StatusOr<Statement> del = statements_->Get(kDeleteSearcherEvents);
    if (!del.ok()) return del.status();
    del->BindInt(experiment_id);
    return del->Run(absl::StrCat("clearing the searcher journal of experiment ",
                                 experiment_id));
  });
}

absl::Status SqliteStore::AppendSearcherEvent(int64_t experiment_id,
                                              const std::string& event) {
  return gate_.Write([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kInsertSearcherEvent);
    if (!st.ok()) return st.status();
    st->BindInt(experiment_id).BindInt(experiment_id).BindText(event);
    return st->Run(absl::StrCat("journaling a searcher event of experiment ",
                                experiment_id));
  });
}

absl::StatusOr<std::vector<std::string>> SqliteStore::ListSearcherEvents(
    int64_t experiment_id) {
  std::vector<std::string> out;
  absl::Status s = gate_.Read([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kSelectSearcherEvents);
    if (!st.ok()) return st.status();
    st->BindInt(experiment_id);
    std::string what = absl::StrCat(
        "reading the searcher journal of experiment ", experiment_id);
    return ForEachRow(*st, what, [&] {
      out.emplace_back(st->ColumnText(0));
      return absl::OkStatus();
    });
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<ExperimentRecord> SqliteStore::GetExperiment(int64_t id) {
  ExperimentRecord record;
  absl::Status s = gate_.Read([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kSelectExperiment);
    if (!st.ok()) return st.status();
    st->BindInt(id);
    absl::StatusOr<bool> row =
        st->Step(absl::StrCat("reading experiment ", id));
    if (!row.ok()) return row.status();
    if (!*row)
      return absl::NotFoundError(absl::StrCat("experiment ", id, " not found"));
    absl::StatusOr<ExperimentRecord> r = ReadExperimentRow(*st);
    if (!r.ok()) return r.status();
    record = std::move(*r);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return record;
}

absl::StatusOr<std::vector<v1::Experiment>> SqliteStore::ListExperiments() {
  std::vector<v1::Experiment> out;
  absl::Status s = gate_.Read([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kListExperiments);
    if (!st.ok()) return st.status();
    while (true) {
      absl::StatusOr<bool> row = st->Step("listing experiments");
      if (!row.ok()) return row.status();
      if (!*row) return absl::OkStatus();
      int64_t id = st->ColumnInt(0);
      v1::Experiment& e = out.emplace_back();
      if (absl::Status s = ParseRecord(st->ColumnBlob(1), &e,
                                       absl::StrCat("experiment ", id));
          !s.ok()) {
        return s;
      }
      e.set_id(id);
    }
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<ExperimentRecord>>
SqliteStore::ListNonTerminalExperiments() {
  std::vector<ExperimentRecord> out;
  absl::Status s = gate_.Read([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kListNonTerminal);
    if (!st.ok()) return st.status();
    st->BindInt(v1::STATE_COMPLETED)
        .BindInt(v1::STATE_CANCELED)
        .BindInt(v1::STATE_ERROR);
    while (true) {
      absl::StatusOr<bool> row = st->Step("listing unfinished experiments");
      if (!row.ok()) return row.status();
      if (!*row) return absl::OkStatus();
      absl::StatusOr<ExperimentRecord> r = ReadExperimentRow(*st);
      if (!r.ok()) return r.status();
      out.push_back(std::move(*r));
    }
  });
  if (!s.ok()) return s;
  return out;
}

// ---- Trials ----

absl::StatusOr<TrialRecord> SqliteStore::ReadTrialRow(const Statement& st) {
  TrialRecord r;
  int64_t id = st.ColumnInt(0);
  r.request_id = st.ColumnInt(1);
  r.run_id = static_cast<int32_t>(st.ColumnInt(2));
  r.checkpoint_period = st.ColumnInt(3);
  absl::StatusOr<std::vector<int64_t>> points =
      DecodePoints(st.ColumnText(4), id);
  if (!points.ok()) return points.status();
  r.validation_points = std::move(*points);
  if (absl::Status s =
          ParseRecord(st.ColumnBlob(5), &r.trial, absl::StrCat("trial ", id));
      !s.ok()) {
    return s;
  }
  r.trial.set_id(id);  // AddTrial stores the message before the id exists
  return r;
}

absl::StatusOr<int64_t> SqliteStore::AddTrial(const TrialRecord& t) {
  std::string what =
      absl::StrCat("adding a trial to experiment ", t.trial.experiment_id());
  absl::StatusOr<std::string> blob = SerializeRecord(t.trial, what);
  if (!blob.ok()) return blob.status();
  int64_t id = 0;
  absl::Status s = gate_.Write([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kInsertTrial);
    if (!st.ok()) return st.status();
    st->BindInt(t.trial.experiment_id())
        .BindInt(t.trial.state())
        .BindInt(t.request_id)
        .BindInt(t.run_id)
        .BindInt(t.trial.steps_completed())
        .BindInt(t.checkpoint_period)
        .BindText(EncodePoints(t.validation_points))
        .BindBlob(*blob);
    if (absl::Status s = st->Run(what); !s.ok()) {
      return NameMissingParent(
          s, absl::StrCat("experiment ", t.trial.experiment_id()));
    }
    id = sqlite3_last_insert_rowid(db_);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return id;
}

absl::Status SqliteStore::UpdateTrial(const TrialRecord& t) {
  std::string what = absl::StrCat("updating trial ", t.trial.id());
  absl::StatusOr<std::string> blob = SerializeRecord(t.trial, what);
  if (!blob.ok()) return blob.status();
  return gate_.Write([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kUpdateTrial);
    if (!st.ok()) return st.status();
    st->BindInt(t.trial.experiment_id())
        .BindInt(t.trial.state())
        .BindInt(t.request_id)
        .BindInt(t.run_id)
        .BindInt(t.trial.steps_completed())
        .BindInt(t.checkpoint_period)
        .BindText(EncodePoints(t.validation_points))
        .BindBlob(*blob)
        .BindInt(t.trial.id());
    if (absl::Status s = st->Run(what); !s.ok()) {
      return NameMissingParent(
          s, absl::StrCat("experiment ", t.trial.experiment_id()));
    }
    if (st->Changes() == 0) {
      return absl::NotFoundError(
          absl::StrCat("trial ", t.trial.id(), " not found"));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<TrialRecord> SqliteStore::GetTrial(int64_t id) {
  TrialRecord record;
  absl::Status s = gate_.Read([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kSelectTrial);
    if (!st.ok()) return st.status();
    st->BindInt(id);
    absl::StatusOr<bool> row = st->Step(absl::StrCat("reading trial ", id));
    if (!row.ok()) return row.status();
    if (!*row)
      return absl::NotFoundError(absl::StrCat("trial ", id, " not found"));
    absl::StatusOr<TrialRecord> r = ReadTrialRow(*st);
    if (!r.ok()) return r.status();
    record = std::move(*r);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return record;
}

absl::StatusOr<std::vector<TrialRecord>> SqliteStore::ListTrials(
    int64_t experiment_id) {
  std::vector<TrialRecord> out;
  absl::Status s = gate_.Read([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kListTrials);
    if (!st.ok()) return st.status();
    st->BindInt(experiment_id);
    while (true) {
      absl::StatusOr<bool> row = st->Step(
          absl::StrCat("listing the trials of experiment ", experiment_id));
      if (!row.ok()) return row.status();
      if (!*row) return absl::OkStatus();
      absl::StatusOr<TrialRecord> r = ReadTrialRow(*st);
      if (!r.ok()) return r.status();
      out.push_back(std::move(*r));
    }
  });
  if (!s.ok()) return s;
  return out;
}

// ---- Metrics ----

absl::StatusOr<bool> SqliteStore::AddMetricReport(const v1::MetricReport& r) {
  if (absl::Status s = CheckMetricReportKey(r); !s.ok()) return s;
  std::string what =
      absl::StrCat("adding a metric report of trial ", r.trial_id());
  absl::StatusOr<std::string> blob = SerializeRecord(r, what);
  if (!blob.ok()) return blob.status();
  bool stored = false;
  absl::Status s = gate_.Write([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kInsertMetric);
    if (!st.ok()) return st.status();
    st->BindInt(r.trial_id())
        .BindInt(r.group())
        .BindInt(r.steps_completed())
        .BindInt(r.time_us())
        .BindBlob(*blob);
    if (absl::Status s = st->Run(what); !s.ok()) {
      return NameMissingParent(s, absl::StrCat("trial ", r.trial_id()));
    }
    stored = st->Changes() == 1;
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return stored;
}

absl::StatusOr<std::vector<v1::MetricReport>> SqliteStore::GetMetricReports(
    int64_t trial_id, v1::MetricGroup group) {
  if (!v1::MetricGroup_IsValid(group)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown metric group ", static_cast<int>(group)));
  }
  std::vector<v1::MetricReport> out;
  absl::Status s = gate_.Read([&]() -> absl::Status {
    bool all = group == v1::METRIC_GROUP_UNSPECIFIED;
    absl::StatusOr<Statement> st =
        statements_->Get(all ? kSelectMetricsAll : kSelectMetricsGroup);
    if (!st.ok()) return st.status();
    st->BindInt(trial_id);
    if (!all) st->BindInt(group);
    std::string what = absl::StrCat("reading the metrics of trial ", trial_id);
    return ForEachRow(*st, what, [&] {
      return ParseRecord(st->ColumnBlob(0), &out.emplace_back(),
                         absl::StrCat("a metric report of trial ", trial_id));
    });
  });
  if (!s.ok()) return s;
  return out;
}

// ---- Checkpoints ----

absl::Status SqliteStore::AddCheckpoint(const v1::Checkpoint& c) {
  if (c.uuid().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint of trial ", c.trial_id(), " has no uuid"));
  }
  std::string what =
      absl::StrCat("adding checkpoint ", c.uuid(), " of trial ", c.trial_id());
  absl::StatusOr<std::string> blob = SerializeRecord(c, what);
  if (!blob.ok()) return blob.status();
  return gate_.Write([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kInsertCheckpoint);
    if (!st.ok()) return st.status();
    st->BindText(c.uuid())
        .BindInt(c.trial_id())
        .BindInt(c.steps_completed())
        .BindBlob(*blob);
    return NameMissingParent(st->Run(what),
                             absl::StrCat("trial ", c.trial_id()));
  });
}

absl::StatusOr<std::vector<v1::Checkpoint>> SqliteStore::ListCheckpoints(
    int64_t trial_id) {
  std::vector<v1::Checkpoint> out;
  absl::Status s = gate_.Read([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kListCheckpoints);
    if (!st.ok()) return st.status();
    st->BindInt(trial_id);
    std::string what =
        absl::StrCat("listing the checkpoints of trial ", trial_id);
    return ForEachRow(*st, what, [&] {
      v1::Checkpoint& c = out.emplace_back();
      DET_RETURN_IF_ERROR(
          ParseRecord(st->ColumnBlob(0), &c,
                      absl::StrCat("a checkpoint of trial ", trial_id)));
      c.set_state(static_cast<v1::CheckpointState>(st->ColumnInt(1)));
      return absl::OkStatus();
    });
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<v1::Checkpoint> SqliteStore::GetCheckpoint(
    const std::string& uuid) {
  v1::Checkpoint c;
  absl::Status s = gate_.Read([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kGetCheckpoint);
    if (!st.ok()) return st.status();
    st->BindText(uuid);
    std::string what = absl::StrCat("reading checkpoint ", uuid);
    absl::StatusOr<bool> row = st->Step(what);
    if (!row.ok()) return row.status();
    if (!*row) return absl::NotFoundError(absl::StrCat("no checkpoint ", uuid));
    DET_RETURN_IF_ERROR(
        ParseRecord(st->ColumnBlob(0), &c, absl::StrCat("checkpoint ", uuid)));
    c.set_state(static_cast<v1::CheckpointState>(st->ColumnInt(1)));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return c;
}

absl::Status SqliteStore::SetCheckpointState(const std::string& uuid,
                                             v1::CheckpointState state) {
  std::string what = absl::StrCat("setting the state of checkpoint ", uuid);
  return gate_.Write([&]() -> absl::Status {
    absl::StatusOr<Statement> get = statements_->Get(kCheckpointState);
    if (!get.ok()) return get.status();
    get->BindText(uuid);
    absl::StatusOr<bool> row = get->Step(what);
    if (!row.ok()) return row.status();
    if (!*row) {
      return absl::NotFoundError(absl::StrCat(what, ": no checkpoint ", uuid));
    }
    auto from = static_cast<v1::CheckpointState>(get->ColumnInt(0));
    bool noop = false;
    DET_RETURN_IF_ERROR(CheckCheckpointTransition(uuid, from, state, &noop));
    if (noop) return absl::OkStatus();
    absl::StatusOr<Statement> set = statements_->Get(kSetCheckpointState);
    if (!set.ok()) return set.status();
    set->BindInt(state).BindText(uuid);
    return set->Run(what);
  });
}

absl::StatusOr<std::vector<v1::Checkpoint>> SqliteStore::ListCheckpointsInState(
    v1::CheckpointState state) {
  std::vector<v1::Checkpoint> out;
  absl::Status s = gate_.Read([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kListCheckpointsInState);
    if (!st.ok()) return st.status();
    st->BindInt(state);
    std::string what = absl::StrCat("listing the checkpoints in state ",
                                    v1::CheckpointState_Name(state));
    return ForEachRow(*st, what, [&] {
      v1::Checkpoint& c = out.emplace_back();
      DET_RETURN_IF_ERROR(ParseRecord(st->ColumnBlob(0), &c, "a checkpoint"));
      c.set_state(static_cast<v1::CheckpointState>(st->ColumnInt(1)));
      return absl::OkStatus();
    });
  });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<v1::Checkpoint>>
SqliteStore::ListExperimentCheckpoints(int64_t experiment_id) {
  std::vector<v1::Checkpoint> out;
  absl::Status s = gate_.Read([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kListExperimentCheckpoints);
    if (!st.ok()) return st.status();
    st->BindInt(experiment_id);
    std::string what =
        absl::StrCat("listing the checkpoints of experiment ", experiment_id);
    return ForEachRow(*st, what, [&] {
      v1::Checkpoint& c = out.emplace_back();
      DET_RETURN_IF_ERROR(ParseRecord(st->ColumnBlob(0), &c, "a checkpoint"));
      c.set_state(static_cast<v1::CheckpointState>(st->ColumnInt(1)));
      return absl::OkStatus();
    });
  });
  if (!s.ok()) return s;
  return out;
}

absl::Status SqliteStore::DeleteExperiment(int64_t id) {
  DET_RETURN_IF_ERROR(GetExperiment(id).status());
  return RunInTransaction([&]() -> absl::Status {
    return gate_.Write([&]() -> absl::Status {
      for (const char* sql : kDeleteExperiment) {
        absl::StatusOr<Statement> st = statements_->Get(sql);
        if (!st.ok()) return st.status();
        st->BindInt(id);
        DET_RETURN_IF_ERROR(st->Run(absl::StrCat("deleting experiment ", id)));
      }
      return absl::OkStatus();
    });
  });
}

absl::Status SqliteStore::DeleteCheckpoint(const std::string& uuid) {
  return gate_.Write([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kDeleteCheckpoint);
    if (!st.ok()) return st.status();
    st->BindText(uuid);
    return st->Run(absl::StrCat("deleting checkpoint ", uuid));
  });
}

// ---- Logs ----

absl::Status SqliteStore::AddLogs(int64_t trial_id,
                                  const std::vector<v1::LogLine>& lines) {
  if (lines.empty()) return absl::OkStatus();
  return RunInTransaction([&]() -> absl::Status {
    std::string what = absl::StrCat("adding log lines of trial ", trial_id);
    for (const v1::LogLine& line : lines) {
      absl::StatusOr<Statement> st = statements_->Get(kInsertLog);
      if (!st.ok()) return st.status();
      st->BindInt(trial_id)
          .BindInt(line.time_us())
          .BindText(line.source())
          .BindText(line.line());
      if (absl::Status s = st->Run(what); !s.ok()) {
        return NameMissingParent(s, absl::StrCat("trial ", trial_id));
      }
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<v1::TrialLogLine>> SqliteStore::GetLogs(
    int64_t trial_id, int64_t after_id, int limit) {
  if (limit <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("log line limit must be positive, got ", limit));
  }
  std::vector<v1::TrialLogLine> out;
  absl::Status s = gate_.Read([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kSelectLogs);
    if (!st.ok()) return st.status();
    st->BindInt(trial_id).BindInt(after_id).BindInt(limit);
    std::string what = absl::StrCat("reading the logs of trial ", trial_id);
    return ForEachRow(*st, what, [&] {
      v1::TrialLogLine& l = out.emplace_back();
      l.set_id(st->ColumnInt(0));
      l.set_trial_id(trial_id);
      l.set_time_us(st->ColumnInt(1));
      l.set_source(std::string(st->ColumnText(2)));
      l.set_line(std::string(st->ColumnText(3)));
      return absl::OkStatus();
    });
  });
  if (!s.ok()) return s;
  return out;
}

// ---- Agents and worker sequence numbers ----

absl::Status SqliteStore::UpsertAgent(const v1::Agent& a) {
  if (a.id().empty()) {
    return absl::InvalidArgumentError("agent has an empty id");
  }
  std::string what = absl::StrCat("saving agent ", a.id());
  absl::StatusOr<std::string> blob = SerializeRecord(a, what);
  if (!blob.ok()) return blob.status();
  return gate_.Write([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kUpsertAgent);
    if (!st.ok()) return st.status();
    st->BindText(a.id()).BindBlob(*blob);
    return st->Run(what);
  });
}

absl::StatusOr<std::vector<v1::Agent>> SqliteStore::ListAgents() {
  std::vector<v1::Agent> out;
  absl::Status s = gate_.Read([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kListAgents);
    if (!st.ok()) return st.status();
    while (true) {
      absl::StatusOr<bool> row = st->Step("listing agents");
      if (!row.ok()) return row.status();
      if (!*row) return absl::OkStatus();
      if (absl::Status s =
              ParseRecord(st->ColumnBlob(0), &out.emplace_back(), "an agent");
          !s.ok()) {
        return s;
      }
    }
  });
  if (!s.ok()) return s;
  return out;
}

absl::Status SqliteStore::SetWorkerSeq(const std::string& worker_id,
                                       int64_t seq) {
  if (worker_id.empty()) {
    return absl::InvalidArgumentError("worker id is empty");
  }
  return gate_.Write([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kUpsertWorkerSeq);
    if (!st.ok()) return st.status();
    st->BindText(worker_id).BindInt(seq);
    return st->Run(
        absl::StrCat("saving the sequence number of worker ", worker_id));
  });
}

absl::StatusOr<int64_t> SqliteStore::GetWorkerSeq(
    const std::string& worker_id) {
  int64_t seq = 0;
  absl::Status s = gate_.Read([&]() -> absl::Status {
    absl::StatusOr<Statement> st = statements_->Get(kSelectWorkerSeq);
    if (!st.ok()) return st.status();
    st->BindText(worker_id);
    absl::StatusOr<bool> row = st->Step(
        absl::StrCat("reading the sequence number of worker ", worker_id));
    if (!row.ok()) return row.status();
    if (*row) seq = st->ColumnInt(0);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return seq;
}

absl::StatusOr<std::string> SqliteStore::ClusterId() { return cluster_id_; }

}  // namespace det::store
