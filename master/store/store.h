// The master's persistent store: experiments (with their original YAML and
// packed context), trials, every metric report, checkpoints, trial logs,
// searcher snapshots, workers and per-worker stream sequence numbers.
//
// Records are det.v1 protobuf messages (the store is an edge: it serialises
// them), with the fields the master queries by kept in their own columns.
// Every method is safe to call from any thread (the implementation
// serialises access). Writes made inside RunInTransaction commit together or
// not at all, which is how the master keeps a metric report, the trial's new
// best, the searcher snapshot and the trials it created consistent across a
// crash.
#ifndef DET_MASTER_STORE_STORE_H_
#define DET_MASTER_STORE_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "det/v1/api.pb.h"
#include "det/v1/common.pb.h"
#include "det/v1/worker.pb.h"

namespace det::store {

// What the master keeps about an experiment beyond v1::Experiment.
struct ExperimentRecord {
  v1::Experiment experiment;  // id assigned by AddExperiment
  std::string context;        // packed context directory (tar.gz), may be empty
  std::string searcher_snapshot;  // SearchMethod::Snapshot(), may be empty
};

// What the master keeps about a trial beyond v1::Trial.
struct TrialRecord {
  v1::Trial trial;                         // id assigned by AddTrial
  int64_t request_id = 0;                  // the searcher's id for it
  int32_t run_id = 0;                      // increments on each (re)start
  std::vector<int64_t> validation_points;  // in batches
  int64_t checkpoint_period = 0;           // in batches, 0 = none
};

class Store {
 public:
  virtual ~Store() = default;

  // Runs fn inside one transaction: commits when fn returns OK, rolls back
  // otherwise (and returns fn's status). Nested calls join the outer one
  // (the SQLite store runs each in a savepoint, so a failed inner call
  // undoes only its own writes; the outer fn usually passes the error on).
  // fn must call the store from the calling thread only: other threads wait
  // until the transaction ends.
  virtual absl::Status RunInTransaction(
      const std::function<absl::Status()>& fn) = 0;

  // Experiments. AddExperiment assigns and returns the id (1, 2, ...); an
  // id already set in e is ignored. Getters return the message with its id.
  virtual absl::StatusOr<int64_t> AddExperiment(const ExperimentRecord& e) = 0;
  // Replaces the v1::Experiment part (state, progress, best, ...) of the
  // experiment e.id(); NOT_FOUND when absent.
  virtual absl::Status UpdateExperiment(const v1::Experiment& e) = 0;
  // Replaces the snapshot and empties the experiment's event journal.
  virtual absl::Status SaveSearcherSnapshot(int64_t experiment_id,
                                            const std::string& snapshot) = 0;
  // The searcher's events since its last snapshot, in order: the master
  // appends one per searcher call (in the event's transaction) and replays
  // them after restoring the snapshot.
  virtual absl::Status AppendSearcherEvent(int64_t experiment_id,
                                           const std::string& event) = 0;
  virtual absl::StatusOr<std::vector<std::string>> ListSearcherEvents(
      int64_t experiment_id) = 0;
  // NOT_FOUND when absent.
  virtual absl::StatusOr<ExperimentRecord> GetExperiment(int64_t id) = 0;
  // Without context blobs and snapshots, ordered by id.
  virtual absl::StatusOr<std::vector<v1::Experiment>> ListExperiments() = 0;
  // Removes the experiment with everything of it: trials, metrics,
  // checkpoint records, logs, searcher snapshot and journal; all or
  // nothing. NOT_FOUND when absent.
  virtual absl::Status DeleteExperiment(int64_t id) = 0;
  // Full records of experiments not in a terminal state (for restart).
  virtual absl::StatusOr<std::vector<ExperimentRecord>>
  ListNonTerminalExperiments() = 0;

  // Trials. AddTrial assigns and returns the id (global, 1, 2, ...); an id
  // already set in t is ignored; NOT_FOUND when the experiment is absent.
  // UpdateTrial replaces everything of trial t.trial.id(); GetTrial and
  // UpdateTrial give NOT_FOUND when absent. ListTrials is ordered by id
  // (empty for an unknown experiment).
  virtual absl::StatusOr<int64_t> AddTrial(const TrialRecord& t) = 0;
  virtual absl::Status UpdateTrial(const TrialRecord& t) = 0;
  virtual absl::StatusOr<TrialRecord> GetTrial(int64_t id) = 0;
  virtual absl::StatusOr<std::vector<TrialRecord>> ListTrials(
      int64_t experiment_id) = 0;

