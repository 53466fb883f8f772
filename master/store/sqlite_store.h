// The embedded Store: one SQLite database file (WAL mode), one connection.
//
// Usage:
//   absl::StatusOr<std::unique_ptr<SqliteStore>> store =
//       SqliteStore::Open("/var/lib/det/master.db");
//   (*store)->SetWriteObserver([](absl::Duration d) { histogram.Add(d); });
//
// Threads: every method may be called from any thread. A ConnectionGate (one
// mutex) serialises use of the connection. RunInTransaction holds it for the
// whole of fn, and the thread running fn may call the store again (those
// calls join the transaction); other threads wait until it commits or rolls
// back, so they never see half of it. fn must therefore call the store only
// from its own thread.
//
// Durability: synchronous=NORMAL. In WAL mode that fsyncs at checkpoints,
// not at every commit: a crash of det-master (the case that matters) loses
// nothing committed, and the file is never corrupted; only a power loss or
// OS crash can lose the last few commits. FULL would fsync every metric
// report, which costs milliseconds each on ordinary disks and caps the
// master at a few hundred reports per second.
#ifndef DET_MASTER_STORE_SQLITE_STORE_H_
#define DET_MASTER_STORE_SQLITE_STORE_H_

#include <sqlite3.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "master/store/connection_gate.h"
#include "master/store/sqlite_statement.h"
#include "master/store/store.h"

namespace det::store {

class SqliteStore final : public Store, private ConnectionGate::Backend {
 public:
  // Opens (creating if needed) the database at `path` (":memory:" for a
  // private in-memory one), sets its pragmas, applies pending migrations and
  // makes the cluster id on first use. FAILED_PRECONDITION for a database of
  // a newer schema version or of another program; other errors say what
  // SQLite reported about the file.
  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(
      const std::string& path);

  ~SqliteStore() override;
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  // Called after every write that stands alone (its SQL time, lock waits
  // excluded) and after every outermost transaction (BEGIN to COMMIT), from
  // the writing thread, after the store's lock is released. Must be cheap
  // and must not call back into the store. Pass nullptr to remove.
  void SetWriteObserver(std::function<void(absl::Duration)> observer) {
    gate_.SetWriteObserver(std::move(observer));
  }

  // Nested calls run in a SAVEPOINT: an inner fn that fails rolls back only
  // its own writes, and the outer fn decides whether to go on.
  absl::Status RunInTransaction(
      const std::function<absl::Status()>& fn) override {
    return gate_.RunInTransaction(fn);
  }

  absl::StatusOr<int64_t> AddExperiment(const ExperimentRecord& e) override;
  absl::Status UpdateExperiment(const v1::Experiment& e) override;
  absl::Status SaveSearcherSnapshot(int64_t experiment_id,
                                    const std::string& snapshot) override;
  absl::Status AppendSearcherEvent(int64_t experiment_id,
                                   const std::string& event) override;
  absl::StatusOr<std::vector<std::string>> ListSearcherEvents(
      int64_t experiment_id) override;
  absl::StatusOr<ExperimentRecord> GetExperiment(int64_t id) override;
  absl::StatusOr<std::vector<v1::Experiment>> ListExperiments() override;
  absl::StatusOr<std::vector<ExperimentRecord>> ListNonTerminalExperiments()
      override;

  absl::StatusOr<int64_t> AddTrial(const TrialRecord& t) override;
  absl::Status UpdateTrial(const TrialRecord& t) override;
  absl::StatusOr<TrialRecord> GetTrial(int64_t id) override;
  absl::StatusOr<std::vector<TrialRecord>> ListTrials(
      int64_t experiment_id) override;

  absl::StatusOr<bool> AddMetricReport(const v1::MetricReport& r) override;
  absl::StatusOr<std::vector<v1::MetricReport>> GetMetricReports(
      int64_t trial_id, v1::MetricGroup group) override;

  absl::Status AddCheckpoint(const v1::Checkpoint& c) override;
  absl::StatusOr<std::vector<v1::Checkpoint>> ListCheckpoints(
      int64_t trial_id) override;
  absl::Status DeleteCheckpoint(const std::string& uuid) override;
  absl::StatusOr<v1::Checkpoint> GetCheckpoint(
      const std::string& uuid) override;
  absl::Status SetCheckpointState(const std::string& uuid,
                                  v1::CheckpointState state) override;
  absl::StatusOr<std::vector<v1::Checkpoint>> ListCheckpointsInState(
      v1::CheckpointState state) override;
  absl::StatusOr<std::vector<v1::Checkpoint>> ListExperimentCheckpoints(
      int64_t experiment_id) override;
  absl::Status DeleteExperiment(int64_t id) override;

  absl::Status AddLogs(int64_t trial_id,
                       const std::vector<v1::LogLine>& lines) override;
  absl::StatusOr<std::vector<v1::TrialLogLine>> GetLogs(int64_t trial_id,
                                                        int64_t after_id,
                                                        int limit) override;

  absl::Status UpsertAgent(const v1::Agent& a) override;
  absl::StatusOr<std::vector<v1::Agent>> ListAgents() override;

  absl::Status SetWorkerSeq(const std::string& worker_id, int64_t seq) override;
  absl::StatusOr<int64_t> GetWorkerSeq(const std::string& worker_id) override;

  absl::StatusOr<std::string> ClusterId() override;

 private:
  SqliteStore(sqlite3* db, std::string path);

  absl::Status Init();
  // ConnectionGate::Backend: SQLite's BEGIN, COMMIT and savepoints.
  absl::Status Begin() override;
  absl::Status Commit() override;
  void Rollback() override;
  absl::Status Savepoint() override;
  absl::Status ReleaseSavepoint() override;
  void RollbackToSavepoint() override;
  // Runs constant SQL without values (pragmas at open).
  absl::Status ExecConstant(const char* sql, const char* what);
  // Runs one cached statement without parameters (BEGIN, COMMIT, ...).
  absl::Status RunCached(const char* sql);

  // Row readers for statements that select the columns they expect.
  absl::StatusOr<ExperimentRecord> ReadExperimentRow(const Statement& st);
  absl::StatusOr<TrialRecord> ReadTrialRow(const Statement& st);

  sqlite3* const db_;
  const std::string path_;
  std::string cluster_id_;  // set once by Init()

  // gate_ guards db_ and statements_: every use of them runs inside
  // gate_.Read, Write or RunInTransaction, once Init is done.
  ConnectionGate gate_{this};
  std::unique_ptr<StatementCache> statements_;
};

}  // namespace det::store

#endif  // DET_MASTER_STORE_SQLITE_STORE_H_
