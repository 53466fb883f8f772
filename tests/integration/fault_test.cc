// Fault injection through real processes on loopback: trials that crash,
// workers killed mid-trial, a master killed and restarted, a broken
// network, pause/activate/cancel/kill. Each test checks the promise in
// docs/reliability.md that it is named after.
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/value.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"
#include "tests/integration/on_each_store.h"
#include "tests/integration/tcp_proxy.h"

namespace det::testing {

namespace {

using ::testing::HasSubstr;

class FaultTest : public ClusterTest {
 protected:
  // Validation steps of a trial, in order, duplicates included.
  std::vector<int64_t> ValidationSteps(int64_t trial_id) {
    std::vector<int64_t> steps;
    for (const auto& r :
         cluster_.Metrics(trial_id, v1::METRIC_GROUP_VALIDATION)) {
      steps.push_back(r.steps_completed());
    }
    return steps;
  }
  v1::Trial OnlyTrial(int64_t experiment_id) {
    auto trials = cluster_.Trials(experiment_id);
    EXPECT_EQ(trials.size(), 1u);
    return trials.empty() ? v1::Trial() : trials[0];
  }
  bool TrialHasCheckpointPast(int64_t experiment_id, int64_t steps) {
    for (const auto& t : cluster_.Trials(experiment_id)) {
      if (t.latest_checkpoint().steps_completed() > steps &&
          t.state() == v1::STATE_ACTIVE) {
        return true;
      }
    }
    return false;
  }
};

// A single trial of 60 steps, validated every 10, checkpointed every 10.
constexpr char kLongTrial[] = R"(
name: long
hyperparameters:
  x: 0.3
  y: 0.6
  sleep_ms: %d
  %s
searcher:
  name: single
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 60}
min_validation_period: {batches: 10}
min_checkpoint_period: {batches: 10}
)";

std::string LongTrial(int sleep_ms, const std::string& extra = "",
                      int max_restarts = 5) {
  char buf[1024];
  std::snprintf(buf, sizeof(buf), kLongTrial, sleep_ms, extra.c_str());
  return absl::StrCat("max_restarts: ", max_restarts, "\n", buf);
}

const std::vector<int64_t> kAllValidations = {10, 20, 30, 40, 50, 60};

TEST_F(FaultTest, CrashedTrialRestartsFromItsLatestCheckpoint) {
  cluster_.StartMaster();
  cluster_.StartWorker("w1", 1);
  // Run 1 aborts (SIGABRT) after 35 steps; the checkpoint at 30 survives.
  int64_t id = cluster_.CreateExperiment(Cluster::FakeTrialConfig(
      LongTrial(0, "crash_on_run: 1\n  fail_at_step: 35")));
  ASSERT_GT(id, 0);
  auto x = cluster_.WaitTerminal(id, absl::Minutes(2));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  v1::Trial t = OnlyTrial(id);
  EXPECT_EQ(t.state(), v1::STATE_COMPLETED);
  EXPECT_EQ(t.restarts(), 1);
  EXPECT_THAT(t.message(), HasSubstr("restart 1 of 5"));
  // Every validation exactly once, none lost, none repeated.
  EXPECT_EQ(ValidationSteps(t.id()), kAllValidations);
  // The second run resumed at 30: it logged that it restored a checkpoint.
  auto logs = cluster_.Cli({"trial", "logs", std::to_string(t.id())});
  EXPECT_EQ(logs.exit_code, 0);
}

