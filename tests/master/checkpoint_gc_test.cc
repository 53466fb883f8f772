// Checkpoint garbage collection in the master (master/core/checkpoint_gc.cc),
// driven in process: a SQLite store, one fake worker whose outbox the test
// reads. These tests would fail if the master deleted a checkpoint a live
// trial may restore from or warm-start from, marked one DELETED before its
// worker reported it gone, forgot a DELETING one across a restart, or kept
// more than the rule says once the experiment ended.
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/version.h"
#include "gtest/gtest.h"
#include "master/core/master.h"
#include "master/core/placement.h"
#include "master/store/sqlite_store.h"
#include "tests/master/worker_hello.h"
#include "tests/testing/temp_dir.h"

namespace det::master {
namespace {

using ::det::testing::MakeHello;

constexpr char kYaml[] = R"(name: gc
entrypoint: /bin/true
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0}
searcher:
  name: random
  metric: validation_accuracy
  smaller_is_better: false
  max_trials: 1
  max_length: {batches: 1000000}
max_restarts: 0
)";

class CheckpointGcCoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    OpenMaster();
    std::vector<std::string> warnings;
    auto x = master_->CreateExperiment(kYaml, "", true, false, &warnings);
    ASSERT_TRUE(x.ok()) << x.status();
    experiment_id_ = x->id();
    Connect();
    std::optional<v1::MasterMessage> m;
    while ((m = outbox_->Pop(absl::Seconds(5))) && !m->has_start_trial()) {
    }
    ASSERT_TRUE(m.has_value()) << "no StartTrial";
    trial_id_ = m->start_trial().spec().trial_id();
    run_id_ = m->start_trial().spec().run_id();
  }
  void TearDown() override { master_.reset(); }

  void OpenMaster() {
    auto store = store::SqliteStore::Open(dir_.File("master.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    MasterOptions opts;
    opts.checkpoint_root = dir_.File("checkpoints");
    opts.tick_interval = absl::ZeroDuration();
    auto m = Master::Create(std::move(*store), opts);
    ASSERT_TRUE(m.ok()) << m.status();
    master_ = std::move(*m);
  }
  void Connect() {
    outbox_ = std::make_shared<WorkerOutbox>();
    v1::Hello hello = MakeHello("w0");
    if (trial_id_ != 0) {
      v1::RunningTrial* r = hello.add_running();
      r->set_trial_id(trial_id_);
      r->set_run_id(run_id_);
      r->add_slot_ids(0);
    }
    auto w = master_->WorkerConnected(hello, "ipv4:127.0.0.1:1", outbox_);
    ASSERT_TRUE(w.ok()) << w.status();
    seq_ = w->last_seq();
  }
  void Send(v1::WorkerMessage m) {
    m.set_seq(++seq_);
    auto r = master_->WorkerMessages("w0", absl::MakeConstSpan(&m, 1));
    ASSERT_TRUE(r.status.ok()) << r.status;
    ASSERT_EQ(r.rejected, 0);
  }
  v1::WorkerMessage Event() {
    v1::WorkerMessage m;
    m.mutable_trial_event()->set_trial_id(trial_id_);
    m.mutable_trial_event()->set_run_id(run_id_);
    return m;
  }
  // A validation at `steps` with `accuracy`, then a checkpoint there.
  void CheckpointAt(int64_t steps, double accuracy) {
    v1::WorkerMessage v = Event();
    v1::MetricReport* r = v.mutable_trial_event()->mutable_metrics();
    r->set_group(v1::METRIC_GROUP_VALIDATION);
    r->set_steps_completed(steps);
    (*r->mutable_metrics())["validation_accuracy"] = accuracy;
    Send(v);
    v1::WorkerMessage c = Event();
    v1::Checkpoint* ck = c.mutable_trial_event()->mutable_checkpoint();
    ck->set_uuid(absl::StrCat("c", steps));
    ck->set_steps_completed(steps);
    Send(c);
  }
  void Deleted(const std::vector<std::string>& uuids) {
    v1::WorkerMessage m;
    for (const auto& u : uuids) m.mutable_checkpoints_deleted()->add_uuids(u);
    Send(m);
  }
  // Every uuid the outbox has been asked to delete so far (and the dirs).
  std::set<std::string> AskedToDelete(std::set<std::string>* dirs = nullptr) {
    std::set<std::string> out;
    std::optional<v1::MasterMessage> m;
    while ((m = outbox_->Pop(absl::Milliseconds(50)))) {
      if (!m->has_delete_checkpoints()) continue;
      if (dirs) dirs->insert(m->delete_checkpoints().dir());
      for (const auto& u : m->delete_checkpoints().uuids()) out.insert(u);
    }
    return out;
  }
  std::set<std::string> InState(v1::CheckpointState s) {
    auto list = master_->ListExperimentCheckpoints(experiment_id_, 0);
    EXPECT_TRUE(list.ok()) << list.status();
    std::set<std::string> out;
    if (!list.ok()) return out;
    for (const auto& d : *list) {
      if (d.checkpoint().state() == s) out.insert(d.checkpoint().uuid());
    }
    return out;
  }

  det::test::TempDir dir_{"det-ckpt-gc"};
  std::unique_ptr<Master> master_;
  std::shared_ptr<WorkerOutbox> outbox_;
  int64_t experiment_id_ = 0;
  int64_t trial_id_ = 0;
  int32_t run_id_ = 0;
  int64_t seq_ = 0;
};

TEST_F(CheckpointGcCoreTest, LiveTrialKeepsRestoreCandidatesThenTheRuleWins) {
  // c10 is the best; then six more, each worse.
  CheckpointAt(10, 0.9);
  for (int i = 2; i <= 7; ++i) CheckpointAt(i * 10, 0.1 * i / 10);
  // Live: the best (c10) and the 5 newest (c30..c70) stay; c20 goes.
  std::set<std::string> dirs;
  EXPECT_EQ(AskedToDelete(&dirs), (std::set<std::string>{"c20"}));
  EXPECT_EQ(dirs, (std::set<std::string>{dir_.File("checkpoints")}));
  EXPECT_EQ(InState(v1::CHECKPOINT_STATE_DELETING),
            (std::set<std::string>{"c20"}));
  EXPECT_TRUE(InState(v1::CHECKPOINT_STATE_DELETED).empty());
  Deleted({"c20"});
  EXPECT_EQ(InState(v1::CHECKPOINT_STATE_DELETED),
            (std::set<std::string>{"c20"}));
  // The trial's own list (the web page's) carries the state too.
  auto own = master_->ListCheckpoints(trial_id_);
  ASSERT_TRUE(own.ok());
  ASSERT_EQ(own->size(), 7u);
  EXPECT_EQ((*own)[1].uuid(), "c20");
  EXPECT_EQ((*own)[1].state(), v1::CHECKPOINT_STATE_DELETED);
  EXPECT_TRUE(InState(v1::CHECKPOINT_STATE_DELETING).empty());

  // The trial ends, and with it the experiment: 1 latest + 1 best remain.
  v1::WorkerMessage x = Event();
  x.mutable_trial_event()->mutable_exited()->set_reason(
      v1::EXIT_REASON_COMPLETED);
  Send(x);
  auto e = master_->GetExperiment(experiment_id_);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->state(), v1::STATE_COMPLETED);
  const std::set<std::string> doomed = {"c30", "c40", "c50", "c60"};
  EXPECT_EQ(AskedToDelete(), doomed);
  EXPECT_EQ(InState(v1::CHECKPOINT_STATE_ACTIVE),
            (std::set<std::string>{"c10", "c70"}));
  EXPECT_EQ(InState(v1::CHECKPOINT_STATE_DELETING), doomed);

  // A restarted master asks again for what is still DELETING.
  master_.reset();
  OpenMaster();
  Connect();
  EXPECT_EQ(AskedToDelete(), doomed);
  Deleted({"c30", "c40", "c50", "c60"});
  EXPECT_TRUE(InState(v1::CHECKPOINT_STATE_DELETING).empty());
  // A report repeated (a worker's resend after a lost ack) is harmless.
  Deleted({"c30"});
  EXPECT_EQ(InState(v1::CHECKPOINT_STATE_ACTIVE),
            (std::set<std::string>{"c10", "c70"}));

  // --best 1 is the best metric; delete refuses nothing for a done one.
  auto best = master_->ListExperimentCheckpoints(experiment_id_, 1);
  ASSERT_TRUE(best.ok());
  ASSERT_EQ(best->size(), 1u);
  EXPECT_EQ((*best)[0].checkpoint().uuid(), "c10");
}

