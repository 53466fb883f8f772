// Warm starts (searcher.source_trial_id / source_checkpoint_uuid) and
// `det experiment continue`, in process: the master, a SQLite store and a
// worker played by the test (its Hello, its outbox, the trial events it
// would relay). These would fail if a warm-started trial's StartTrial
// lacked the checkpoint, its SHA-256s or the source experiment's folder,
// if the source were looked up again later (Determined resolves it once),
// if a bad source were accepted, or if continue made a new trial or lost
// the old one's checkpoints.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/version.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "master/core/master.h"
#include "master/store/sqlite_store.h"
#include "tests/master/forwarding_store.h"
#include "tests/master/worker_hello.h"
#include "tests/testing/temp_dir.h"

namespace det::master {
namespace {

using ::det::testing::MakeHello;

using ::testing::HasSubstr;

// A single-trial source experiment, its checkpoints under `storage`.
std::string SourceYaml(const std::string& storage) {
  return absl::StrCat(R"(name: source
entrypoint: /bin/true
hyperparameters:
  x: 1
reproducibility: {experiment_seed: 3}
checkpoint_storage: {type: shared_fs, host_path: )",
                      storage, R"(}
searcher:
  name: single
  metric: loss
  max_length: {batches: 10}
max_restarts: 0
)");
}

class WarmStartTest : public ::testing::Test {
 protected:
  void TearDown() override { master_.reset(); }

  // Opens the master (again: a restart) and connects w0, which still runs
  // `running`.
  void Open(const std::vector<v1::StartTrial>& running = {},
            const std::string& worker_checkpoint_root = "") {
    master_.reset();
    auto sq = store::SqliteStore::Open(dir_.File("master.db"));
    ASSERT_TRUE(sq.ok()) << sq.status();
    auto fs = std::make_unique<testing::ForwardingStore>(std::move(*sq));
    store_ = fs.get();
    MasterOptions opts;
    opts.checkpoint_root = dir_.File("default-root");
    opts.tick_interval = absl::ZeroDuration();
    auto m = Master::Create(std::move(fs), opts);
    ASSERT_TRUE(m.ok()) << m.status();
    master_ = std::move(*m);
    out_ = std::make_shared<WorkerOutbox>();
    v1::Hello hello = MakeHello("w0", 8);
    hello.set_checkpoint_root(worker_checkpoint_root);
    ::det::testing::AddRunning(running, &hello);
    ASSERT_TRUE(master_->WorkerConnected(hello, "ipv4:1", out_).ok());
  }

  std::vector<v1::StartTrial> Starts() {
    return ::det::testing::PopStartTrials(*out_);
  }

  void Send(int64_t trial, int32_t run,
            const std::function<void(v1::TrialEvent*)>& fill) {
    ::det::testing::SendTrialEvent(*master_, "w0", &seq_, trial, run, fill);
  }
  void Checkpoint(int64_t trial, int32_t run, const std::string& uuid,
                  int64_t steps) {
    Send(trial, run, [&](v1::TrialEvent* ev) {
      v1::Checkpoint* c = ev->mutable_checkpoint();
      c->set_trial_id(trial);
      c->set_uuid(uuid);
      c->set_steps_completed(steps);
      (*c->mutable_file_sha256())["model.pt"] = absl::StrCat("sha-", uuid);
    });
  }
  void Exit(int64_t trial, int32_t run, v1::ExitReason reason, int64_t steps) {
    Send(trial, run, [&](v1::TrialEvent* ev) {
      ev->mutable_exited()->set_reason(reason);
      ev->mutable_exited()->set_steps_completed(steps);
    });
  }
  // Creates the source experiment and runs its trial: checkpoints "c5" and
  // "c10", then it completes. Returns the trial id.
  int64_t RunSource() {
    auto x = master_->CreateExperiment(SourceYaml(dir_.File("source-ckpts")),
                                       "", true, false, nullptr);
    EXPECT_TRUE(x.ok()) << x.status();
    std::vector<v1::StartTrial> starts = Starts();
    EXPECT_EQ(starts.size(), 1u);
    if (starts.empty()) return 0;
    const v1::TrialSpec& spec = starts[0].spec();
    EXPECT_FALSE(spec.has_warm_start());
    Checkpoint(spec.trial_id(), spec.run_id(), "c5", 5);
    Checkpoint(spec.trial_id(), spec.run_id(), "c10", 10);
    Exit(spec.trial_id(), spec.run_id(), v1::EXIT_REASON_COMPLETED, 10);
    return spec.trial_id();
  }

