// Every Store on a database that outlives the store object (a SQLite file,
// a PostgreSQL schema): persistence across a restart, schema versions,
// concurrent writers, and a bulk-insert measurement. Instantiated per
// backend by store_*_main.cc; the SQLite-only file cases are in
// sqlite_store_files_test.cc.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "master/store/sqlite_schema.h"
#include "master/store/store.h"
#include "tests/store/store_backend.h"

namespace det::store {
namespace {

using ::testing::HasSubstr;

class StoreFilesTest : public ::testing::TestWithParam<BackendParam> {
 protected:
  void SetUp() override {
    backend_ = GetParam().make();
    if (std::string why = backend_->Unavailable(); !why.empty()) {
      GTEST_SKIP() << why;
    }
    backend_->SetUp();
    ready_ = true;
  }
  void TearDown() override {
    if (ready_) backend_->TearDown();
  }

  std::unique_ptr<Store> OpenOrDie() {
    absl::StatusOr<std::unique_ptr<Store>> s = backend_->Open();
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::unique_ptr<StoreBackend> backend_;
  bool ready_ = false;
};

TEST_P(StoreFilesTest, EverythingSurvivesARestart) {
  std::string cluster_id;
  {
    std::unique_ptr<Store> store = OpenOrDie();
    ASSERT_NE(store, nullptr);
    cluster_id = *store->ClusterId();
    ExperimentRecord e;
    e.experiment.set_name("persist");
    e.experiment.set_state(v1::STATE_ACTIVE);
    e.context = "tarball";
    ASSERT_EQ(*store->AddExperiment(e), 1);
    ASSERT_TRUE(store->SaveSearcherSnapshot(1, "snapshot").ok());
    TrialRecord t;
    t.trial.set_experiment_id(1);
    t.validation_points = {1, 2};
    ASSERT_EQ(*store->AddTrial(t), 1);
    v1::MetricReport r;
    r.set_trial_id(1);
    r.set_group(v1::METRIC_GROUP_VALIDATION);
    r.set_steps_completed(2);
    (*r.mutable_metrics())["validation_accuracy"] = 0.6;
    ASSERT_TRUE(*store->AddMetricReport(r));
    v1::Checkpoint c;
    c.set_trial_id(1);
    c.set_uuid("c1");
    ASSERT_TRUE(store->AddCheckpoint(c).ok());
    v1::LogLine line;
    line.set_line("hello");
    ASSERT_TRUE(store->AddLogs(1, {line}).ok());
    v1::Agent a;
    a.set_id("w1");
    ASSERT_TRUE(store->UpsertAgent(a).ok());
    ASSERT_TRUE(store->SetWorkerSeq("w1", 44).ok());
  }
  EXPECT_EQ(backend_->SchemaVersion(), kSchemaVersion);

  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(*store->ClusterId(), cluster_id);
  ExperimentRecord e = *store->GetExperiment(1);
  EXPECT_EQ(e.experiment.name(), "persist");
  EXPECT_EQ(e.context, "tarball");
  EXPECT_EQ(e.searcher_snapshot, "snapshot");
  EXPECT_EQ(store->ListNonTerminalExperiments()->size(), 1u);
  EXPECT_THAT(store->GetTrial(1)->validation_points,
              ::testing::ElementsAre(1, 2));
  auto reports = *store->GetMetricReports(1, v1::METRIC_GROUP_UNSPECIFIED);
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_DOUBLE_EQ(reports[0].metrics().at("validation_accuracy"), 0.6);
  // The resent report is still recognised after the restart.
  v1::MetricReport again = reports[0];
  EXPECT_FALSE(*store->AddMetricReport(again));
  EXPECT_EQ(store->ListCheckpoints(1)->size(), 1u);
  EXPECT_EQ((*store->GetLogs(1, 0, 10))[0].line(), "hello");
  EXPECT_EQ(store->ListAgents()->size(), 1u);
  EXPECT_EQ(*store->GetWorkerSeq("w1"), 44);
  // Ids continue, never reused.
  ExperimentRecord next;
  EXPECT_EQ(*store->AddExperiment(next), 2);
}

// Schema 3 keeps the searcher snapshot out of the experiment's row (an
// UPDATE of that row rewrites all of it): a store from schema 2, with the
// snapshot in the row, still reads it, and new snapshots leave the row alone.
TEST_P(StoreFilesTest, SnapshotInTheExperimentRowOfSchemaTwoIsRead) {
  {
    std::unique_ptr<Store> store = OpenOrDie();
    ASSERT_NE(store, nullptr);
    ASSERT_EQ(*store->AddExperiment(ExperimentRecord{}), 1);
  }
  // Undo migrations 4 and 3: the database as schema 2 left it.
  backend_->RawSql("DROP INDEX checkpoints_by_state");
  backend_->RawSql("ALTER TABLE checkpoints DROP COLUMN state");
  backend_->RawSql("DROP TABLE searcher_snapshots");
  backend_->RawSql(
      "UPDATE experiments SET searcher_snapshot = 'from schema 2'");
  backend_->SetSchemaVersion(2);

  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(backend_->SchemaVersion(), kSchemaVersion);
  EXPECT_EQ(store->GetExperiment(1)->searcher_snapshot, "from schema 2");
  ASSERT_TRUE(store->SaveSearcherSnapshot(1, "new").ok());
  EXPECT_EQ(store->GetExperiment(1)->searcher_snapshot, "new");
  EXPECT_EQ((*store->ListNonTerminalExperiments())[0].searcher_snapshot, "new");
  EXPECT_EQ(backend_->RawSql("SELECT searcher_snapshot FROM experiments"),
            "from schema 2");
  EXPECT_EQ(backend_->RawSql("SELECT count(*) FROM searcher_snapshots"), "1");
}

// A master killed between "mark DELETING" and "mark DELETED" finds, after
// the restart, exactly the checkpoints it must finish deleting.
TEST_P(StoreFilesTest, DeletingCheckpointsSurviveARestart) {
  {
    std::unique_ptr<Store> store = OpenOrDie();
    ASSERT_NE(store, nullptr);
    ASSERT_EQ(*store->AddExperiment(ExperimentRecord{}), 1);
    TrialRecord t;
    t.trial.set_experiment_id(1);
    ASSERT_EQ(*store->AddTrial(t), 1);
    for (const char* uuid : {"keep", "going", "gone"}) {
      v1::Checkpoint c;
      c.set_trial_id(1);
      c.set_uuid(uuid);
      ASSERT_TRUE(store->AddCheckpoint(c).ok());
    }
    ASSERT_TRUE(
        store->SetCheckpointState("going", v1::CHECKPOINT_STATE_DELETING).ok());
    ASSERT_TRUE(
        store->SetCheckpointState("gone", v1::CHECKPOINT_STATE_DELETING).ok());
    ASSERT_TRUE(
        store->SetCheckpointState("gone", v1::CHECKPOINT_STATE_DELETED).ok());
  }
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  auto deleting = store->ListCheckpointsInState(v1::CHECKPOINT_STATE_DELETING);
  ASSERT_TRUE(deleting.ok()) << deleting.status();
  ASSERT_EQ(deleting->size(), 1u);
  EXPECT_EQ((*deleting)[0].uuid(), "going");
  auto active = store->ListCheckpoints(1);
  ASSERT_EQ(active->size(), 1u);
  EXPECT_EQ((*active)[0].uuid(), "keep");
}

// Checkpoints stored before schema 4 had no state: they come back ACTIVE.
TEST_P(StoreFilesTest, CheckpointsOfSchemaThreeAreActive) {
  {
    std::unique_ptr<Store> store = OpenOrDie();
    ASSERT_NE(store, nullptr);
    ASSERT_EQ(*store->AddExperiment(ExperimentRecord{}), 1);
    TrialRecord t;
    t.trial.set_experiment_id(1);
    ASSERT_EQ(*store->AddTrial(t), 1);
    v1::Checkpoint c;
    c.set_trial_id(1);
    c.set_uuid("old");
    ASSERT_TRUE(store->AddCheckpoint(c).ok());
  }
  backend_->RawSql("DROP INDEX checkpoints_by_state");
  backend_->RawSql("ALTER TABLE checkpoints DROP COLUMN state");
  backend_->SetSchemaVersion(3);

  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(backend_->SchemaVersion(), kSchemaVersion);
  auto list = store->ListCheckpoints(1);
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].state(), v1::CHECKPOINT_STATE_ACTIVE);
  EXPECT_TRUE(
      store->SetCheckpointState("old", v1::CHECKPOINT_STATE_DELETING).ok());
}

TEST_P(StoreFilesTest, NewerSchemaIsRefused) {
  { ASSERT_NE(OpenOrDie(), nullptr); }
  backend_->SetSchemaVersion(kSchemaVersion + 1);
  absl::StatusOr<std::unique_ptr<Store>> s = backend_->Open();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.status().message(), HasSubstr("newer"));
  EXPECT_THAT(s.status().message(), HasSubstr(backend_->Locator()));
  // Refusing did not touch the database.
  EXPECT_EQ(backend_->SchemaVersion(), kSchemaVersion + 1);
}

