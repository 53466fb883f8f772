// The master's core: experiments, their searchers and trials, the workers
// and their slots, and the store that keeps all of it.
//
// One class, one lock, its methods in files named for what they own (see
// master/README.md for the map):
//   master.cc               construction, the ticker, lookups, shared helpers
//   recovery.cc             loading the store at start and reloading it
//                           after a failed transaction
//   store_health.cc         transactions, and the outage mode after a
//                           failed one (probe, backoff, what is refused)
//   searcher_operations.cc  carrying out searcher operations, the journal,
//                           the snapshot policy
//   experiment_lifecycle.cc creating experiments and their state machine
//   trial_lifecycle.cc      a trial's exit or loss: the restart policy
//   placement.cc            queueing trials, placing them, StartTrial
//   worker_sessions.cc      worker streams: hello, reconciliation, loss
//   ingest.cc               batches of worker messages, metrics, best metric
//   queries.cc              the read side of the client API
//   checkpoint_gc.cc        checkpoint garbage collection, checkpoint
//                           listing and download, experiment deletion
//   experiment_admin.cc     name, description, labels, priority,
//                           max_slots, archiving, forks, killing a trial
//   warm_start.cc           warm starts: the source checkpoint, a new
//                           trial's warm_start_uuid, the spec's warm_start
//   experiment_continue.cc  `det experiment continue`
//
// Concurrency: mu_ guards every piece of in-memory state; the gRPC handlers
// (client API and worker streams) and the ticker thread call in and hold it
// for the length of one event. Every event's effects on the store are
// written in one transaction (Transact), together with the worker's
// sequence number when the event came from a worker, so a crash at any
// point leaves the store either before or after the whole event. Messages
// to workers made during a transaction go out only once it commits; when
// it fails, the master reloads its state from the store (the restart path)
// and stays in outage mode until a write succeeds again, so memory never
// runs ahead of the store.
#ifndef DET_MASTER_CORE_MASTER_H_
#define DET_MASTER_CORE_MASTER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "common/config.h"
#include "det/v1/api.pb.h"
#include "det/v1/worker.pb.h"
#include "master/core/searcher_journal.h"
#include "master/core/worker_outbox.h"
#include "master/core/worker_source.h"
#include "master/http/metrics_registry.h"
#include "master/scheduler/slot_scheduler.h"
#include "master/searcher/searcher.h"
#include "master/store/store.h"

namespace det::master {

struct MasterOptions {
  // Where checkpoint_storage.host_path points when a config leaves it out.
  std::string checkpoint_root;
  // A worker must heartbeat at least this often...
  absl::Duration heartbeat_interval = absl::Seconds(5);
  // ...and is declared lost (its trials restarted elsewhere) after this
  // long without a heartbeat or a stream.
  absl::Duration agent_timeout = absl::Seconds(30);
  // Graceful stop before the worker kills a trial.
  absl::Duration stop_timeout = absl::Seconds(30);
  // Records per epoch when a config leaves records_per_epoch out and the
  // data section sets no train_limit: CIFAR-10's training set.
  int64_t default_records_per_epoch = 50000;
  std::string grpc_address;  // for MasterInfo only
  std::string http_address;  // for MasterInfo only
  // Take a searcher snapshot every this many journaled events; 0 picks
  // 1 + trials/32 (tests set it high to exercise journal replay).
  int64_t snapshot_every = 0;
  // After a failed transaction, the store is probed with a write after
  // this long, doubling up to store_probe_max.
  absl::Duration store_probe_initial = absl::Milliseconds(250);
  absl::Duration store_probe_max = absl::Seconds(15);
  // How often the ticker thread calls Tick; zero: no ticker (tests that
  // drive the master step by step call Tick themselves).
  absl::Duration tick_interval = absl::Seconds(1);
  // Starts and stops workers on demand (Slurm); not owned, may be null.
  WorkerSource* worker_source = nullptr;
  // Counters for /metrics; not owned, may be null.
  http::MetricsRegistry* metrics = nullptr;
};

// Whether the store takes writes, for det master info, the web page,
// /metrics and the health service.
struct StoreHealth {
  bool available = true;
  absl::Time unavailable_since;  // when !available
  std::string reason;            // the failure that started the outage
  int64_t failed_probes = 0;     // in this outage
};

class Master {
 public:
  // Loads every non-terminal experiment from the store and carries on.
  static absl::StatusOr<std::unique_ptr<Master>> Create(
      std::unique_ptr<store::Store> store, MasterOptions options);
  ~Master();