  det::test::TempDir dir_{"det-warm-start"};
  testing::ForwardingStore* store_ = nullptr;
  std::unique_ptr<Master> master_;
  std::shared_ptr<WorkerOutbox> out_;
  int64_t seq_ = 0;
};

TEST_F(WarmStartTest, EveryTrialStartsFromTheSourceTrialsLatestCheckpoint) {
  Open();
  const int64_t source = RunSource();
  ASSERT_GT(source, 0);
  const std::string yaml = absl::StrCat(R"(name: warm
entrypoint: /bin/true
hyperparameters:
  x: {type: double, minval: 0, maxval: 1}
checkpoint_storage: {type: shared_fs, host_path: )",
                                        dir_.File("own-ckpts"), R"(}
searcher:
  name: random
  metric: loss
  max_trials: 3
  max_length: {batches: 10}
  source_trial_id: )",
                                        source, "\n");
  auto x = master_->CreateExperiment(yaml, "", true, false, nullptr);
  ASSERT_TRUE(x.ok()) << x.status();
  auto trials = master_->ListTrials(x->id());
  ASSERT_TRUE(trials.ok());
  ASSERT_EQ(trials->size(), 3u);
  for (const v1::Trial& t : *trials) EXPECT_EQ(t.warm_start_uuid(), "c10");
  std::vector<v1::StartTrial> starts = Starts();
  ASSERT_EQ(starts.size(), 3u);
  for (const v1::StartTrial& s : starts) {
    const v1::TrialSpec& spec = s.spec();
    ASSERT_TRUE(spec.has_warm_start());
    EXPECT_EQ(spec.warm_start().uuid(), "c10");
    EXPECT_EQ(spec.warm_start().steps_completed(), 10);
    EXPECT_EQ(spec.warm_start().file_sha256().at("model.pt"), "sha-c10");
    // The source's checkpoint storage, not this experiment's.
    EXPECT_EQ(spec.warm_start_dir(), dir_.File("source-ckpts"));
    EXPECT_EQ(spec.checkpoint_dir(), dir_.File("own-ckpts"));
    EXPECT_TRUE(spec.restore_candidates().empty());
  }

  // A trial that saved a checkpoint of its own restores that one instead.
  const v1::TrialSpec first = starts[0].spec();
  Checkpoint(first.trial_id(), first.run_id(), "own3", 3);
  Exit(first.trial_id(), first.run_id(), v1::EXIT_REASON_ERRORED, 3);
  // A trial that failed before saving anything starts warm again.
  const v1::TrialSpec second = starts[1].spec();
  Exit(second.trial_id(), second.run_id(), v1::EXIT_REASON_ERRORED, 2);
  master_->Tick();
  std::map<int64_t, v1::TrialSpec> again;
  for (const v1::StartTrial& s : Starts())
    again[s.spec().trial_id()] = s.spec();
  ASSERT_TRUE(again.count(first.trial_id()));
  ASSERT_TRUE(again.count(second.trial_id()));
  const v1::TrialSpec& restored = again[first.trial_id()];
  EXPECT_FALSE(restored.has_warm_start());
  ASSERT_EQ(restored.restore_candidates_size(), 1);
  EXPECT_EQ(restored.restore_candidates(0).uuid(), "own3");
  const v1::TrialSpec& rewarmed = again[second.trial_id()];
  EXPECT_EQ(rewarmed.warm_start().uuid(), "c10");
  EXPECT_EQ(rewarmed.run_id(), second.run_id() + 1);
}

TEST_F(WarmStartTest, TheSourceIsResolvedOnceAndSurvivesARestart) {
  Open();
  const int64_t source = RunSource();
  ASSERT_GT(source, 0);
  // One trial at a time: the second is created after a restart, when the
  // source trial has a newer checkpoint; it still starts from c10.
  const std::string yaml = absl::StrCat(R"(name: warm
entrypoint: /bin/true
hyperparameters:
  x: {type: double, minval: 0, maxval: 1}
searcher:
  name: random
  metric: loss
  max_trials: 2
  max_concurrent_trials: 1
  max_length: {batches: 10}
  source_trial_id: )",
                                        source, "\n");
  auto x = master_->CreateExperiment(yaml, "", true, false, nullptr);
  ASSERT_TRUE(x.ok()) << x.status();
  std::vector<v1::StartTrial> starts = Starts();
  ASSERT_EQ(starts.size(), 1u);
  EXPECT_EQ(starts[0].spec().warm_start().uuid(), "c10");
  // The source goes on (continue) and saves c20.
  auto cont = master_->ContinueExperiment(1, {"searcher.max_length.batches=20"},
                                          nullptr);
  ASSERT_TRUE(cont.ok()) << cont.status();
  std::vector<v1::StartTrial> source_runs = Starts();
  ASSERT_EQ(source_runs.size(), 1u);
  Checkpoint(source, source_runs[0].spec().run_id(), "c20", 20);

