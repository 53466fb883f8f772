// Every Store (SQLite on a private in-memory database, PostgreSQL on a
// schema of its own): every method, transactions, and strings that look
// like SQL. Instantiated per backend by store_*_main.cc.
#include "master/store/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "tests/store/store_backend.h"

namespace det::store {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

class StoreTest : public ::testing::TestWithParam<BackendParam> {
 protected:
  void SetUp() override {
    backend_ = GetParam().make();
    if (std::string why = backend_->Unavailable(); !why.empty()) {
      GTEST_SKIP() << why;
    }
    backend_->SetUp();
    absl::StatusOr<std::unique_ptr<Store>> s = backend_->Open();
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    if (backend_ != nullptr && backend_->Unavailable().empty()) {
      backend_->TearDown();
    }
  }

  int64_t AddExperiment(const std::string& name,
                        v1::State state = v1::STATE_ACTIVE) {
    ExperimentRecord r;
    r.experiment.set_name(name);
    r.experiment.set_state(state);
    r.experiment.set_config_yaml("name: " + name + "\n");
    r.context = "ctx-" + name;
    r.searcher_snapshot = "snap-" + name;
    absl::StatusOr<int64_t> id = store_->AddExperiment(r);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or(0);
  }

  int64_t AddTrial(int64_t experiment_id, int64_t request_id = 1) {
    TrialRecord t;
    t.trial.set_experiment_id(experiment_id);
    t.trial.set_state(v1::STATE_QUEUED);
    t.request_id = request_id;
    absl::StatusOr<int64_t> id = store_->AddTrial(t);
    EXPECT_TRUE(id.ok()) << id.status();
    return id.value_or(0);
  }

  static v1::MetricReport Report(int64_t trial, v1::MetricGroup group,
                                 int64_t steps, double value) {
    v1::MetricReport r;
    r.set_trial_id(trial);
    r.set_group(group);
    r.set_steps_completed(steps);
    r.set_time_us(1000 + steps);
    (*r.mutable_metrics())["loss"] = value;
    return r;
  }

  static v1::LogLine Line(const std::string& text) {
    v1::LogLine l;
    l.set_time_us(7);
    l.set_source("stdout");
    l.set_line(text);
    return l;
  }

  std::unique_ptr<StoreBackend> backend_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreTest, ClusterIdIsAUuidAndStable) {
  absl::StatusOr<std::string> id = store_->ClusterId();
  ASSERT_TRUE(id.ok());
  EXPECT_THAT(*id, MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-"
                                "[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
  EXPECT_EQ(*store_->ClusterId(), *id);
  auto other = backend_->OpenOther();
  ASSERT_TRUE(other.ok());
  EXPECT_NE(*(*other)->ClusterId(), *id);
}

TEST_P(StoreTest, ExperimentsRoundTrip) {
  EXPECT_EQ(AddExperiment("a"), 1);
  EXPECT_EQ(AddExperiment("b"), 2);

  absl::StatusOr<ExperimentRecord> a = store_->GetExperiment(1);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->experiment.id(), 1);
  EXPECT_EQ(a->experiment.name(), "a");
  EXPECT_EQ(a->experiment.config_yaml(), "name: a\n");
  EXPECT_EQ(a->context, "ctx-a");
  EXPECT_EQ(a->searcher_snapshot, "snap-a");

  absl::StatusOr<ExperimentRecord> missing = store_->GetExperiment(3);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("experiment 3"));
}

TEST_P(StoreTest, AddExperimentKeepsBinaryContext) {
  ExperimentRecord r;
  r.experiment.set_name("bin");
  r.context = std::string("\x1f\x8b\0\0\xff", 5);
  absl::StatusOr<int64_t> id = store_->AddExperiment(r);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(store_->GetExperiment(*id)->context, r.context);
}