TEST_P(StoreFilesTest, FailedMigrationLeavesTheDatabaseAsItWas) {
  // An unversioned database whose table clashes with the schema: the first
  // migration fails half-way and must leave nothing behind.
  backend_->RawSql("CREATE TABLE trials (x INTEGER)");
  absl::StatusOr<std::unique_ptr<Store>> s = backend_->Open();
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(s.status().message(), HasSubstr("schema version 1"));
  EXPECT_THAT(s.status().message(), HasSubstr("already exists"));
  EXPECT_EQ(backend_->SchemaVersion(), 0);
  EXPECT_EQ(backend_->TableCount(), 1);  // only the clashing one
}

TEST_P(StoreFilesTest, ConcurrentWritersDoNotCorrupt) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  ExperimentRecord e;
  ASSERT_EQ(*store->AddExperiment(e), 1);
  constexpr int kThreads = 8;
  constexpr int kReports = 200;
  std::vector<int64_t> trials;
  for (int i = 0; i < kThreads; ++i) {
    TrialRecord t;
    t.trial.set_experiment_id(1);
    trials.push_back(*store->AddTrial(t));
  }
  std::vector<std::thread> threads;
  std::vector<int> stored(kThreads, 0);
  std::vector<int> failures(kThreads, 0);
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int n = 0; n < kReports; ++n) {
        // Each thread writes its own trial's reports, and every report of
        // the next thread's trial too: half of all inserts race on a key.
        for (int64_t trial : {trials[i], trials[(i + 1) % kThreads]}) {
          v1::MetricReport r;
          r.set_trial_id(trial);
          r.set_group(v1::METRIC_GROUP_TRAINING);
          r.set_steps_completed(n);
          absl::StatusOr<bool> ok = store->AddMetricReport(r);
          if (!ok.ok())
            ++failures[i];
          else if (*ok)
            ++stored[i];
        }
        if (n % 20 == 0) {
          // Transactions interleave with single writes.
          absl::Status s = store->RunInTransaction([&]() -> absl::Status {
            v1::LogLine line;
            line.set_line("thread " + std::to_string(i));
            if (absl::Status s = store->AddLogs(trials[i], {line, line});
                !s.ok()) {
              return s;
            }
            return store->SetWorkerSeq("w" + std::to_string(i), n);
          });
          if (!s.ok()) ++failures[i];
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();

  int total = 0;
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(failures[i], 0);
    total += stored[i];
  }
  // Every key stored exactly once, whichever thread won it.
  EXPECT_EQ(total, kThreads * kReports);
  for (int i = 0; i < kThreads; ++i) {
    auto reports =
        store->GetMetricReports(trials[i], v1::METRIC_GROUP_TRAINING);
    ASSERT_TRUE(reports.ok());
    ASSERT_EQ(reports->size(), static_cast<size_t>(kReports));
    for (int n = 0; n < kReports; ++n) {
      EXPECT_EQ((*reports)[n].steps_completed(), n);
    }
    EXPECT_EQ(store->GetLogs(trials[i], 0, 1000)->size(), 2u * (kReports / 20));
    EXPECT_EQ(*store->GetWorkerSeq("w" + std::to_string(i)), 180);
  }
  store.reset();
  EXPECT_EQ(backend_->CheckIntegrity(), "ok");
}