TEST_F(CheckpointGcCoreTest, WarmStartOfALiveTrialIsNeverDeleted) {
  CheckpointAt(10, 0.1);
  CheckpointAt(20, 0.9);  // the best
  // The live trial warm-starts from c10 (written into its stored record
  // while the master is down, as a warm-start config would have).
  master_.reset();
  {
    auto store = store::SqliteStore::Open(dir_.File("master.db"));
    ASSERT_TRUE(store.ok());
    auto t = (*store)->GetTrial(trial_id_);
    ASSERT_TRUE(t.ok());
    t->trial.set_warm_start_uuid("c10");
    ASSERT_TRUE((*store)->UpdateTrial(*t).ok());
  }
  OpenMaster();
  Connect();
  for (int i = 3; i <= 9; ++i) CheckpointAt(i * 10, 0.1);
  // c10 is neither best nor among the 5 newest, but in use: kept.
  std::set<std::string> asked = AskedToDelete();
  EXPECT_EQ(asked.count("c10"), 0u);
  EXPECT_EQ(asked, (std::set<std::string>{"c30", "c40"}));
  EXPECT_EQ(InState(v1::CHECKPOINT_STATE_ACTIVE).count("c10"), 1u);
  // Deleting a live experiment is refused.
  auto del = master_->DeleteExperiment(experiment_id_);
  EXPECT_EQ(del.status().code(), absl::StatusCode::kFailedPrecondition);
}

