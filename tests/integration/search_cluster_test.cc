// End-to-end searches through a real master and real workers on loopback,
// with det-fake-trial (examples/fake_trial) as the entrypoint so that trials
// are fast and their metrics predictable.
#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/value.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace det::testing {
namespace {

class SearchClusterTest : public ClusterTest {
 protected:
  // A config for the fake trial: `body` holds hyperparameters and searcher.
  std::string Config(const std::string& body) {
    return Cluster::FakeTrialConfig(absl::StrCat("max_restarts: 0\n", body));
  }
};

std::map<std::string, double> ToMap(
    const google::protobuf::Map<std::string, double>& m) {
  return {m.begin(), m.end()};
}

TEST_F(SearchClusterTest, GridSearchRunsEveryTrialOnce) {
  cluster_.StartMaster();
  cluster_.StartWorker("w1", 2);
  int64_t id = cluster_.CreateExperiment(Config(R"(
name: grid
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0, count: 3}
  y: {type: categorical, vals: [0.2, 0.6]}
searcher:
  name: grid
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 20}
min_validation_period: {batches: 10}
)"));
  ASSERT_GT(id, 0);
  auto x = cluster_.WaitTerminal(id, absl::Minutes(2));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  auto trials = cluster_.Trials(id);
  ASSERT_EQ(trials.size(), 6u);
  std::set<std::pair<double, double>> points;
  for (const v1::Trial& t : trials) {
    EXPECT_EQ(t.state(), v1::STATE_COMPLETED) << t.message();
    EXPECT_EQ(t.restarts(), 0);
    ValueMap hp = FromProto(t.hparams());
    points.insert({hp["x"].as_number(), hp["y"].as_number()});
    // Validations at 10 (min_validation_period) and 20 (the end), once each.
    auto reports = cluster_.Metrics(t.id(), v1::METRIC_GROUP_VALIDATION);
    std::vector<int64_t> steps;
    for (const auto& r : reports) steps.push_back(r.steps_completed());
    EXPECT_THAT(steps, ::testing::ElementsAre(10, 20)) << "trial " << t.id();
  }
  EXPECT_EQ(points, (std::set<std::pair<double, double>>{{0.0, 0.2},
                                                         {0.5, 0.2},
                                                         {1.0, 0.2},
                                                         {0.0, 0.6},
                                                         {0.5, 0.6},
                                                         {1.0, 0.6}}));
  // The best trial is the one nearest the fake model's optimum (0.3, 0.6).
  ASSERT_NE(x->best_trial_id(), 0);
  for (const v1::Trial& t : trials) {
    if (t.id() != x->best_trial_id()) continue;
    ValueMap hp = FromProto(t.hparams());
    EXPECT_EQ(hp["x"].as_number(), 0.5);
    EXPECT_EQ(hp["y"].as_number(), 0.6);
    EXPECT_EQ(ToMap(x->best_validation_metrics()),
              ToMap(t.best_validation_metrics()));
  }
}

TEST_F(SearchClusterTest, RandomSearchRunsMaxTrials) {
  cluster_.StartMaster();
  cluster_.StartWorker("w1", 2);
  cluster_.StartWorker("w2", 1);
  int64_t id = cluster_.CreateExperiment(Config(R"(
name: random
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0}
  y: {type: double, minval: 0.0, maxval: 1.0}
searcher:
  name: random
  metric: validation_accuracy
  smaller_is_better: false
  max_trials: 7
  max_concurrent_trials: 3
  max_length: {batches: 10}
reproducibility: {experiment_seed: 7}
)"));
  ASSERT_GT(id, 0);
  auto x = cluster_.WaitTerminal(id, absl::Minutes(2));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  auto trials = cluster_.Trials(id);
  ASSERT_EQ(trials.size(), 7u);
  for (const v1::Trial& t : trials) {
    EXPECT_EQ(t.state(), v1::STATE_COMPLETED) << t.message();
    EXPECT_EQ(cluster_.Metrics(t.id(), v1::METRIC_GROUP_VALIDATION).size(), 1u);
  }
  // Both workers got work.
  auto agents = cluster_.Cli({"agent", "list", "--json"});
  EXPECT_EQ(agents.exit_code, 0) << agents.err;
}