  // ---- Client API (api/api_service.cc translates gRPC to these) ----
  // While the store is unavailable, calls that would write answer
  // UNAVAILABLE and change nothing.
  absl::StatusOr<v1::Experiment> CreateExperiment(
      const std::string& yaml, const std::string& context, bool activate,
      bool validate_only, std::vector<std::string>* warnings);
  absl::StatusOr<v1::Experiment> GetExperiment(int64_t id);
  absl::StatusOr<std::vector<v1::Experiment>> ListExperiments();
  absl::StatusOr<std::vector<v1::Trial>> ListTrials(int64_t experiment_id);
  absl::StatusOr<v1::Trial> GetTrial(int64_t trial_id);
  absl::StatusOr<std::vector<v1::MetricReport>> GetTrialMetrics(
      int64_t trial_id, v1::MetricGroup group);
  // Every stored checkpoint of the trial, in every GC state; NOT_FOUND for
  // an unknown trial.
  absl::StatusOr<std::vector<v1::Checkpoint>> ListCheckpoints(int64_t trial_id);
  absl::StatusOr<std::vector<v1::TrialLogLine>> GetTrialLogs(int64_t trial_id,
                                                             int64_t after_id,
                                                             int limit);
  absl::StatusOr<v1::Experiment> PauseExperiment(int64_t id);
  absl::StatusOr<v1::Experiment> ActivateExperiment(int64_t id);
  absl::StatusOr<v1::Experiment> CancelExperiment(int64_t id);
  absl::StatusOr<v1::Experiment> KillExperiment(int64_t id);
  std::vector<v1::Agent> ListAgents();
  // checkpoint_gc.cc: every checkpoint of the experiment (each state), or
  // with best > 0 the best that many ACTIVE ones by the searcher metric.
  absl::StatusOr<std::vector<v1::CheckpointDetail>> ListExperimentCheckpoints(
      int64_t experiment_id, int best);
  absl::StatusOr<v1::CheckpointDetail> GetCheckpoint(const std::string& uuid);
  // FAILED_PRECONDITION unless the experiment is terminal. Marks it
  // deleting and its checkpoints DELETING; it leaves the store once their
  // files are gone.
  absl::StatusOr<v1::DeleteExperimentResponse> DeleteExperiment(int64_t id);
  v1::MasterInfo GetMasterInfo();
  StoreHealth GetStoreHealth();
  // The addresses once the servers listen (for MasterInfo); an empty
  // argument leaves that address as it was.
  void SetAddresses(const std::string& grpc, const std::string& http);
  // Blocks until the experiment's version differs from `*version` (or the
  // timeout passes); updates *version. Returns the current experiment.
  absl::StatusOr<v1::Experiment> WaitExperimentChange(int64_t id,
                                                      int64_t* version,
                                                      absl::Duration timeout);
  // True while the trial is not terminal (for log following).
  bool TrialIsLive(int64_t trial_id);