// With no worker connected, the master removes the folders it can see
// itself (on its ticker), then marks them DELETED; kept ones stay.
TEST_F(CheckpointGcCoreTest, MasterDeletesItselfWhenNoWorkerIsConnected) {
  namespace fs = std::filesystem;
  CheckpointAt(10, 0.9);  // the best
  CheckpointAt(20, 0.1);
  CheckpointAt(30, 0.2);  // the latest
  const fs::path root = dir_.File("checkpoints");
  for (const char* uuid : {"c10", "c20", "c30"}) {
    fs::create_directories(root / uuid);
    std::ofstream(root / uuid / "state.json") << uuid;
  }
  master_->WorkerDisconnected("w0", outbox_);
  v1::WorkerMessage x = Event();
  x.mutable_trial_event()->mutable_exited()->set_reason(
      v1::EXIT_REASON_COMPLETED);
  // The worker's last report came in before its stream ended.
  Connect();
  Send(x);
  master_->WorkerDisconnected("w0", outbox_);
  EXPECT_EQ(InState(v1::CHECKPOINT_STATE_DELETING),
            (std::set<std::string>{"c20"}));
  EXPECT_TRUE(fs::exists(root / "c20"));
  master_->Tick();
  EXPECT_FALSE(fs::exists(root / "c20"));
  EXPECT_TRUE(fs::exists(root / "c10" / "state.json"));
  EXPECT_TRUE(fs::exists(root / "c30" / "state.json"));
  EXPECT_EQ(InState(v1::CHECKPOINT_STATE_DELETED),
            (std::set<std::string>{"c20"}));
  EXPECT_TRUE(InState(v1::CHECKPOINT_STATE_DELETING).empty());
}

// Where the folders are, for the worker asked to delete them: type
// directory is container_path everywhere; shared_fs honours the worker's
// own mount point, else host_path/storage_path, else the master's default.
TEST(CheckpointDirTest, DirectoryAndSharedFs) {
  CheckpointStorageConfig dir;
  dir.type = "directory";
  dir.container_path = "/mnt/ckpt";
  EXPECT_EQ(CheckpointDir(dir, "/default", "/worker/root"), "/mnt/ckpt");
  EXPECT_EQ(CheckpointDir(dir, "/default"), "/mnt/ckpt");
  CheckpointStorageConfig fs;
  EXPECT_EQ(CheckpointDir(fs, "/default"), "/default");
  EXPECT_EQ(CheckpointDir(fs, "/default", "/worker/root"), "/worker/root");
  fs.host_path = "/shared";
  fs.storage_path = "exp";
  EXPECT_EQ(CheckpointDir(fs, "/default"), "/shared/exp");
}

}  // namespace
}  // namespace det::master