// ASHA with one slot, so trials run one at a time and the master sees the
// validations in the order they were taken: replaying them through the
// top-1/d rule must give exactly the stops and promotions stored.
TEST_F(SearchClusterTest, AshaStopsAndPromotesAsTheRuleSays) {
  cluster_.StartMaster();
  cluster_.StartWorker("w1", 1);
  int64_t id = cluster_.CreateExperiment(Config(R"(
name: asha
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0}
  y: {type: double, minval: 0.0, maxval: 1.0}
  sleep_ms: 20
searcher:
  name: adaptive_asha
  metric: validation_accuracy
  smaller_is_better: false
  max_trials: 12
  max_length: {batches: 64}
  divisor: 4
  mode: aggressive
  max_concurrent_trials: 1
reproducibility: {experiment_seed: 3}
)"));
  ASSERT_GT(id, 0);
  auto x = cluster_.WaitTerminal(id, absl::Minutes(3));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  auto trials = cluster_.Trials(id);
  ASSERT_EQ(trials.size(), 12u);
  // aggressive, divisor 4, max_length 64, 12 trials: one bracket of
  // min(5, floor(log4 64)+1, floor(log4 12)+1) = 2 rungs: 16 and 64.
  const std::vector<int64_t> rungs = {16, 64};
  struct Entry {
    int64_t time_us;
    int64_t trial;
    int rung;
    double metric;
  };
  std::vector<Entry> entries;
  // Trained to the end (the searcher let it go on), or stopped by it.
  std::map<int64_t, bool> went_on;
  for (const v1::Trial& t : trials) {
    EXPECT_EQ(t.state(), v1::STATE_COMPLETED) << t.message();
    went_on[t.id()] = t.exit_reason() == v1::EXIT_REASON_COMPLETED;
    for (const auto& r :
         cluster_.Metrics(t.id(), v1::METRIC_GROUP_VALIDATION)) {
      for (int i = 0; i < static_cast<int>(rungs.size()); ++i) {
        if (r.steps_completed() == rungs[i]) {
          entries.push_back(
              {r.time_us(), t.id(), i, r.metrics().at("validation_accuracy")});
        }
      }
    }
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.time_us < b.time_us;
  });
  std::map<int, std::vector<double>> rung_metrics;
  int stopped = 0, promoted = 0;
  for (const Entry& e : entries) {
    if (e.rung == static_cast<int>(rungs.size()) - 1) continue;
    std::vector<double>& m = rung_metrics[e.rung];
    m.push_back(e.metric);
    std::sort(m.begin(), m.end(), std::greater<double>());
    size_t keep = std::max<size_t>(m.size() / 4, 1);
    size_t rank = std::find(m.begin(), m.end(), e.metric) - m.begin();
    bool should_continue = rank < keep;
    bool did_continue = went_on[e.trial];
    EXPECT_EQ(did_continue, should_continue)
        << "trial " << e.trial << " at rung " << e.rung << " with metric "
        << e.metric << " ranked " << rank << " of " << m.size();
    (did_continue ? promoted : stopped)++;
  }
  EXPECT_GT(stopped, 0);
  EXPECT_GT(promoted, 0);
}

// One slot and two experiments: once the low-priority one's running trial
// ends, every trial of the high-priority one runs before the rest of it.
TEST_F(SearchClusterTest, ExperimentsShareSlotsByPriority) {
  cluster_.StartMaster();
  cluster_.StartWorker("w1", 1);
  std::string grid = R"(
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0, count: 3}
  sleep_ms: 40
searcher:
  name: grid
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 10}
)";
  int64_t low = cluster_.CreateExperiment(
      Config(absl::StrCat("name: low\nresources: {priority: 60}\n", grid)));
  ASSERT_GT(low, 0);
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        for (const auto& t : cluster_.Trials(low)) {
          if (t.state() == v1::STATE_ACTIVE) return true;
        }
        return false;
      },
      absl::Seconds(30)));
  int64_t high = cluster_.CreateExperiment(
      Config(absl::StrCat("name: high\nresources: {priority: 10}\n", grid)));
  ASSERT_GT(high, 0);
  ASSERT_TRUE(cluster_.WaitTerminal(low, absl::Minutes(2)).ok());
  ASSERT_TRUE(cluster_.WaitTerminal(high, absl::Minutes(2)).ok());
  int64_t high_last_start = 0;
  for (const auto& t : cluster_.Trials(high)) {
    high_last_start = std::max(high_last_start, t.start_time_us());
  }
  int low_before = 0;
  for (const auto& t : cluster_.Trials(low)) {
    if (t.start_time_us() < high_last_start) low_before++;
  }
  // Only the low trial that was already running started before.
  EXPECT_EQ(low_before, 1);
}

}  // namespace
}  // namespace det::testing