TEST_P(StoreTest, UpdateExperimentReplacesTheMessageButNotBlobs) {
  int64_t id = AddExperiment("a");
  v1::Experiment e = store_->GetExperiment(id)->experiment;
  e.set_state(v1::STATE_PAUSED);
  e.set_progress(0.5);
  (*e.mutable_best_validation_metrics())["validation_accuracy"] = 0.7;
  ASSERT_TRUE(store_->UpdateExperiment(e).ok());

  ExperimentRecord got = *store_->GetExperiment(id);
  EXPECT_EQ(got.experiment.state(), v1::STATE_PAUSED);
  EXPECT_DOUBLE_EQ(got.experiment.progress(), 0.5);
  EXPECT_DOUBLE_EQ(
      got.experiment.best_validation_metrics().at("validation_accuracy"), 0.7);
  EXPECT_EQ(got.context, "ctx-a");
  EXPECT_EQ(got.searcher_snapshot, "snap-a");

  e.set_id(42);
  EXPECT_EQ(store_->UpdateExperiment(e).code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, SaveSearcherSnapshot) {
  int64_t id = AddExperiment("a");
  ASSERT_TRUE(store_->SaveSearcherSnapshot(id, "state-2").ok());
  EXPECT_EQ(store_->GetExperiment(id)->searcher_snapshot, "state-2");
  EXPECT_EQ(store_->SaveSearcherSnapshot(99, "x").code(),
            absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, ListExperimentsInIdOrder) {
  AddExperiment("a");
  AddExperiment("b");
  AddExperiment("c");
  absl::StatusOr<std::vector<v1::Experiment>> list = store_->ListExperiments();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].id(), 1);
  EXPECT_EQ((*list)[0].name(), "a");
  EXPECT_EQ((*list)[2].id(), 3);
  EXPECT_EQ((*list)[2].name(), "c");
}

TEST_P(StoreTest, ListNonTerminalExperiments) {
  AddExperiment("active", v1::STATE_ACTIVE);
  AddExperiment("done", v1::STATE_COMPLETED);
  AddExperiment("paused", v1::STATE_PAUSED);
  AddExperiment("canceled", v1::STATE_CANCELED);
  AddExperiment("stopping", v1::STATE_STOPPING_KILLED);
  AddExperiment("failed", v1::STATE_ERROR);
  // A state change moves an experiment out of the list.
  int64_t finishing = AddExperiment("finishing", v1::STATE_ACTIVE);
  v1::Experiment e = store_->GetExperiment(finishing)->experiment;
  e.set_state(v1::STATE_COMPLETED);
  ASSERT_TRUE(store_->UpdateExperiment(e).ok());

  absl::StatusOr<std::vector<ExperimentRecord>> list =
      store_->ListNonTerminalExperiments();
  ASSERT_TRUE(list.ok());
  std::vector<std::string> names;
  for (const ExperimentRecord& r : *list) names.push_back(r.experiment.name());
  EXPECT_THAT(names, ElementsAre("active", "paused", "stopping"));
  EXPECT_EQ((*list)[1].context, "ctx-paused");
  EXPECT_EQ((*list)[1].searcher_snapshot, "snap-paused");
  EXPECT_EQ((*list)[1].experiment.id(), 3);
}