TEST_F(FaultTest, TrialFailingPastMaxRestartsErrorsAndSearchGoesOn) {
  cluster_.StartMaster();
  cluster_.StartWorker("w1", 2);
  // Trial x=0 fails on every run it gets (runs 1 and 2, max_restarts 1);
  // trial x=1 is fine. The experiment completes with one ERROR trial.
  int64_t id = cluster_.CreateExperiment(Cluster::FakeTrialConfig(R"(
name: failing
max_restarts: 1
hyperparameters:
  x: {type: categorical, vals: [0, 1]}
  fail_on_run: {type: categorical, vals: [1]}
  fail_at_step: 0
searcher:
  name: grid
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 10}
)"));
  ASSERT_GT(id, 0);
  auto x = cluster_.WaitTerminal(id, absl::Minutes(2));
  ASSERT_TRUE(x.ok()) << x.status();
  // Both trials fail run 1; each restarts once and run 2 succeeds.
  for (const auto& t : cluster_.Trials(id)) {
    EXPECT_EQ(t.state(), v1::STATE_COMPLETED) << t.message();
    EXPECT_EQ(t.restarts(), 1);
  }
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);

  int64_t id2 = cluster_.CreateExperiment(Cluster::FakeTrialConfig(R"(
name: always-failing
max_restarts: 0
hyperparameters:
  x: {type: categorical, vals: [0, 1]}
  crash_on_run: {type: categorical, vals: [1, -1]}
searcher:
  name: grid
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 10}
)"));
  ASSERT_GT(id2, 0);
  auto x2 = cluster_.WaitTerminal(id2, absl::Minutes(2));
  ASSERT_TRUE(x2.ok()) << x2.status();
  EXPECT_EQ(x2->state(), v1::STATE_COMPLETED);
  int errored = 0, completed = 0;
  for (const auto& t : cluster_.Trials(id2)) {
    if (t.state() == v1::STATE_ERROR) {
      errored++;
      EXPECT_THAT(t.message(), HasSubstr("failed after 0 restarts"));
    }
    if (t.state() == v1::STATE_COMPLETED) completed++;
  }
  EXPECT_EQ(errored, 2);
  EXPECT_EQ(completed, 2);
  EXPECT_EQ(x2->trials_errored(), 2);
}

TEST_F(FaultTest, KilledWorkersTrialsMoveToAnotherWorker) {
  cluster_.StartMaster(
      {"--agent_timeout_s", "2", "--heartbeat_interval_s", "0.5"});
  int w1 = cluster_.StartWorker("w1", 1);
  int64_t id =
      cluster_.CreateExperiment(Cluster::FakeTrialConfig(LongTrial(60)));
  ASSERT_GT(id, 0);
  ASSERT_TRUE(Cluster::WaitFor([&] { return TrialHasCheckpointPast(id, 15); },
                               absl::Seconds(30)));
  pid_t w1_pid = cluster_.worker(w1)->pid();
  cluster_.StopWorker(w1, SIGKILL);
  // Its trial process dies with it (PR_SET_PDEATHSIG).
  EXPECT_TRUE(Cluster::WaitFor(
      [&] { return Cluster::ChildrenOf(w1_pid).empty(); }, absl::Seconds(5)));
  int w2 = cluster_.StartWorker("w2", 1);
  auto x = cluster_.WaitTerminal(id, absl::Minutes(2));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  v1::Trial t = OnlyTrial(id);
  EXPECT_EQ(t.restarts(), 1);
  EXPECT_THAT(t.message(), HasSubstr("w1 lost"));
  EXPECT_EQ(ValidationSteps(t.id()), kAllValidations);

  // The killed worker comes back under its name and is given work.
  cluster_.StopWorker(w2, SIGTERM);
  cluster_.StartWorker("w1", 1);
  int64_t id2 =
      cluster_.CreateExperiment(Cluster::FakeTrialConfig(LongTrial(0)));
  auto x2 = cluster_.WaitTerminal(id2, absl::Minutes(1));
  ASSERT_TRUE(x2.ok()) << x2.status();
  EXPECT_EQ(x2->state(), v1::STATE_COMPLETED);
}

// FaultTest on each store: the promises that rest on what the master's
// store kept when it was SIGKILLed.
using FaultStoreTest = OnEachStore<FaultTest>;

TEST_P(FaultStoreTest, MasterKilledMidSearchResumesFromItsStore) {
  // No snapshot after the first: the restarted master must rebuild the
  // searcher by replaying its journal.
  const std::vector<std::string> flags = {"--searcher_snapshot_every",
                                          "100000"};
  cluster_.StartMaster(flags);
  cluster_.StartWorker("w1", 2);
  int64_t id = cluster_.CreateExperiment(Cluster::FakeTrialConfig(R"(
name: survive-master
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0, count: 4}
  sleep_ms: 40
searcher:
  name: grid
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 40}
  max_concurrent_trials: 2
min_validation_period: {batches: 10}
min_checkpoint_period: {batches: 10}
)"));
  ASSERT_GT(id, 0);
  ASSERT_TRUE(Cluster::WaitFor([&] { return TrialHasCheckpointPast(id, 15); },
                               absl::Seconds(30)));
  cluster_.StopMaster(SIGKILL);
  // Reports made while the master is down are kept by the worker.
  absl::SleepFor(absl::Seconds(1));
  cluster_.StartMaster(flags);
  auto x = cluster_.WaitTerminal(id, absl::Minutes(2));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  auto trials = cluster_.Trials(id);
  ASSERT_EQ(trials.size(), 4u);  // the same four, none created twice
  std::set<double> xs;
  for (const auto& t : trials) {
    EXPECT_EQ(t.state(), v1::STATE_COMPLETED) << t.message();
    xs.insert(FromProto(t.hparams())["x"].as_number());
    EXPECT_EQ(ValidationSteps(t.id()), (std::vector<int64_t>{10, 20, 30, 40}))
        << "trial " << t.id();
  }
  EXPECT_EQ(xs.size(), 4u);
  if (pg_ != nullptr) {
    // What the PostgreSQL store itself holds: four trials, each validation
    // once (the key forbids duplicates; this also checks none is missing).
    EXPECT_EQ(pg_->Query("SELECT count(*) FROM trials"), "4");
    EXPECT_EQ(pg_->Query("SELECT count(*) FROM metrics WHERE grp = 2"), "16");
  }
}

