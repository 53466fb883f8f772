// Population-based training through the master, in process: the master, a
// SQLite store and a worker played by the test. Each round's trials report
// a validation and a checkpoint and complete; the test checks that every
// trial of a later round is started from the latest checkpoint of the right
// parent (the best of the round before), with its hyperparameters, and that
// a master restart in the middle of a round changes nothing. These would
// fail if the master dropped Create.warm_start_from, if a child were
// created before its parent's checkpoint existed, or if the searcher's
// journal replay made other trials.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/value.h"
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

class PbtMasterTest : public ::testing::Test {
 protected:
  void TearDown() override { master_.reset(); }

  // Opens the master (again: a restart) and connects w0, which still runs
  // `running`.
  void Open(const std::vector<v1::StartTrial>& running = {}) {
    master_.reset();
    auto sq = store::SqliteStore::Open(dir_.File("master.db"));
    ASSERT_TRUE(sq.ok()) << sq.status();
    auto fs = std::make_unique<testing::ForwardingStore>(std::move(*sq));
    MasterOptions opts;
    opts.checkpoint_root = dir_.File("default-root");
    opts.tick_interval = absl::ZeroDuration();
    auto m = Master::Create(std::move(fs), opts);
    ASSERT_TRUE(m.ok()) << m.status();
    master_ = std::move(*m);
    out_ = std::make_shared<WorkerOutbox>();
    v1::Hello hello = MakeHello("w0", 8);
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

  // What a trial does in a round: validates at its length, checkpoints
  // ("ck-<trial id>") and completes.
  void PlayTrial(const v1::StartTrial& start, double loss) {
    const v1::TrialSpec& spec = start.spec();
    const int64_t t = spec.trial_id();
    Send(t, spec.run_id(), [&](v1::TrialEvent* ev) {
      v1::MetricReport* r = ev->mutable_metrics();
      r->set_trial_id(t);
      r->set_group(v1::METRIC_GROUP_VALIDATION);
      r->set_steps_completed(10);
      (*r->mutable_metrics())["loss"] = loss;
    });
    Send(t, spec.run_id(), [&](v1::TrialEvent* ev) {
      v1::Checkpoint* c = ev->mutable_checkpoint();
      c->set_trial_id(t);
      c->set_uuid(absl::StrCat("ck-", t));
      c->set_steps_completed(10);
      (*c->mutable_file_sha256())["model.pt"] = absl::StrCat("sha-", t);
    });
    Send(t, spec.run_id(), [&](v1::TrialEvent* ev) {
      ev->mutable_exited()->set_reason(v1::EXIT_REASON_COMPLETED);
      ev->mutable_exited()->set_steps_completed(10);
    });
  }

  std::map<int64_t, v1::Trial> TrialsById(int64_t experiment) {
    std::map<int64_t, v1::Trial> out;
    auto trials = master_->ListTrials(experiment);
    EXPECT_TRUE(trials.ok()) << trials.status();
    if (trials.ok()) {
      for (const v1::Trial& t : *trials) out[t.id()] = t;
    }
    return out;
  }

  det::test::TempDir dir_{"det-pbt-master"};
  std::unique_ptr<Master> master_;
  std::shared_ptr<WorkerOutbox> out_;
  int64_t seq_ = 0;
};

constexpr char kPbtYaml[] = R"(name: pbt
entrypoint: /bin/true
hyperparameters:
  lr: {type: log, minval: -4, maxval: -1}
  width: 16
reproducibility: {experiment_seed: 21}
searcher:
  name: pbt
  metric: loss
  population_size: 4
  num_rounds: 3
  length_per_round: {batches: 10}
  replace_function: {truncate_fraction: 0.5}
  explore_function: {resample_probability: 0.0, perturb_factor: 0.5}
max_restarts: 0
)";