TEST_P(StoreTest, TrialsRoundTrip) {
  int64_t e1 = AddExperiment("a");
  int64_t e2 = AddExperiment("b");
  TrialRecord t;
  t.trial.set_experiment_id(e1);
  t.trial.set_state(v1::STATE_ACTIVE);
  t.trial.set_seed(1234);
  (*t.trial.mutable_hparams()->mutable_fields())["learning_rate"]
      .set_number_value(0.01);
  t.request_id = 17;
  t.run_id = 2;
  t.validation_points = {58, 234, 937};
  t.checkpoint_period = 100;
  absl::StatusOr<int64_t> id = store_->AddTrial(t);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, 1);
  EXPECT_EQ(AddTrial(e2), 2);  // ids are global
  EXPECT_EQ(AddTrial(e1, 18), 3);

  absl::StatusOr<TrialRecord> got = store_->GetTrial(1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->trial.id(), 1);
  EXPECT_EQ(got->trial.experiment_id(), e1);
  EXPECT_EQ(got->trial.seed(), 1234u);
  EXPECT_DOUBLE_EQ(
      got->trial.hparams().fields().at("learning_rate").number_value(), 0.01);
  EXPECT_EQ(got->request_id, 17);
  EXPECT_EQ(got->run_id, 2);
  EXPECT_THAT(got->validation_points, ElementsAre(58, 234, 937));
  EXPECT_EQ(got->checkpoint_period, 100);

  absl::StatusOr<std::vector<TrialRecord>> list = store_->ListTrials(e1);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].trial.id(), 1);
  EXPECT_EQ((*list)[1].trial.id(), 3);
  EXPECT_EQ((*list)[1].request_id, 18);
  EXPECT_TRUE(store_->ListTrials(99)->empty());

  EXPECT_EQ(store_->GetTrial(4).status().code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, AddTrialToMissingExperimentIsNotFound) {
  TrialRecord t;
  t.trial.set_experiment_id(5);
  absl::StatusOr<int64_t> id = store_->AddTrial(t);
  EXPECT_EQ(id.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(id.status().message(), HasSubstr("experiment 5 not found"));
}

TEST_P(StoreTest, UpdateTrial) {
  int64_t e = AddExperiment("a");
  int64_t id = AddTrial(e);
  TrialRecord t = *store_->GetTrial(id);
  t.trial.set_state(v1::STATE_COMPLETED);
  t.trial.set_steps_completed(937);
  t.trial.set_exit_reason(v1::EXIT_REASON_COMPLETED);
  t.run_id = 3;
  t.validation_points = {10};
  ASSERT_TRUE(store_->UpdateTrial(t).ok());

  TrialRecord got = *store_->GetTrial(id);
  EXPECT_EQ(got.trial.state(), v1::STATE_COMPLETED);
  EXPECT_EQ(got.trial.steps_completed(), 937);
  EXPECT_EQ(got.trial.exit_reason(), v1::EXIT_REASON_COMPLETED);
  EXPECT_EQ(got.run_id, 3);
  EXPECT_THAT(got.validation_points, ElementsAre(10));

  t.trial.set_id(50);
  EXPECT_EQ(store_->UpdateTrial(t).code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, MetricReportsAreIdempotent) {
  int64_t trial = AddTrial(AddExperiment("a"));
  absl::StatusOr<bool> first = store_->AddMetricReport(
      Report(trial, v1::METRIC_GROUP_TRAINING, 10, 1.0));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(*first);
  // A resent report with the same key is not stored again, and does not
  // overwrite the first.
  absl::StatusOr<bool> again = store_->AddMetricReport(
      Report(trial, v1::METRIC_GROUP_TRAINING, 10, 9.0));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  // Same steps in the other group is another key.
  EXPECT_TRUE(*store_->AddMetricReport(
      Report(trial, v1::METRIC_GROUP_VALIDATION, 10, 0.5)));

  auto all = store_->GetMetricReports(trial, v1::METRIC_GROUP_TRAINING);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_DOUBLE_EQ((*all)[0].metrics().at("loss"), 1.0);
  EXPECT_EQ((*all)[0].time_us(), 1010);
}

TEST_P(StoreTest, MetricReportsOrderedByGroupThenSteps) {
  int64_t trial = AddTrial(AddExperiment("a"));
  int64_t other = AddTrial(1);
  for (int64_t steps : {30, 10, 20}) {
    ASSERT_TRUE(store_
                    ->AddMetricReport(
                        Report(trial, v1::METRIC_GROUP_VALIDATION, steps, 0.1))
                    .ok());
    ASSERT_TRUE(store_
                    ->AddMetricReport(
                        Report(trial, v1::METRIC_GROUP_TRAINING, steps, 0.2))
                    .ok());
  }
  ASSERT_TRUE(
      store_->AddMetricReport(Report(other, v1::METRIC_GROUP_TRAINING, 5, 0.3))
          .ok());

  auto all = store_->GetMetricReports(trial, v1::METRIC_GROUP_UNSPECIFIED);
  ASSERT_TRUE(all.ok());
  std::vector<std::pair<int, int64_t>> keys;
  for (const auto& r : *all) keys.emplace_back(r.group(), r.steps_completed());
  EXPECT_THAT(keys, ElementsAre(std::pair<int, int64_t>(1, 10),
                                std::pair<int, int64_t>(1, 20),
                                std::pair<int, int64_t>(1, 30),
                                std::pair<int, int64_t>(2, 10),
                                std::pair<int, int64_t>(2, 20),
                                std::pair<int, int64_t>(2, 30)));

  auto validation =
      store_->GetMetricReports(trial, v1::METRIC_GROUP_VALIDATION);
  ASSERT_TRUE(validation.ok());
  ASSERT_EQ(validation->size(), 3u);
  EXPECT_EQ((*validation)[0].steps_completed(), 10);
  EXPECT_EQ((*validation)[2].steps_completed(), 30);
  EXPECT_EQ(
      store_->GetMetricReports(other, v1::METRIC_GROUP_UNSPECIFIED)->size(),
      1u);
  EXPECT_TRUE(
      store_->GetMetricReports(99, v1::METRIC_GROUP_UNSPECIFIED)->empty());
}

TEST_P(StoreTest, BadMetricReportsAreRefused) {
  int64_t trial = AddTrial(AddExperiment("a"));
  auto no_group = store_->AddMetricReport(
      Report(trial, v1::METRIC_GROUP_UNSPECIFIED, 1, 0));
  EXPECT_EQ(no_group.status().code(), absl::StatusCode::kInvalidArgument);
  auto negative =
      store_->AddMetricReport(Report(trial, v1::METRIC_GROUP_TRAINING, -1, 0));
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
  auto unknown =
      store_->AddMetricReport(Report(77, v1::METRIC_GROUP_TRAINING, 1, 0));
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.status().message(), HasSubstr("trial 77 not found"));
  auto bad_group =
      store_->GetMetricReports(trial, static_cast<v1::MetricGroup>(9));
  EXPECT_EQ(bad_group.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, GetCheckpointFindsOneByUuidInAnyState) {
  int64_t trial = AddTrial(AddExperiment("warm"));
  v1::Checkpoint c;
  c.set_trial_id(trial);
  c.set_uuid("u-1");
  c.set_steps_completed(40);
  (*c.mutable_file_sha256())["model.pt"] = "abc";
  ASSERT_TRUE(store_->AddCheckpoint(c).ok());
  auto got = store_->GetCheckpoint("u-1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->trial_id(), trial);
  EXPECT_EQ(got->steps_completed(), 40);
  EXPECT_EQ(got->file_sha256().at("model.pt"), "abc");
  EXPECT_EQ(got->state(), v1::CHECKPOINT_STATE_ACTIVE);
  ASSERT_TRUE(
      store_->SetCheckpointState("u-1", v1::CHECKPOINT_STATE_DELETING).ok());
  EXPECT_EQ(store_->GetCheckpoint("u-1")->state(),
            v1::CHECKPOINT_STATE_DELETING);
  auto missing = store_->GetCheckpoint("nope");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("nope"));
}

TEST_P(StoreTest, CheckpointStatesGoForwardOnly) {
  int64_t trial = AddTrial(AddExperiment("gc"));
  for (const char* uuid : {"a", "b", "c"}) {
    v1::Checkpoint c;
    c.set_trial_id(trial);
    c.set_uuid(uuid);
    c.set_steps_completed(uuid[0]);
    c.set_state(v1::CHECKPOINT_STATE_DELETED);  // ignored: new ones are ACTIVE
    ASSERT_TRUE(store_->AddCheckpoint(c).ok());
  }
  auto list = store_->ListCheckpoints(trial);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].state(), v1::CHECKPOINT_STATE_ACTIVE);

  ASSERT_TRUE(
      store_->SetCheckpointState("a", v1::CHECKPOINT_STATE_DELETING).ok());
  ASSERT_TRUE(
      store_->SetCheckpointState("a", v1::CHECKPOINT_STATE_DELETING).ok());
  ASSERT_TRUE(
      store_->SetCheckpointState("b", v1::CHECKPOINT_STATE_DELETING).ok());
  ASSERT_TRUE(
      store_->SetCheckpointState("b", v1::CHECKPOINT_STATE_DELETED).ok());
  // ListCheckpoints: ACTIVE only, so neither is offered for a restore.
  list = store_->ListCheckpoints(trial);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].uuid(), "c");
  auto deleting = store_->ListCheckpointsInState(v1::CHECKPOINT_STATE_DELETING);
  ASSERT_TRUE(deleting.ok());
  ASSERT_EQ(deleting->size(), 1u);
  EXPECT_EQ((*deleting)[0].uuid(), "a");
  EXPECT_EQ((*deleting)[0].state(), v1::CHECKPOINT_STATE_DELETING);
  auto deleted = store_->ListCheckpointsInState(v1::CHECKPOINT_STATE_DELETED);
  ASSERT_EQ(deleted->size(), 1u);
  EXPECT_EQ((*deleted)[0].uuid(), "b");

  // Backwards or skipping a phase: refused, nothing changes.
  EXPECT_EQ(
      store_->SetCheckpointState("c", v1::CHECKPOINT_STATE_DELETED).code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(
      store_->SetCheckpointState("b", v1::CHECKPOINT_STATE_DELETING).code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(store_->SetCheckpointState("a", v1::CHECKPOINT_STATE_ACTIVE).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      store_->SetCheckpointState("a", v1::CHECKPOINT_STATE_UNSPECIFIED).code(),
      absl::StatusCode::kInvalidArgument);
  absl::Status unknown =
      store_->SetCheckpointState("zzz", v1::CHECKPOINT_STATE_DELETING);
  EXPECT_EQ(unknown.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.message(), HasSubstr("zzz"));
  EXPECT_EQ(
      store_->ListCheckpointsInState(v1::CHECKPOINT_STATE_DELETING)->size(),
      1u);
  EXPECT_EQ(store_->ListCheckpoints(trial)->size(), 1u);
}

TEST_P(StoreTest, CheckpointsIdempotentOnUuid) {
  int64_t trial = AddTrial(AddExperiment("a"));
  auto ckpt = [&](const std::string& uuid, int64_t steps) {
    v1::Checkpoint c;
    c.set_trial_id(trial);
    c.set_uuid(uuid);
    c.set_steps_completed(steps);
    c.set_size_bytes(steps * 10);
    (*c.mutable_file_sha256())["model.pt"] = "ab" + uuid;
    return c;
  };
  ASSERT_TRUE(store_->AddCheckpoint(ckpt("u-200", 200)).ok());
  ASSERT_TRUE(store_->AddCheckpoint(ckpt("u-100", 100)).ok());
  ASSERT_TRUE(store_->AddCheckpoint(ckpt("u-100", 100)).ok());  // resent
  ASSERT_TRUE(store_->AddCheckpoint(ckpt("u-300", 300)).ok());

  auto list = store_->ListCheckpoints(trial);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].uuid(), "u-100");
  EXPECT_EQ((*list)[2].uuid(), "u-300");  // latest last
  EXPECT_EQ((*list)[2].size_bytes(), 3000);
  EXPECT_EQ((*list)[2].file_sha256().at("model.pt"), "abu-300");

  ASSERT_TRUE(store_->DeleteCheckpoint("u-200").ok());
  ASSERT_TRUE(store_->DeleteCheckpoint("u-200").ok());  // idempotent
  list = store_->ListCheckpoints(trial);
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[1].uuid(), "u-300");

  EXPECT_EQ(store_->AddCheckpoint(ckpt("", 5)).code(),
            absl::StatusCode::kInvalidArgument);
  v1::Checkpoint orphan = ckpt("u-x", 1);
  orphan.set_trial_id(404);
  EXPECT_EQ(store_->AddCheckpoint(orphan).code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreTest, LogsPageByIdAndLimit) {
  int64_t e = AddExperiment("a");
  int64_t t1 = AddTrial(e);
  int64_t t2 = AddTrial(e);
  ASSERT_TRUE(store_->AddLogs(t1, {Line("one"), Line("two")}).ok());
  ASSERT_TRUE(store_->AddLogs(t2, {Line("other")}).ok());
  ASSERT_TRUE(store_->AddLogs(t1, {Line("three")}).ok());
  ASSERT_TRUE(store_->AddLogs(t1, {}).ok());

  auto all = store_->GetLogs(t1, 0, 100);
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].line(), "one");
  EXPECT_EQ((*all)[0].trial_id(), t1);
  EXPECT_EQ((*all)[0].source(), "stdout");
  EXPECT_EQ((*all)[0].time_us(), 7);
  EXPECT_EQ((*all)[2].line(), "three");
  EXPECT_LT((*all)[0].id(), (*all)[1].id());
  EXPECT_LT((*all)[1].id(), (*all)[2].id());

  auto after = store_->GetLogs(t1, (*all)[0].id(), 1);
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].line(), "two");
  EXPECT_TRUE(store_->GetLogs(t1, (*all)[2].id(), 10)->empty());
  EXPECT_EQ(store_->GetLogs(t1, 0, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, LogsOfUnknownTrialStoreNothing) {
  EXPECT_EQ(store_->AddLogs(9, {Line("a"), Line("b")}).code(),
            absl::StatusCode::kNotFound);
  int64_t trial = AddTrial(AddExperiment("a"));
  ASSERT_TRUE(store_->AddLogs(trial, {Line("first")}).ok());
  // The first id handed out after a failed batch continues the sequence;
  // no line of the failed batch exists under any trial.
  auto logs = store_->GetLogs(trial, 0, 10);
  ASSERT_EQ(logs->size(), 1u);
  EXPECT_TRUE(store_->GetLogs(9, 0, 10)->empty());
}

TEST_P(StoreTest, AgentsUpsert) {
  v1::Agent a;
  a.set_id("w2");
  a.set_connected(true);
  a.add_slots()->set_type("cpu");
  ASSERT_TRUE(store_->UpsertAgent(a).ok());
  v1::Agent b;
  b.set_id("w1");
  ASSERT_TRUE(store_->UpsertAgent(b).ok());
  a.set_connected(false);
  a.add_slots()->set_type("cpu");
  ASSERT_TRUE(store_->UpsertAgent(a).ok());

  auto list = store_->ListAgents();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].id(), "w1");
  EXPECT_EQ((*list)[1].id(), "w2");
  EXPECT_FALSE((*list)[1].connected());
  EXPECT_EQ((*list)[1].slots_size(), 2);
  EXPECT_EQ(store_->UpsertAgent(v1::Agent()).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, WorkerSeq) {
  EXPECT_EQ(*store_->GetWorkerSeq("w1"), 0);
  ASSERT_TRUE(store_->SetWorkerSeq("w1", 5).ok());
  ASSERT_TRUE(store_->SetWorkerSeq("w2", 9).ok());
  ASSERT_TRUE(store_->SetWorkerSeq("w1", 12).ok());
  EXPECT_EQ(*store_->GetWorkerSeq("w1"), 12);
  EXPECT_EQ(*store_->GetWorkerSeq("w2"), 9);
  EXPECT_EQ(store_->SetWorkerSeq("", 1).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, StringsThatLookLikeSqlAreStoredVerbatim) {
  const std::string evil = "x'); DROP TABLE experiments; --";
  const std::string quote = "O'Brien \"quoted\" ; -- ?1 :name @p $v";
  ExperimentRecord r;
  r.experiment.set_name(evil);
  r.experiment.set_config_yaml(quote);
  int64_t e = *store_->AddExperiment(r);
  int64_t trial = AddTrial(e);
  ASSERT_TRUE(store_->AddLogs(trial, {Line(evil), Line(quote)}).ok());
  v1::Agent a;
  a.set_id(evil);
  ASSERT_TRUE(store_->UpsertAgent(a).ok());
  ASSERT_TRUE(store_->SetWorkerSeq(quote, 3).ok());
  v1::Checkpoint c;
  c.set_trial_id(trial);
  c.set_uuid(evil);
  ASSERT_TRUE(store_->AddCheckpoint(c).ok());

  EXPECT_EQ(store_->GetExperiment(e)->experiment.name(), evil);
  EXPECT_EQ(store_->GetExperiment(e)->experiment.config_yaml(), quote);
  auto logs = store_->GetLogs(trial, 0, 10);
  ASSERT_EQ(logs->size(), 2u);
  EXPECT_EQ((*logs)[0].line(), evil);
  EXPECT_EQ((*logs)[1].line(), quote);
  EXPECT_EQ((*store_->ListAgents())[0].id(), evil);
  EXPECT_EQ(*store_->GetWorkerSeq(quote), 3);
  EXPECT_EQ(*store_->GetWorkerSeq("O'Brien"), 0);
  EXPECT_EQ((*store_->ListCheckpoints(trial))[0].uuid(), evil);
  // Every table is still there and whole.
  EXPECT_EQ(store_->ListExperiments()->size(), 1u);
  ASSERT_TRUE(store_->DeleteCheckpoint(evil).ok());
  EXPECT_TRUE(store_->ListCheckpoints(trial)->empty());
}

TEST_P(StoreTest, TransactionCommits) {
  int64_t e = AddExperiment("a");
  int64_t trial = 0;
  absl::Status s = store_->RunInTransaction([&]() -> absl::Status {
    TrialRecord t;
    t.trial.set_experiment_id(e);
    absl::StatusOr<int64_t> id = store_->AddTrial(t);
    if (!id.ok()) return id.status();
    trial = *id;
    if (auto r = store_->AddMetricReport(
            Report(trial, v1::METRIC_GROUP_VALIDATION, 5, 0.1));
        !r.ok()) {
      return r.status();
    }
    // Reads inside the transaction see its own writes.
    if (store_->GetMetricReports(trial, v1::METRIC_GROUP_UNSPECIFIED)->size() !=
        1) {
      return absl::InternalError("own write not visible");
    }
    return store_->SaveSearcherSnapshot(e, "after");
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_TRUE(store_->GetTrial(trial).ok());
  EXPECT_EQ(
      store_->GetMetricReports(trial, v1::METRIC_GROUP_UNSPECIFIED)->size(),
      1u);
  EXPECT_EQ(store_->GetExperiment(e)->searcher_snapshot, "after");
}

TEST_P(StoreTest, TransactionRollsBackOnError) {
  int64_t e = AddExperiment("a");
  int64_t trial = AddTrial(e);
  absl::Status s = store_->RunInTransaction([&]() -> absl::Status {
    EXPECT_TRUE(store_->SaveSearcherSnapshot(e, "lost").ok());
    EXPECT_TRUE(
        store_->AddMetricReport(Report(trial, v1::METRIC_GROUP_TRAINING, 1, 1))
            .ok());
    EXPECT_TRUE(store_->AddLogs(trial, {Line("lost")}).ok());
    return absl::AbortedError("searcher said no");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(s.message(), "searcher said no");
  EXPECT_EQ(store_->GetExperiment(e)->searcher_snapshot, "snap-a");
  EXPECT_TRUE(
      store_->GetMetricReports(trial, v1::METRIC_GROUP_UNSPECIFIED)->empty());
  EXPECT_TRUE(store_->GetLogs(trial, 0, 10)->empty());
  // The store is usable afterwards, and the rolled-back key is free again.
  EXPECT_TRUE(
      *store_->AddMetricReport(Report(trial, v1::METRIC_GROUP_TRAINING, 1, 1)));
}

TEST_P(StoreTest, NestedTransactionJoinsTheOuterOne) {
  int64_t e = AddExperiment("a");
  int64_t trial = AddTrial(e);
  absl::Status s = store_->RunInTransaction([&]() -> absl::Status {
    EXPECT_TRUE(store_->SaveSearcherSnapshot(e, "outer").ok());
    EXPECT_TRUE(store_
                    ->RunInTransaction([&]() -> absl::Status {
                      return store_
                          ->AddMetricReport(
                              Report(trial, v1::METRIC_GROUP_TRAINING, 1, 1))
                          .status();
                    })
                    .ok());
    return absl::InternalError("outer fails after inner succeeded");
  });
  EXPECT_FALSE(s.ok());
  // Inner work was part of the outer transaction: rolled back with it.
  EXPECT_EQ(store_->GetExperiment(e)->searcher_snapshot, "snap-a");
  EXPECT_TRUE(
      store_->GetMetricReports(trial, v1::METRIC_GROUP_UNSPECIFIED)->empty());
}

TEST_P(StoreTest, FailedNestedTransactionRollsBackOnlyItself) {
  int64_t e = AddExperiment("a");
  int64_t trial = AddTrial(e);
  absl::Status s = store_->RunInTransaction([&]() -> absl::Status {
    EXPECT_TRUE(store_->SaveSearcherSnapshot(e, "outer").ok());
    absl::Status inner = store_->RunInTransaction([&]() -> absl::Status {
      EXPECT_TRUE(store_->AddLogs(trial, {Line("inner")}).ok());
      return absl::CancelledError("inner gives up");
    });
    EXPECT_EQ(inner.code(), absl::StatusCode::kCancelled);
    // Three levels deep, succeeding.
    return store_->RunInTransaction([&]() -> absl::Status {
      return store_->RunInTransaction([&]() -> absl::Status {
        return store_->AddLogs(trial, {Line("kept")});
      });
    });
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(store_->GetExperiment(e)->searcher_snapshot, "outer");
  auto logs = store_->GetLogs(trial, 0, 10);
  ASSERT_EQ(logs->size(), 1u);
  EXPECT_EQ((*logs)[0].line(), "kept");
}

TEST_P(StoreTest, OtherThreadsDoNotJoinATransaction) {
  int64_t e = AddExperiment("a");
  int64_t trial = AddTrial(e);
  std::thread other;
  absl::Notification started;
  absl::Status other_status;
  absl::Status s = store_->RunInTransaction([&]() -> absl::Status {
    EXPECT_TRUE(store_->AddLogs(trial, {Line("rolled back")}).ok());
    other = std::thread([&] {
      started.Notify();
      // Waits for the transaction to end, then commits on its own.
      other_status = store_->AddLogs(trial, {Line("independent")});
    });
    started.WaitForNotification();
    return absl::AbortedError("roll back");
  });
  other.join();
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  ASSERT_TRUE(other_status.ok()) << other_status;
  auto logs = store_->GetLogs(trial, 0, 10);
  ASSERT_EQ(logs->size(), 1u);
  EXPECT_EQ((*logs)[0].line(), "independent");
}

TEST_P(StoreTest, WriteObserverSeesWritesAndTransactions) {
  int calls = 0;
  absl::Duration total;
  backend_->SetWriteObserver(store_.get(), [&](absl::Duration d) {
    ++calls;
    total += d;
  });
  int64_t e = AddExperiment("a");
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(store_
                  ->RunInTransaction([&]() -> absl::Status {
                    AddTrial(e);
                    AddTrial(e);
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(calls, 2);  // one for the whole transaction
  store_->ListExperiments().IgnoreError();
  store_->GetExperiment(e).IgnoreError();
  EXPECT_EQ(calls, 2);  // reads are not writes
  EXPECT_GE(total, absl::ZeroDuration());
  backend_->SetWriteObserver(store_.get(), nullptr);
  AddExperiment("b");
  EXPECT_EQ(calls, 2);
}

// An experiment's checkpoints in every state, one by uuid; nothing of
// another experiment.
TEST_P(StoreTest, CheckpointsOfAnExperimentInEveryState) {
  int64_t e = AddExperiment("gc");
  int64_t t1 = AddTrial(e, 1), t2 = AddTrial(e, 2);
  int64_t other = AddTrial(AddExperiment("other"));
  auto add = [&](int64_t trial, const std::string& uuid, int64_t steps) {
    v1::Checkpoint c;
    c.set_trial_id(trial);
    c.set_uuid(uuid);
    c.set_steps_completed(steps);
    (*c.mutable_file_sha256())["state.json"] = "ab";
    ASSERT_TRUE(store_->AddCheckpoint(c).ok());
  };
  add(t2, "t2-a", 5);
  add(t1, "t1-b", 20);
  add(t1, "t1-a", 10);
  add(other, "o", 1);
  ASSERT_TRUE(
      store_->SetCheckpointState("t1-a", v1::CHECKPOINT_STATE_DELETING).ok());
  ASSERT_TRUE(
      store_->SetCheckpointState("t1-a", v1::CHECKPOINT_STATE_DELETED).ok());
  auto list = store_->ListExperimentCheckpoints(e);
  ASSERT_TRUE(list.ok()) << list.status();
  std::vector<std::string> uuids;
  for (const auto& c : *list) uuids.push_back(c.uuid());
  EXPECT_THAT(uuids, ::testing::ElementsAre("t1-a", "t1-b", "t2-a"));
  EXPECT_EQ((*list)[0].state(), v1::CHECKPOINT_STATE_DELETED);
  EXPECT_EQ((*list)[1].state(), v1::CHECKPOINT_STATE_ACTIVE);
  EXPECT_TRUE(store_->ListExperimentCheckpoints(9999)->empty());

  auto one = store_->GetCheckpoint("t1-a");
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->trial_id(), t1);
  EXPECT_EQ(one->steps_completed(), 10);
  EXPECT_EQ(one->state(), v1::CHECKPOINT_STATE_DELETED);
  EXPECT_EQ(one->file_sha256().at("state.json"), "ab");
  EXPECT_EQ(store_->GetCheckpoint("nope").status().code(),
            absl::StatusCode::kNotFound);
}

// DeleteExperiment takes everything of the experiment and nothing else.
TEST_P(StoreTest, DeleteExperimentRemovesAllOfIt) {
  int64_t e = AddExperiment("doomed", v1::STATE_COMPLETED);
  int64_t keep = AddExperiment("kept", v1::STATE_COMPLETED);
  int64_t t = AddTrial(e), kt = AddTrial(keep);
  for (int64_t trial : {t, kt}) {
    ASSERT_TRUE(store_
                    ->AddMetricReport(
                        Report(trial, v1::METRIC_GROUP_VALIDATION, 10, 0.5))
                    .ok());
    v1::Checkpoint c;
    c.set_trial_id(trial);
    c.set_uuid(absl::StrCat("c", trial));
    ASSERT_TRUE(store_->AddCheckpoint(c).ok());
    v1::LogLine line;
    line.set_line("hello");
    ASSERT_TRUE(store_->AddLogs(trial, {line}).ok());
  }
  ASSERT_TRUE(store_->AppendSearcherEvent(e, "ev").ok());
  ASSERT_TRUE(store_->SaveSearcherSnapshot(e, "snap").ok());
  ASSERT_TRUE(store_->DeleteExperiment(e).ok());
  EXPECT_EQ(store_->GetExperiment(e).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetTrial(t).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->GetCheckpoint(absl::StrCat("c", t)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->ListTrials(e)->empty());
  EXPECT_TRUE(store_->ListSearcherEvents(e)->empty());
  EXPECT_EQ(store_->ListExperiments()->size(), 1u);
  // The other experiment is whole.
  EXPECT_TRUE(store_->GetTrial(kt).ok());
  EXPECT_TRUE(store_->GetCheckpoint(absl::StrCat("c", kt)).ok());
  EXPECT_EQ(store_->GetMetricReports(kt, v1::METRIC_GROUP_VALIDATION)->size(),
            1u);
  EXPECT_EQ(store_->GetLogs(kt, 0, 10)->size(), 1u);
  EXPECT_EQ(store_->DeleteExperiment(e).code(), absl::StatusCode::kNotFound);
}

INSTANTIATE_TEST_SUITE_P(Store, StoreTest,
                         ::testing::ValuesIn(TestBackends(false)), BackendName);

}  // namespace
}  // namespace det::store