INSTANTIATE_TEST_SUITE_P(Store, FaultStoreTest,
                         ::testing::ValuesIn(StoresUnderTest()), StoreName);

TEST_F(FaultTest, BrokenNetworkHealsWithoutLosingReports) {
  cluster_.StartMaster({"--agent_timeout_s", "20"});
  TcpProxy proxy(cluster_.master_address());
  cluster_.StartWorker("w1", 1, {"--master", proxy.address()});
  int64_t id =
      cluster_.CreateExperiment(Cluster::FakeTrialConfig(LongTrial(60)));
  ASSERT_GT(id, 0);
  ASSERT_TRUE(Cluster::WaitFor([&] { return TrialHasCheckpointPast(id, 15); },
                               absl::Seconds(30)));
  proxy.CutAll();                  // every open connection dropped
  proxy.Refuse(absl::Seconds(2));  // and none accepted for a while
  auto x = cluster_.WaitTerminal(id, absl::Minutes(2));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  v1::Trial t = OnlyTrial(id);
  // The trial ran on through the outage: no restart, nothing lost.
  EXPECT_EQ(t.restarts(), 0) << t.message();
  EXPECT_EQ(ValidationSteps(t.id()), kAllValidations);
  EXPECT_GE(proxy.connections(), 2);
}

// A trial's output is relayed as text; a protobuf string must be UTF-8, and
// one that is not makes the master's side of the stream fail to parse the
// message. Unless the worker fixes the text, that message is resent on
// every reconnect and fails every time: the worker's later messages (this
// trial's reports and exit) never land. Run 1 prints bad bytes and a line
// of 3-byte characters that the worker's 16 KiB cut splits mid-character,
// on stdout and stderr, then fails (its exit message quotes the stderr
// tail); run 2 does the same and completes.
TEST_F(FaultTest, OutputThatIsNotUtf8NeitherBlocksNorLosesReports) {
  cluster_.StartMaster();
  cluster_.StartWorker("w1", 1);
  int64_t id = cluster_.CreateExperiment(Cluster::FakeTrialConfig(
      LongTrial(0, "bad_output: true\n  fail_on_run: 1\n  fail_at_step: 35")));
  ASSERT_GT(id, 0);
  auto x = cluster_.WaitTerminal(id, absl::Seconds(60));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  v1::Trial t = OnlyTrial(id);
  EXPECT_EQ(t.state(), v1::STATE_COMPLETED);
  EXPECT_EQ(t.restarts(), 1);
  // The failed run's exit landed, with its stderr tail made valid.
  EXPECT_THAT(t.message(), HasSubstr("bad output: caf\uFFFD \uFFFD"));
  EXPECT_EQ(ValidationSteps(t.id()), kAllValidations);
  auto logs = cluster_.Cli({"trial", "logs", std::to_string(t.id())});
  EXPECT_EQ(logs.exit_code, 0) << logs.err;
  EXPECT_THAT(logs.out, HasSubstr("bad output: caf\uFFFD \uFFFD"));
  // The long line arrives whole, in pieces cut between characters.
  std::string bar;
  for (int i = 0; i < 6000; ++i) bar += "\u2588";
  std::string joined;
  for (absl::string_view l : absl::StrSplit(logs.out, '\n')) {
    if (absl::StrContains(l, "\u2588")) {
      joined += std::string(l.substr(l.find("\u2588")));
    }
  }
  // Two runs, stdout and stderr: four copies.
  EXPECT_EQ(joined, bar + bar + bar + bar);
}