TEST_F(PbtMasterTest, LaterRoundsStartFromTheBestParentsCheckpoints) {
  Open();
  auto x = master_->CreateExperiment(kPbtYaml, "", true, false, nullptr);
  ASSERT_TRUE(x.ok()) << x.status();
  const int64_t exp = x->id();

  // Round 1: four sampled trials, none warm-started, 10 batches each.
  std::vector<v1::StartTrial> round1 = Starts();
  ASSERT_EQ(round1.size(), 4u);
  std::vector<int64_t> ids;
  for (const v1::StartTrial& s : round1) {
    EXPECT_FALSE(s.spec().has_warm_start());
    EXPECT_EQ(s.spec().target_batches(), 10);
    ids.push_back(s.spec().trial_id());
  }
  std::sort(ids.begin(), ids.end());
  // Smaller loss is better: ids[1] is the best, then ids[3].
  const std::map<int64_t, double> loss = {
      {ids[0], 0.4}, {ids[1], 0.1}, {ids[2], 0.3}, {ids[3], 0.2}};
  for (size_t i = 0; i < round1.size(); ++i) {
    // Nothing new until the whole round has ended.
    EXPECT_THAT(Starts(), ::testing::IsEmpty());
    PlayTrial(round1[i], loss.at(round1[i].spec().trial_id()));
  }

  // Round 2: copies of the best two (explored lr), then the best two
  // going on with their own lr; each from its parent's checkpoint.
  std::vector<v1::StartTrial> round2 = Starts();
  ASSERT_EQ(round2.size(), 4u);
  std::map<int64_t, v1::Trial> trials = TrialsById(exp);
  ASSERT_EQ(trials.size(), 8u);
  const std::vector<int64_t> parents = {ids[1], ids[3], ids[1], ids[3]};
  std::sort(round2.begin(), round2.end(),
            [](const v1::StartTrial& a, const v1::StartTrial& b) {
              return a.spec().trial_id() < b.spec().trial_id();
            });
  for (size_t i = 0; i < round2.size(); ++i) {
    const v1::TrialSpec& spec = round2[i].spec();
    SCOPED_TRACE(absl::StrCat("round 2 trial ", spec.trial_id()));
    const std::string parent_ck = absl::StrCat("ck-", parents[i]);
    EXPECT_EQ(trials[spec.trial_id()].warm_start_uuid(), parent_ck);
    ASSERT_TRUE(spec.has_warm_start());
    EXPECT_EQ(spec.warm_start().uuid(), parent_ck);
    EXPECT_EQ(spec.warm_start().file_sha256().at("model.pt"),
              absl::StrCat("sha-", parents[i]));
    EXPECT_TRUE(spec.restore_candidates().empty());
    // Trained 10 batches from step 0.
    EXPECT_EQ(spec.target_batches(), 10);
    const Value lr = FromProto(trials[spec.trial_id()].hparams())["lr"];
    const Value parent_lr = FromProto(trials[parents[i]].hparams())["lr"];
    EXPECT_EQ(FromProto(trials[spec.trial_id()].hparams())["width"],
              Value(int64_t{16}));
    if (i < 2) {
      // Perturbed by half, up or down (within 1e-4..1e-1).
      EXPECT_NE(lr, parent_lr) << "a copy explores";
    } else {
      EXPECT_EQ(lr, parent_lr) << "a continuation keeps its hyperparameters";
    }
  }

  // A restart in the middle of round 2: the same trials, nothing new.
  PlayTrial(round2[0], 0.05);
  Open({round2[1], round2[2], round2[3]});
  EXPECT_THAT(Starts(), ::testing::IsEmpty());
  EXPECT_EQ(TrialsById(exp).size(), 8u);
  // Round 2 ranks: round2[0] (0.05), [3] (0.15), [2], [1].
  PlayTrial(round2[1], 0.9);
  PlayTrial(round2[2], 0.5);
  PlayTrial(round2[3], 0.15);
  std::vector<v1::StartTrial> round3 = Starts();
  ASSERT_EQ(round3.size(), 4u);
  std::multiset<std::string> from;
  for (const v1::StartTrial& s : round3)
    from.insert(s.spec().warm_start().uuid());
  const std::string best = absl::StrCat("ck-", round2[0].spec().trial_id());
  const std::string second = absl::StrCat("ck-", round2[3].spec().trial_id());
  EXPECT_EQ(from, (std::multiset<std::string>{best, best, second, second}));
  for (const v1::StartTrial& s : round3) PlayTrial(s, 0.1);

  // The last round ends the search: 4 x 3 trials, all completed.
  auto done = master_->GetExperiment(exp);
  ASSERT_TRUE(done.ok()) << done.status();
  EXPECT_EQ(done->state(), v1::STATE_COMPLETED) << done->message();
  trials = TrialsById(exp);
  EXPECT_EQ(trials.size(), 12u);
  for (const auto& [id, t] : trials) {
    EXPECT_EQ(t.state(), v1::STATE_COMPLETED) << id;
  }
}

// Not PBT's own, but this fixture plays a worker: a trial the searcher
// creates while the experiment is paused (a trial ended after the pause)
// waits PAUSED with the others and starts once the experiment is activated.
using PausedExperimentTest = PbtMasterTest;

TEST_F(PausedExperimentTest, TrialCreatedWhilePausedStartsOnActivate) {
  Open();
  auto x = master_->CreateExperiment(R"(name: paused
entrypoint: /bin/true
hyperparameters:
  lr: {type: double, minval: 0.1, maxval: 0.9}
searcher:
  name: random
  metric: loss
  max_trials: 2
  max_concurrent_trials: 1
  max_length: {batches: 10}
max_restarts: 0
)",
                                     "", true, false, nullptr);
  ASSERT_TRUE(x.ok()) << x.status();
  const int64_t exp = x->id();
  std::vector<v1::StartTrial> first = Starts();
  ASSERT_EQ(first.size(), 1u);
  ASSERT_TRUE(master_->PauseExperiment(exp).ok());
  // Trial 1 finishes its length before it stops: the searcher makes trial 2.
  PlayTrial(first[0], 0.5);
  std::map<int64_t, v1::Trial> trials = TrialsById(exp);
  ASSERT_EQ(trials.size(), 2u);
  const int64_t second = trials.rbegin()->first;
  EXPECT_EQ(trials.at(second).state(), v1::STATE_PAUSED);
  EXPECT_TRUE(Starts().empty());
  ASSERT_TRUE(master_->ActivateExperiment(exp).ok());
  std::vector<v1::StartTrial> after = Starts();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].spec().trial_id(), second);
}

}  // namespace
}  // namespace det::master