// Not a pass/fail test of speed: prints how many metric reports per second
// the store takes when the master batches them in transactions.
TEST_P(StoreFilesTest, BulkInsertMeasurement) {
  std::unique_ptr<Store> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  ExperimentRecord e;
  ASSERT_EQ(*store->AddExperiment(e), 1);
  TrialRecord t;
  t.trial.set_experiment_id(1);
  int64_t trial = *store->AddTrial(t);

  constexpr int kReports = 20000;
  constexpr int kBatch = 500;
  v1::MetricReport r;
  r.set_trial_id(trial);
  r.set_group(v1::METRIC_GROUP_TRAINING);
  (*r.mutable_metrics())["loss"] = 1.5;
  (*r.mutable_metrics())["accuracy"] = 0.4;
  (*r.mutable_metrics())["images_per_second"] = 900;

  auto start = std::chrono::steady_clock::now();
  for (int b = 0; b < kReports / kBatch; ++b) {
    ASSERT_TRUE(store
                    ->RunInTransaction([&]() -> absl::Status {
                      for (int i = 0; i < kBatch; ++i) {
                        r.set_steps_completed(static_cast<int64_t>(b) * kBatch +
                                              i);
                        absl::StatusOr<bool> ok = store->AddMetricReport(r);
                        if (!ok.ok()) return ok.status();
                      }
                      return absl::OkStatus();
                    })
                    .ok());
  }
  double batched_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();

  constexpr int kSingles = 1000;
  start = std::chrono::steady_clock::now();
  for (int i = 0; i < kSingles; ++i) {
    r.set_steps_completed(kReports + i);
    ASSERT_TRUE(store->AddMetricReport(r).ok());
  }
  double single_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();

  EXPECT_EQ(store->GetMetricReports(trial, v1::METRIC_GROUP_TRAINING)->size(),
            static_cast<size_t>(kReports + kSingles));
  std::printf(
      "[ measure  ] metric reports, %s: "
      "%.0f/s in transactions of %d, %.0f/s one per transaction\n",
      GetParam().name.c_str(), kReports / batched_s, kBatch,
      kSingles / single_s);
  RecordProperty("batched_reports_per_second",
                 static_cast<int>(kReports / batched_s));
  RecordProperty("single_reports_per_second",
                 static_cast<int>(kSingles / single_s));
}

INSTANTIATE_TEST_SUITE_P(Store, StoreFilesTest,
                         ::testing::ValuesIn(TestBackends(true)), BackendName);

}  // namespace
}  // namespace det::store