TEST_F(FaultTest, WorkerCutOffStopsItsTrialsSoNoneRunsTwice) {
  cluster_.StartMaster(
      {"--agent_timeout_s", "2", "--heartbeat_interval_s", "0.5"});
  TcpProxy proxy(cluster_.master_address());
  int w1 = cluster_.StartWorker("w1", 1, {"--master", proxy.address()});
  int64_t id =
      cluster_.CreateExperiment(Cluster::FakeTrialConfig(LongTrial(60)));
  ASSERT_GT(id, 0);
  ASSERT_TRUE(Cluster::WaitFor([&] { return TrialHasCheckpointPast(id, 15); },
                               absl::Seconds(30)));
  pid_t w1_pid = cluster_.worker(w1)->pid();
  ASSERT_FALSE(Cluster::ChildrenOf(w1_pid).empty());
  // w1 is cut off from the master for 15 s; it is still alive.
  proxy.Refuse(absl::Seconds(15));
  proxy.CutAll();
  cluster_.StartWorker("w2", 1);
  // The master gives the trial to w2, and w1 stops its own copy on its
  // own, while it still cannot reach the master.
  EXPECT_TRUE(Cluster::WaitFor(
      [&] { return Cluster::ChildrenOf(w1_pid).empty(); }, absl::Seconds(10)));
  EXPECT_TRUE(cluster_.worker(w1)->Running());
  auto x = cluster_.WaitTerminal(id, absl::Minutes(2));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  v1::Trial t = OnlyTrial(id);
  EXPECT_EQ(t.restarts(), 1);
  EXPECT_EQ(ValidationSteps(t.id()), kAllValidations);
}

TEST_F(FaultTest, PauseCheckpointsAndActivateResumes) {
  cluster_.StartMaster();
  int w = cluster_.StartWorker("w1", 1);
  int64_t id =
      cluster_.CreateExperiment(Cluster::FakeTrialConfig(LongTrial(50)));
  ASSERT_GT(id, 0);
  ASSERT_TRUE(Cluster::WaitFor([&] { return TrialHasCheckpointPast(id, 15); },
                               absl::Seconds(30)));
  auto paused = cluster_.Cli({"experiment", "pause", std::to_string(id)});
  ASSERT_EQ(paused.exit_code, 0) << paused.err;
  pid_t worker_pid = cluster_.worker(w)->pid();
  ASSERT_TRUE(Cluster::WaitFor(
      [&] { return OnlyTrial(id).state() == v1::STATE_PAUSED; },
      absl::Seconds(30)));
  EXPECT_TRUE(Cluster::ChildrenOf(worker_pid).empty());
  v1::Trial t = OnlyTrial(id);
  int64_t at_pause = t.latest_checkpoint().steps_completed();
  EXPECT_GT(at_pause, 15);
  EXPECT_LT(at_pause, 60);

  auto act = cluster_.Cli({"experiment", "activate", std::to_string(id)});
  ASSERT_EQ(act.exit_code, 0) << act.err;
  auto x = cluster_.WaitTerminal(id, absl::Minutes(2));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  t = OnlyTrial(id);
  EXPECT_EQ(t.restarts(), 0);
  EXPECT_EQ(ValidationSteps(t.id()), kAllValidations);
  // The second run started from the pause checkpoint, not from zero: no
  // training report below it was made twice (reports are idempotent, so
  // look at their times: those after the pause are all past at_pause).
  auto training = cluster_.Metrics(t.id(), v1::METRIC_GROUP_TRAINING);
  ASSERT_FALSE(training.empty());
  EXPECT_EQ(training.back().steps_completed(), 60);

  // Activating a completed experiment is refused with a clear message.
  auto again = cluster_.Cli({"experiment", "activate", std::to_string(id)});
  EXPECT_NE(again.exit_code, 0);
  EXPECT_THAT(again.err, HasSubstr("COMPLETED"));
}