  // experiment_admin.cc
  // Changes what the patch names (INVALID_ARGUMENT for a bad value; for an
  // ended experiment only name, description and labels: FAILED_PRECONDITION
  // otherwise). A new priority or max_slots applies to the queued trials at
  // once; all of it is stored in the record, so a restart keeps it.
  absl::StatusOr<v1::Experiment> PatchExperiment(
      const v1::PatchExperimentRequest& patch);
  // Archives (only an ended experiment) or unarchives; FAILED_PRECONDITION
  // when it is not ended, or already is as asked.
  absl::StatusOr<v1::Experiment> SetExperimentArchived(int64_t id,
                                                       bool archived);
  // The YAML with the record's changes written in (EffectiveConfigYaml).
  absl::StatusOr<std::string> GetExperimentConfig(int64_t id);
  // CreateExperiment with the context of experiment `parent_id`.
  absl::StatusOr<v1::Experiment> ForkExperiment(
      int64_t parent_id, const std::string& yaml, bool activate,
      std::vector<std::string>* warnings);
  // Kills the trial's process (or cancels it if it is not running); it
  // ends CANCELED, the searcher is told it exited (kUserCanceled) and the
  // experiment goes on. FAILED_PRECONDITION for an ended trial.
  absl::StatusOr<v1::Trial> KillTrial(int64_t trial_id);
  // ---- Continue (issue 15; experiment_continue.cc) ----
  // `det experiment continue`: an ended (COMPLETED, CANCELED, ERROR)
  // experiment of the single searcher trains its trial further, in the
  // same experiment. `overrides` ("key.path=value") change the stored
  // config first; the merged config is checked as a new one and must keep
  // the single searcher (INVALID_ARGUMENT otherwise, naming the field).
  // The trial is queued again with its restarts at 0 and the new length;
  // its run restores the latest checkpoint, so its step count continues.
  // FAILED_PRECONDITION while the experiment has not ended, NOT_FOUND for
  // an unknown id, UNAVAILABLE while the store is.
  absl::StatusOr<v1::Experiment> ContinueExperiment(
      int64_t id, const std::vector<std::string>& overrides,
      std::vector<std::string>* warnings);

  // ---- Worker streams (api/worker_service.cc) ----
  // Registers a worker after its Hello and reconciles the trials it runs
  // with those the master placed on it; returns the Welcome to send, and
  // the outbox the stream's writer drains. Refuses another protocol
  // version; UNAVAILABLE (the worker retries) while the store is.
  absl::StatusOr<v1::Welcome> WorkerConnected(
      const v1::Hello& hello, const std::string& peer,
      std::shared_ptr<WorkerOutbox> outbox);
  // One message from a connected worker; returns the seq to acknowledge.
  absl::StatusOr<int64_t> WorkerMessage(const std::string& worker_id,
                                        const v1::WorkerMessage& m);
  // Messages from one worker stream, in the order received, stored in ONE
  // transaction (with the worker's sequence number) and scheduled once.
  // Resent messages (seq already stored) are skipped but acknowledged.
  // Each event runs in its own savepoint, so a failing one is rolled back
  // alone. What happens next depends on the failure
  // (IsPermanentMessageFailure):
  //  - permanent (the message itself is bad and would fail again however
  //    often it is resent): the message is rejected: dropped, logged with
  //    the worker, seq, trial and reason, counted in
  //    det_worker_messages_rejected_total, noted in the trial's logs (when
  //    the trial exists), and acknowledged with the rest; the batch goes
  //    on, so one bad report never blocks the worker's later messages;
  //  - transient (disk full, I/O error, locked, anything else): nothing of
  //    the batch is stored or acknowledged, `status` says why, and the
  //    master reloads its state and enters outage mode (the worker resends
  //    the batch once it reconnects).
  // When the commit itself fails, nothing of the batch is stored or
  // acknowledged either.
  struct WorkerBatchResult {
    int64_t ack_seq = 0;  // highest seq durably stored; 0 = none
    absl::Status status;  // OK, or why the batch was not stored
    int rejected = 0;     // messages rejected (and acknowledged)
  };
  WorkerBatchResult WorkerMessages(const std::string& worker_id,
                                   absl::Span<const v1::WorkerMessage> batch);
  // The stream ended (the worker stays registered until agent_timeout).
  void WorkerDisconnected(const std::string& worker_id,
                          const std::shared_ptr<WorkerOutbox>& outbox);

  // Runs the periodic checks (store probe, lost workers, scheduling) once;
  // the ticker thread calls it every second, tests may call it directly.
  void Tick();