  // A restart: the searcher comes back from its snapshot.
  Open({starts[0], source_runs[0]});
  const v1::TrialSpec warm = starts[0].spec();
  Exit(warm.trial_id(), warm.run_id(), v1::EXIT_REASON_COMPLETED, 10);
  master_->Tick();
  auto trials = master_->ListTrials(x->id());
  ASSERT_TRUE(trials.ok());
  ASSERT_EQ(trials->size(), 2u);
  EXPECT_EQ((*trials)[1].warm_start_uuid(), "c10");
  bool started = false;
  for (const v1::StartTrial& s : Starts()) {
    if (s.spec().trial_id() != (*trials)[1].id()) continue;
    started = true;
    EXPECT_EQ(s.spec().warm_start().uuid(), "c10");
  }
  EXPECT_TRUE(started);
}

// A worker with its own mount of the checkpoint storage finds the warm
// start there too; a checkpoint deleted from the store after the experiment
// was created still goes out by uuid (the worker then refuses the run).
TEST_F(WarmStartTest, WorkerRootAndACheckpointGoneSinceCreation) {
  Open({}, "/mnt/shared");
  const int64_t source = RunSource();
  ASSERT_GT(source, 0);
  const std::string yaml = absl::StrCat(R"(entrypoint: /bin/true
searcher:
  name: single
  metric: loss
  max_length: {batches: 10}
  source_trial_id: )",
                                        source, "\n");
  auto x =
      master_->CreateExperiment(yaml, "", /*activate=*/false, false, nullptr);
  ASSERT_TRUE(x.ok()) << x.status();
  ASSERT_TRUE(store_->DeleteCheckpoint("c10").ok());
  ASSERT_TRUE(master_->ActivateExperiment(x->id()).ok());
  std::vector<v1::StartTrial> starts = Starts();
  ASSERT_EQ(starts.size(), 1u);
  const v1::TrialSpec& spec = starts[0].spec();
  EXPECT_EQ(spec.warm_start().uuid(), "c10");
  EXPECT_TRUE(spec.warm_start().file_sha256().empty());
  EXPECT_EQ(spec.warm_start_dir(), "/mnt/shared");
  EXPECT_EQ(spec.checkpoint_dir(), "/mnt/shared");
}

TEST_F(WarmStartTest, BadSourcesAreRefusedAtCreateNamingTheField) {
  Open();
  // A trial with no checkpoint: the source experiment's only trial, still
  // running.
  auto src = master_->CreateExperiment(SourceYaml(dir_.File("s")), "", true,
                                       false, nullptr);
  ASSERT_TRUE(src.ok()) << src.status();
  ASSERT_EQ(Starts().size(), 1u);
  auto with = [](const std::string& field) {
    return absl::StrCat(R"(entrypoint: /bin/true
searcher:
  name: single
  metric: loss
  max_length: {batches: 10}
  )",
                        field, "\n");
  };
  struct Case {
    std::string field, path, text;
  };
  for (const Case& c : std::vector<Case>{
           {"source_checkpoint_uuid: 0b1d2c3e-no-such",
            "searcher.source_checkpoint_uuid", "no checkpoint '0b1d2c3e"},
           {"source_trial_id: 99", "searcher.source_trial_id",
            "there is no trial 99"},
           {"source_trial_id: 1", "searcher.source_trial_id",
            "trial 1 has no checkpoint"}}) {
    for (bool validate_only : {false, true}) {
      auto x = master_->CreateExperiment(with(c.field), "", true, validate_only,
                                         nullptr);
      ASSERT_FALSE(x.ok()) << c.field;
      EXPECT_EQ(x.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(x.status().message(), HasSubstr(c.path));
      EXPECT_THAT(x.status().message(), HasSubstr(c.text));
    }
  }
  auto all = master_->ListExperiments();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 1u) << "nothing was created";
  // A garbage-collected checkpoint is no source either.
  Checkpoint(1, 1, "gone", 4);
  ASSERT_TRUE(
      store_->SetCheckpointState("gone", v1::CHECKPOINT_STATE_DELETING).ok());
  auto x = master_->CreateExperiment(with("source_checkpoint_uuid: gone"), "",
                                     true, false, nullptr);
  EXPECT_EQ(x.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(x.status().message(), HasSubstr("garbage-collected"));
  // By uuid, an existing one is accepted.
  Checkpoint(1, 1, "kept", 5);
  x = master_->CreateExperiment(with("source_checkpoint_uuid: kept"), "", true,
                                false, nullptr);
  ASSERT_TRUE(x.ok()) << x.status();
  auto trials = master_->ListTrials(x->id());
  ASSERT_EQ(trials->size(), 1u);
  EXPECT_EQ((*trials)[0].warm_start_uuid(), "kept");
}

