// The Store on a PostgreSQL server (libpq), for a master whose state must
// outlive its machine or be shared with other tools. Same interface, same
// schema versions and the same meaning of errors as SqliteStore.
//
// Usage:
//   absl::StatusOr<std::unique_ptr<PostgresStore>> store =
//       PostgresStore::Open("postgresql://det@db.example:5432/det");
//
// The connection string is any libpq one (URI or key=value). det creates
// its tables in the first schema of the search_path: give det a database
// (or a schema, "?options=-csearch_path%3Ddet") of its own; its user
// needs CREATE on that schema (PostgreSQL 15 no longer grants it on
// "public" to every user: make det's user the database's owner).
//
// Threads: one connection, serialised by one mutex exactly as in
// SqliteStore: RunInTransaction holds it for the whole of fn, calls from
// fn's thread join the transaction, other threads wait.
//
// Lost connections: a call that finds the connection broken (the server
// restarted, the network dropped) fails with UNAVAILABLE; the next call
// outside a transaction reconnects first (before sending anything, a
// connection the server closed while idle is noticed and replaced, so
// that call does not fail at all). A transaction whose connection broke is
// never continued on a new one: it fails, and its writes are gone.
//
// Durability: each commit waits for the server's WAL flush
// (synchronous_commit as configured on the server, on by default).
#ifndef DET_MASTER_STORE_POSTGRES_STORE_H_
#define DET_MASTER_STORE_POSTGRES_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "master/store/connection_gate.h"
#include "master/store/store.h"

typedef struct pg_conn PGconn;

namespace det::store {

// The schema version the PostgreSQL store writes. Its migrations mirror
// the SQLite store's one for one (checked in postgres_store.cc).
inline constexpr int kPostgresSchemaVersion = 4;

class PgParams;
class PgResult;

class PostgresStore final : public Store, private ConnectionGate::Backend {
 public:
  // Connects, applies pending migrations (under an advisory lock, so two
  // masters starting together do not both migrate) and makes the cluster
  // id on first use. FAILED_PRECONDITION for a schema newer than this code;
  // UNAVAILABLE when the server cannot be reached; INVALID_ARGUMENT for a
  // connection string libpq cannot parse.
  static absl::StatusOr<std::unique_ptr<PostgresStore>> Open(
      const std::string& conninfo);

  ~PostgresStore() override;
  PostgresStore(const PostgresStore&) = delete;
  PostgresStore& operator=(const PostgresStore&) = delete;

  // As SqliteStore::SetWriteObserver.
  void SetWriteObserver(std::function<void(absl::Duration)> observer) {
    gate_.SetWriteObserver(std::move(observer));
  }

  // Where the store is connected, without the password ("host:port/db").
  const std::string& Describe() const { return where_; }

  // Nested calls run in a SAVEPOINT, as in SqliteStore.
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
  explicit PostgresStore(PGconn* conn);

  absl::Status Init();
  absl::Status Migrate();
  // ConnectionGate::Backend. Ready, outside a transaction: replaces a
  // broken connection (or one the server closed while idle) with a new
  // one; UNAVAILABLE when that fails.
  absl::Status Ready() override;
  absl::Status Begin() override;
  absl::Status Commit() override;
  void Rollback() override;
  absl::Status Savepoint() override;
  absl::Status ReleaseSavepoint() override;
  void RollbackToSavepoint() override;
  // Runs cached statement `sql` (a constant of the store; prepared once per
  // connection) with `params`; results come back in binary form.
  absl::StatusOr<PgResult> Exec(const char* sql, const PgParams& params,
                                absl::string_view what);
  // Runs constant SQL without values (BEGIN, schema text).
  absl::Status ExecConstant(const std::string& sql, absl::string_view what);
  // The status for a failed statement or a broken connection.
  absl::Status Error(const PgResult* result, absl::string_view what);
  // Whether experiment/trial `id` exists (to name a missing parent).
  absl::StatusOr<bool> Exists(const char* sql, int64_t id,
                              absl::string_view what);

  absl::StatusOr<ExperimentRecord> ReadExperimentRow(const PgResult& r,
                                                     int row);
  absl::StatusOr<TrialRecord> ReadTrialRow(const PgResult& r, int row);

  PGconn* conn_;
  std::string where_;
  std::string cluster_id_;  // set once by Init()

  // gate_ guards conn_ and prepared_, as SqliteStore::gate_.
  ConnectionGate gate_{this};
  // Statement text (by address) -> its prepared name on this connection.
  std::unordered_map<const char*, std::string> prepared_;
};

}  // namespace det::store

#endif  // DET_MASTER_STORE_POSTGRES_STORE_H_