 private:
  struct TrialState {
    store::TrialRecord rec;
    // Searcher units per validation point, by batches, for this trial.
    std::map<int64_t, int64_t> units_at_batches;
    bool stop_sent = false;
    bool running = false;              // a process is (believed to be) running
    bool awaiting_worker = false;      // running before a master (re)load
    std::vector<std::string> workers;  // where its processes run
    absl::Time queued_at;              // when it last became runnable
  };
  // A warm-start checkpoint and the config of the experiment that wrote
  // it (its checkpoint storage says where the files lie).
  struct WarmStartSource {
    v1::Checkpoint checkpoint;
    ExperimentConfig config;
  };
  struct ExperimentState {
    store::ExperimentRecord rec;
    ExperimentConfig config;
    std::unique_ptr<searcher::SearchMethod> searcher;
    std::map<int64_t, TrialState> trials;  // by trial id
    std::map<int64_t, int64_t> trial_by_request;
    // Trials by state, kept by SetTrialState so describing is O(1).
    std::map<v1::State, int> trial_counts;
    bool searcher_done = false;
    int64_t events_since_snapshot = 0;
    bool searcher_failed = false;
    // Searcher operations not carried out yet: a large first batch of
    // trials is created in chunks (see CarryOutPending). While any are
    // pending no snapshot is taken, so the journal keeps the events that
    // asked for them and a restarted master finds them again.
    std::deque<searcher::Operation> pending;
    int64_t order = 0;  // scheduling order
    int64_t version = 0;
    // Warm-start checkpoints looked up for this experiment's runs, by uuid
    // (LookUpWarmStart): a search of many trials from one checkpoint reads
    // the source experiment's config once.
    std::map<std::string, WarmStartSource> warm_start_sources;
  };
  struct WorkerSession {
    v1::Agent agent;
    std::string incarnation;
    std::shared_ptr<WorkerOutbox> outbox;
    std::string host;  // for rendezvous addresses
    // The worker's --checkpoint-root: the shared checkpoint storage as
    // mounted on its machine ("" = where the config says).
    std::string checkpoint_root;
    absl::Time last_seen;
    int64_t last_seq = 0;  // highest seq processed from this incarnation
    bool in_scheduler = false;
    bool lost = false;
  };
  // A checkpoint in DELETING whose files are not reported gone yet.
  struct PendingDeletion {
    int64_t experiment_id = 0;
    CheckpointStorageConfig storage;
    std::string agent_id;  // where its trial ran last: asked first
    std::string sent_to;   // the worker asked, "" = nobody yet
    absl::Time sent_at;
  };

  Master(std::unique_ptr<store::Store> store, MasterOptions options);