TEST_F(WarmStartTest, ContinueTrainsTheSameTrialFurtherFromItsCheckpoint) {
  Open();
  const int64_t trial = RunSource();
  ASSERT_GT(trial, 0);
  auto done = master_->GetExperiment(1);
  ASSERT_TRUE(done.ok());
  ASSERT_EQ(done->state(), v1::STATE_COMPLETED);

  auto x = master_->ContinueExperiment(1, {"searcher.max_length.batches=25"},
                                       nullptr);
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->id(), 1);
  EXPECT_EQ(x->state(), v1::STATE_ACTIVE);
  EXPECT_EQ(x->end_time_us(), 0);
  EXPECT_THAT(x->config_yaml(), HasSubstr("25"));
  auto trials = master_->ListTrials(1);
  ASSERT_TRUE(trials.ok());
  ASSERT_EQ(trials->size(), 1u) << "the same trial, no new one";
  EXPECT_EQ((*trials)[0].id(), trial);
  EXPECT_EQ((*trials)[0].target_batches(), 25);
  EXPECT_EQ((*trials)[0].restarts(), 0);
  std::vector<v1::StartTrial> starts = Starts();
  ASSERT_EQ(starts.size(), 1u);
  const v1::TrialSpec& spec = starts[0].spec();
  EXPECT_EQ(spec.trial_id(), trial);
  EXPECT_EQ(spec.run_id(), 2);
  EXPECT_EQ(spec.target_batches(), 25);
  EXPECT_FALSE(spec.has_warm_start());
  ASSERT_GE(spec.restore_candidates_size(), 1);
  EXPECT_EQ(spec.restore_candidates(0).uuid(), "c10") << "its latest";

  // While it runs, continue is refused.
  auto again = master_->ContinueExperiment(1, {}, nullptr);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);

  Exit(trial, 2, v1::EXIT_REASON_COMPLETED, 25);
  auto finished = master_->GetExperiment(1);
  ASSERT_TRUE(finished.ok());
  EXPECT_EQ(finished->state(), v1::STATE_COMPLETED);
  // A restarted master has the continued config.
  Open();
  auto reread = master_->GetExperiment(1);
  ASSERT_TRUE(reread.ok());
  EXPECT_THAT(reread->config_yaml(), HasSubstr("25"));
  EXPECT_EQ(reread->state(), v1::STATE_COMPLETED);
}

TEST_F(WarmStartTest, ContinueRefusals) {
  Open();
  ASSERT_GT(RunSource(), 0);
  auto unknown = master_->ContinueExperiment(42, {}, nullptr);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  auto bad = master_->ContinueExperiment(1, {"searcher.max_length.batches=-3"},
                                         nullptr);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("searcher.max_length"));
  auto other = master_->ContinueExperiment(
      1, {"searcher.name=random", "searcher.max_trials=2"}, nullptr);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(other.status().message(), HasSubstr("single"));
  auto no_source = master_->ContinueExperiment(
      1, {"searcher.source_checkpoint_uuid=nope"}, nullptr);
  EXPECT_EQ(no_source.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_source.status().message(),
              HasSubstr("searcher.source_checkpoint_uuid"));
  // Nothing changed.
  auto x = master_->GetExperiment(1);
  ASSERT_TRUE(x.ok());
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  // Another searcher's experiment.
  auto random = master_->CreateExperiment(R"(entrypoint: /bin/true
hyperparameters:
  x: {type: double, minval: 0, maxval: 1}
searcher:
  name: random
  metric: loss
  max_trials: 1
  max_length: {batches: 10}
)",
                                          "", true, false, nullptr);
  ASSERT_TRUE(random.ok()) << random.status();
  for (const v1::StartTrial& s : Starts()) {
    Exit(s.spec().trial_id(), s.spec().run_id(), v1::EXIT_REASON_COMPLETED, 10);
  }
  auto ended = master_->GetExperiment(random->id());
  ASSERT_EQ(ended->state(), v1::STATE_COMPLETED);
  auto not_single = master_->ContinueExperiment(random->id(), {}, nullptr);
  EXPECT_EQ(not_single.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(not_single.status().message(), HasSubstr("single-searcher"));
}

}  // namespace
}  // namespace det::master