TEST_F(FaultTest, CorruptCheckpointFallsBackToThePreviousOne) {
  cluster_.StartMaster();
  cluster_.StartWorker("w1", 1);
  int64_t id =
      cluster_.CreateExperiment(Cluster::FakeTrialConfig(LongTrial(50)));
  ASSERT_GT(id, 0);
  ASSERT_TRUE(Cluster::WaitFor([&] { return TrialHasCheckpointPast(id, 25); },
                               absl::Seconds(30)));
  ASSERT_EQ(cluster_.Cli({"experiment", "pause", std::to_string(id)}).exit_code,
            0);
  ASSERT_TRUE(Cluster::WaitFor(
      [&] { return OnlyTrial(id).state() == v1::STATE_PAUSED; },
      absl::Seconds(30)));
  v1::Trial t = OnlyTrial(id);
  // Truncate every file of the newest checkpoint but its manifest.
  std::string dir = absl::StrCat(cluster_.dir(), "/checkpoints/",
                                 t.latest_checkpoint().uuid());
  int truncated = 0;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    if (f.path().filename() == "SHA256SUMS") continue;
    std::filesystem::resize_file(f.path(), 3);
    truncated++;
  }
  ASSERT_GT(truncated, 0) << dir;
  ASSERT_EQ(
      cluster_.Cli({"experiment", "activate", std::to_string(id)}).exit_code,
      0);
  auto x = cluster_.WaitTerminal(id, absl::Minutes(2));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  t = OnlyTrial(id);
  EXPECT_EQ(t.state(), v1::STATE_COMPLETED) << t.message();
  EXPECT_EQ(ValidationSteps(t.id()), kAllValidations);
  auto logs = cluster_.Cli({"trial", "logs", std::to_string(t.id())});
  EXPECT_THAT(logs.out, HasSubstr("is unusable"));
}

TEST_F(FaultTest, CancelStartsNoQueuedTrial) {
  cluster_.StartMaster();
  cluster_.StartWorker("w1", 1);
  int64_t id = cluster_.CreateExperiment(Cluster::FakeTrialConfig(R"(
name: queued
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0, count: 3}
  sleep_ms: 100
searcher:
  name: grid
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 100}
)"));
  ASSERT_GT(id, 0);
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        for (const auto& t : cluster_.Trials(id)) {
          if (t.state() == v1::STATE_ACTIVE) return true;
        }
        return false;
      },
      absl::Seconds(30)));
  ASSERT_EQ(
      cluster_.Cli({"experiment", "cancel", std::to_string(id)}).exit_code, 0);
  auto x = cluster_.WaitTerminal(id, absl::Seconds(60));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_CANCELED);
  int started = 0;
  for (const auto& t : cluster_.Trials(id)) {
    EXPECT_EQ(t.state(), v1::STATE_CANCELED);
    if (t.start_time_us() != 0) started++;
  }
  EXPECT_EQ(started, 1);  // only the one already running
}

TEST_F(FaultTest, CancelAndKillEndPromptlyAndLeaveNoProcess) {
  cluster_.StartMaster();
  int w = cluster_.StartWorker("w1", 2);
  pid_t worker_pid = cluster_.worker(w)->pid();
  int64_t a =
      cluster_.CreateExperiment(Cluster::FakeTrialConfig(LongTrial(200)));
  // This one ignores SIGTERM's request, so only kill ends it.
  int64_t b = cluster_.CreateExperiment(
      Cluster::FakeTrialConfig(LongTrial(200, "ignore_stop: true")));
  ASSERT_GT(a, 0);
  ASSERT_GT(b, 0);
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        return OnlyTrial(a).state() == v1::STATE_ACTIVE &&
               OnlyTrial(b).state() == v1::STATE_ACTIVE;
      },
      absl::Seconds(30)));
  EXPECT_EQ(cluster_.Cli({"experiment", "cancel", std::to_string(a)}).exit_code,
            0);
  EXPECT_EQ(cluster_.Cli({"experiment", "kill", std::to_string(b)}).exit_code,
            0);
  auto xa = cluster_.WaitTerminal(a, absl::Seconds(30));
  auto xb = cluster_.WaitTerminal(b, absl::Seconds(30));
  ASSERT_TRUE(xa.ok()) << xa.status();
  ASSERT_TRUE(xb.ok()) << xb.status();
  EXPECT_EQ(xa->state(), v1::STATE_CANCELED);
  EXPECT_EQ(xb->state(), v1::STATE_CANCELED);
  EXPECT_EQ(OnlyTrial(a).state(), v1::STATE_CANCELED);
  EXPECT_EQ(OnlyTrial(b).state(), v1::STATE_CANCELED);
  EXPECT_TRUE(
      Cluster::WaitFor([&] { return Cluster::ChildrenOf(worker_pid).empty(); },
                       absl::Seconds(5)));
}

}  // namespace
}  // namespace det::testing