  // Metrics, idempotent on (trial_id, group, steps_completed): returns true
  // when stored, false when an identical key was already there (not an
  // error; the first report is kept). INVALID_ARGUMENT without a group or
  // with negative steps; NOT_FOUND for an unknown trial.
  virtual absl::StatusOr<bool> AddMetricReport(const v1::MetricReport& r) = 0;
  // Ordered by group then steps_completed. group UNSPECIFIED = all.
  virtual absl::StatusOr<std::vector<v1::MetricReport>> GetMetricReports(
      int64_t trial_id, v1::MetricGroup group) = 0;

  // Checkpoints, idempotent on uuid (a resent one is kept once, the first
  // version wins). A new checkpoint is ACTIVE, whatever c.state says.
  // ListCheckpoints gives a trial's ACTIVE checkpoints only (the ones that
  // may be restored or downloaded), ordered by steps_completed ascending,
  // so the latest is the last. Deleting an absent uuid is not an error.
  virtual absl::Status AddCheckpoint(const v1::Checkpoint& c) = 0;
  virtual absl::StatusOr<std::vector<v1::Checkpoint>> ListCheckpoints(
      int64_t trial_id) = 0;
  virtual absl::Status DeleteCheckpoint(const std::string& uuid) = 0;
  // One checkpoint by uuid with its state, whatever it is (a warm start's
  // source, det checkpoint describe/download); NOT_FOUND when absent.
  virtual absl::StatusOr<v1::Checkpoint> GetCheckpoint(
      const std::string& uuid) = 0;

  // Garbage collection, two-phase: SetCheckpointState(uuid, DELETING) in
  // the transaction that decides it, then the files are removed, then
  // SetCheckpointState(uuid, DELETED). A restart resumes with
  // ListCheckpointsInState(DELETING). Transitions go forward only:
  // ACTIVE -> DELETING -> DELETED (setting the state it already has is a
  // no-op); any other is FAILED_PRECONDITION, an unknown uuid NOT_FOUND,
  // ACTIVE or UNSPECIFIED as the target INVALID_ARGUMENT. The returned
  // checkpoints carry their state; ordered by trial, then steps_completed.
  virtual absl::Status SetCheckpointState(const std::string& uuid,
                                          v1::CheckpointState state) = 0;
  virtual absl::StatusOr<std::vector<v1::Checkpoint>> ListCheckpointsInState(
      v1::CheckpointState state) = 0;
  // Every checkpoint of an experiment's trials, in every state, ordered by
  // trial, then steps_completed (empty for an unknown experiment).
  virtual absl::StatusOr<std::vector<v1::Checkpoint>> ListExperimentCheckpoints(
      int64_t experiment_id) = 0;

  // Logs: ids assigned in insertion order; a batch is stored whole or not at
  // all. Returns lines with id > after_id, at most `limit` (which must be
  // positive), in id order.
  virtual absl::Status AddLogs(int64_t trial_id,
                               const std::vector<v1::LogLine>& lines) = 0;
  virtual absl::StatusOr<std::vector<v1::TrialLogLine>> GetLogs(
      int64_t trial_id, int64_t after_id, int limit) = 0;

  // Workers, keyed by id (replace on register). Listed in id order.
  virtual absl::Status UpsertAgent(const v1::Agent& a) = 0;
  virtual absl::StatusOr<std::vector<v1::Agent>> ListAgents() = 0;

  // Highest WorkerMessage.seq processed from a worker id (0 if none), so a
  // message resent after a reconnect is recognised.
  virtual absl::Status SetWorkerSeq(const std::string& worker_id,
                                    int64_t seq) = 0;
  virtual absl::StatusOr<int64_t> GetWorkerSeq(
      const std::string& worker_id) = 0;

  // Cluster id, made once (when the store is first created) and kept.
  virtual absl::StatusOr<std::string> ClusterId() = 0;
};

// Opens (creating if needed) a SQLite store in WAL mode at `path`
// (":memory:" for tests), applying schema migrations up to the current
// version. Refuses a database written by a newer schema version.
absl::StatusOr<std::unique_ptr<Store>> OpenSqliteStore(const std::string& path);

}  // namespace det::store

#endif  // DET_MASTER_STORE_STORE_H_