  // master.cc
  ExperimentState* FindExperiment(int64_t id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<std::pair<ExperimentState*, TrialState*>> FindLiveTrial(
      int64_t trial_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Touch(ExperimentState* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every trial state change goes through here (keeps trial_counts).
  void SetTrialState(ExperimentState* e, TrialState* t, v1::State s)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status SaveTrial(TrialState* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t RecordsPerEpoch(const ExperimentState& e) const;

  // recovery.cc
  // Builds the in-memory state from the store: experiments, searchers
  // (snapshot + journal replay), trials, the queue.
  absl::Status Load() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the in-memory state and loads it again, as a restart would;
  // ends every worker stream so that each worker reconnects and claims
  // its trials. Then carries out operations left pending.
  absl::Status Reload() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // store_health.cc
  // Runs fn as one top-level transaction. Refused (UNAVAILABLE) while the
  // store is unavailable. Messages queued by SendToWorker during fn go out
  // when it commits; when it fails they are dropped, the master reloads
  // its state from the store and enters outage mode.
  absl::Status Transact(const std::function<absl::Status()>& fn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Queues a message for a worker: at once outside a transaction, at its
  // commit inside one. Nothing when the worker has no stream.
  void SendToWorker(const std::string& worker_id, v1::MasterMessage m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status StoreUnavailableError() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnStoreFailure(const absl::Status& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // In outage mode: writes a probe when it is due; on success reloads if
  // the last reload failed and leaves outage mode.
  void ProbeStore() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // searcher_operations.cc
  // Carries out searcher operations (and those they lead to), after any
  // still pending, in order. With max_creates >= 0 it stops before the
  // Create beyond that many and leaves the rest in e->pending.
  absl::Status ProcessOps(ExperimentState* e, searcher::Operations ops,
                          int64_t max_creates = -1)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Carries out e->pending a chunk of trial creations per transaction,
  // scheduling after each, so the first trials start while later ones
  // are still being created; then takes the searcher snapshot if one is
  // due (chunks take none). Called after a chunked first batch.
  absl::Status CarryOutPending(ExperimentState* e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the experiment's record; the searcher snapshot too when `force`
  // or enough events have been journaled since the last one.
  // With may_snapshot false, the record only (a chunk of a burst of
  // creations leaves the snapshot until its StartTrials are out).
  absl::Status SaveExperiment(ExperimentState* e, bool force = false,
                              bool may_snapshot = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Calls the searcher with an event and journals it.
  absl::StatusOr<searcher::Operations> Feed(ExperimentState* e,
                                            const JournalEvent& event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The searcher's first operations ("init"), carried out up to the first
  // chunk of trial creations; CarryOutPending does the rest.
  absl::Status StartSearch(ExperimentState* e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Feed, then ProcessOps on what it asked for.
  absl::Status FeedAndProcess(ExperimentState* e, const JournalEvent& event)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // experiment_lifecycle.cc
  absl::StatusOr<v1::Experiment> ChangeState(int64_t id, v1::State target);
  // Moves the experiment to a terminal state once nothing runs.
  absl::Status MaybeFinish(ExperimentState* e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // trial_lifecycle.cc
  // The trial's process exited and reported why.
  absl::Status OnExit(ExperimentState* e, TrialState* t,
                      const v1::TrialExited& x)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The trial's process is gone without a clean exit (a crash, its worker
  // lost or restarted): the restart policy. With free_if_not_started, a
  // run whose worker never reported it started does not count against
  // max_restarts (it never ran).
  absl::Status OnTrialLost(ExperimentState* e, TrialState* t,
                           const std::string& why,
                           bool free_if_not_started = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The trial holds no slots and runs nowhere any more.
  void ReleaseTrial(TrialState* t) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Every trial believed running on the worker (and not in `keep`) is
  // lost, for `why`.
  absl::Status LoseTrialsOfWorker(const std::string& worker_id,
                                  const std::set<int64_t>& keep,
                                  const std::string& why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // placement.cc
  void Enqueue(ExperimentState* e, TrialState* t)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StopTrialProcess(TrialState* t, bool kill)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Places queued trials and sends StartTrial to their workers.
  void ScheduleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Notes on each experiment a trial that cannot fit on the cluster.
  void ReportUnschedulable() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // worker_sessions.cc
  // `why`: the reason given to its trials and, when not empty, noted on
  // the experiments whose trials ran there.
  void WorkerLost(const std::string& worker_id, const std::string& why = "")
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tells options_.worker_source what the queue needs; declares lost the
  // workers whose jobs it saw end.
  void ConsultWorkerSource() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Lost workers, and trials whose worker did not come back after a load.
  void CheckWorkers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // ingest.cc
  absl::Status OnTrialEvent(const std::string& worker_id,
                            const v1::TrialEvent& ev)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Notes a rejected message in its trial's logs (in the caller's
  // transaction; nothing when the trial does not exist).
  void NoteRejected(const std::string& worker_id, const v1::WorkerMessage& m,
                    const absl::Status& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // `current`: from the trial's current run (older runs' reports are kept
  // but not fed to the searcher).
  absl::Status OnMetrics(ExperimentState* e, TrialState* t,
                         const v1::MetricReport& r, bool current)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // checkpoint_gc.cc
  // Runs the retention rule over the experiment's checkpoints after an
  // event of trial `trial_id` (0: every trial, at the experiment's end),
  // inside the event's transaction: the ones it gives up become DELETING
  // and are sent to a worker once the transaction commits.
  absl::Status CollectCheckpoints(ExperimentState* e, int64_t trial_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Warm-start checkpoints of live trials (never deleted).
  absl::flat_hash_set<std::string> WarmStartsInUse() const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A connected worker to delete files: `preferred` if connected, else any.
  const std::string* PickGcWorker(const std::string& preferred) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sends DeleteCheckpoints for pending deletions not in flight. With
  // allow_local (outside any transaction) and no worker connected, the
  // master removes the folders it can see itself.
  void SendCheckpointDeletions(bool allow_local)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The files are gone: DELETED, in the caller's transaction; deleting
  // experiments with nothing left pending leave the store.
  absl::Status MarkCheckpointsDeleted(const std::vector<std::string>& uuids)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status FinishExperimentDeletions() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Load: the DELETING checkpoints and the deleting experiments.
  absl::Status LoadCheckpointDeletions() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // From Tick: resends, local deletion, finished experiment deletions.
  void CheckpointGcTick() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // An experiment's parsed config, from memory or the store.
  absl::StatusOr<ExperimentConfig> ConfigOf(int64_t experiment_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // experiment_admin.cc
  // Runs `edit` on the experiment's record (with its parsed config); when
  // it returns OK stores the result, in memory and in the store, and
  // requeues the queued trials. An error from `edit` changes nothing.
  using EditFn =
      std::function<absl::Status(const ExperimentConfig&, v1::Experiment*)>;
  absl::StatusOr<v1::Experiment> EditExperiment(int64_t id, const EditFn& edit);

  // queries.cc
  v1::Experiment Describe(const ExperimentState& e) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // GetExperiment for one not in memory (ended): reads the store with mu_
  // released meanwhile.
  absl::StatusOr<v1::Experiment> GetStoredExperiment(int64_t id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // warm_start.cc
  // searcher.source_trial_id -> that trial's latest checkpoint, written
  // into config->searcher.source_checkpoint_uuid (kept with the searcher
  // snapshot, so it is resolved once, as in Determined); a
  // source_checkpoint_uuid must name an ACTIVE checkpoint. Otherwise
  // INVALID_ARGUMENT naming the field. Reads the store only.
  absl::Status ResolveWarmStart(ExperimentConfig* config);
  // The warm_start_uuid of a trial the searcher creates: with `from` (a
  // Create's warm_start_from) the latest checkpoint of that request's trial
  // (what it started from when it has none), else the experiment's source
  // checkpoint ("" for none).
  absl::StatusOr<std::string> WarmStartForCreate(ExperimentState* e,
                                                 searcher::RequestId from)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The checkpoint record (with its SHA-256s) and its experiment's config,
  // for a run's TrialSpec.warm_start; a uuid the store no longer has gives
  // the uuid alone (the worker then fails the run, saying so). Errors only
  // for a failing store.
  absl::StatusOr<WarmStartSource> LookUpWarmStart(ExperimentState* e,
                                                  const std::string& uuid)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unique_ptr<store::Store> store_;
  MasterOptions options_;
  std::string cluster_id_;
  absl::Time start_time_;

  mutable absl::Mutex mu_;
  absl::CondVar changed_;
  std::map<int64_t, std::unique_ptr<ExperimentState>> experiments_
      ABSL_GUARDED_BY(mu_);  // non-terminal ones, plus recently finished
  std::map<std::string, WorkerSession> workers_ ABSL_GUARDED_BY(mu_);
  scheduler::SlotScheduler scheduler_ ABSL_GUARDED_BY(mu_);
  // Some experiment carries an "unschedulable trial" message.
  bool unschedulable_reported_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time loaded_at_ ABSL_GUARDED_BY(mu_);

  // store_health.cc
  StoreHealth store_health_ ABSL_GUARDED_BY(mu_);
  bool reload_needed_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time next_probe_ ABSL_GUARDED_BY(mu_);
  absl::Duration probe_backoff_ ABSL_GUARDED_BY(mu_);
  int64_t probes_ ABSL_GUARDED_BY(mu_) = 0;
  int transaction_depth_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::pair<std::string, v1::MasterMessage>> staged_
      ABSL_GUARDED_BY(mu_);

  // checkpoint_gc.cc: by uuid.
  std::map<std::string, PendingDeletion> gc_pending_ ABSL_GUARDED_BY(mu_);
  std::set<int64_t> deleting_experiments_ ABSL_GUARDED_BY(mu_);

  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread ticker_;
};

// True when a worker message that failed with `s` would fail the same way
// however often it were resent, because the message itself is bad:
// INVALID_ARGUMENT (a malformed report, a value the store refuses),
// NOT_FOUND (a trial that does not exist), ALREADY_EXISTS, OUT_OF_RANGE.
// Anything else (UNAVAILABLE, RESOURCE_EXHAUSTED, DATA_LOSS, INTERNAL, ...)
// is about the master or its store and may pass on a later try.
bool IsPermanentMessageFailure(const absl::Status& s);

}  // namespace det::master

#endif  // DET_MASTER_CORE_MASTER_H_
