// A master on PostgreSQL whose database restarts mid-trial: the store
// calls that find the connection lost fail as UNAVAILABLE (transient), the
// master does not acknowledge what it could not store, the worker resends
// it, the store reconnects, and the trial finishes with every validation
// stored once and no restart. Uses a private server (scripts/pg-local.sh),
// since it stops it.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace det::testing {
namespace {

class PostgresRestartTest : public ClusterTest {
 protected:
  bool PgLocal(const std::string& cmd) {
    return std::system(absl::StrCat(DET_SOURCE_DIR, "/scripts/pg-local.sh ",
                                    cmd, " ", state_, " >/dev/null")
                           .c_str()) == 0;
  }
  void SetUp() override {
    state_ = cluster_.dir() + "/pg.state";
    ASSERT_TRUE(PgLocal("start")) << "scripts/pg-local.sh start failed";
    started_ = true;
    std::ifstream in(state_);
    std::string dir;
    std::getline(in, dir);
    std::getline(in, url_);
  }
  void TearDown() override {
    ClusterTest::TearDown();
    cluster_.StopMaster(SIGKILL);
    if (started_) PgLocal("stop");
  }
  std::string state_, url_;
  bool started_ = false;
};

TEST_F(PostgresRestartTest, DatabaseRestartMidTrialLosesAndRepeatsNothing) {
  cluster_.SetDb(url_);
  cluster_.StartMaster();
  cluster_.StartWorker("w1", 1);
  int64_t id = cluster_.CreateExperiment(
      absl::StrCat("entrypoint: ", Cluster::Bin("det-fake-trial"), R"(
name: pg-restart
hyperparameters:
  x: 0.3
  y: 0.6
  sleep_ms: 80
searcher:
  name: single
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 60}
min_validation_period: {batches: 10}
min_checkpoint_period: {batches: 10}
)"));
  ASSERT_GT(id, 0);
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        auto t = cluster_.Trials(id);
        return !t.empty() && t[0].latest_checkpoint().steps_completed() > 15;
      },
      absl::Seconds(60)));
  ASSERT_TRUE(PgLocal("pause"));  // the database is down for 3 s
  absl::SleepFor(absl::Seconds(3));
  ASSERT_TRUE(PgLocal("resume"));
  auto x = cluster_.WaitTerminal(id, absl::Minutes(2));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  auto trials = cluster_.Trials(id);
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(trials[0].restarts(), 0) << trials[0].message();
  std::vector<int64_t> steps;
  for (const auto& r :
       cluster_.Metrics(trials[0].id(), v1::METRIC_GROUP_VALIDATION)) {
    steps.push_back(r.steps_completed());
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{10, 20, 30, 40, 50, 60}));
  // The outage was seen (so the test tested something): the master logged
  // a lost connection.
  std::ifstream log(cluster_.master()->log_path());
  std::string text((std::istreambuf_iterator<char>(log)), {});
  EXPECT_NE(text.find("lost the connection to PostgreSQL"), std::string::npos)
      << text;
}

}  // namespace
}  // namespace det::testing
