// Population-based training end to end: real det-master, det-worker and
// det-trial on a small CIFAR-10 subset. The second round's trials must
// start from the latest checkpoint of the best trial of the first round (the
// master's record and the trainer's own log say so) and train their round
// from step 0.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/value.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace det::testing {
namespace {

using ::testing::HasSubstr;

using PbtClusterTest = ClusterTest;

TEST_F(PbtClusterTest, ReplacedTrialsStartFromTheirParentsCheckpoint) {
  cluster_.StartMaster();
  cluster_.StartWorker("w1", 2);
  // 2 members, 2 rounds of 4 batches of 32 images; the worse member of
  // round 1 is replaced by a copy of the better one.
  int64_t id = cluster_.CreateExperiment(R"(
name: pbt
hyperparameters:
  learning_rate: {type: log, minval: -3, maxval: -1, base: 10}
  global_batch_size: 32
  n_filters1: 8
  n_filters2: 16
  hidden_units: 32
  lr_schedule: constant
searcher:
  name: pbt
  metric: validation_loss
  smaller_is_better: true
  population_size: 2
  num_rounds: 2
  length_per_round: {batches: 4}
  replace_function: {truncate_fraction: 0.5}
  explore_function: {resample_probability: 0.0, perturb_factor: 0.2}
reproducibility: {experiment_seed: 4}
max_restarts: 0
data:
  train_limit: 320
  validation_limit: 256
)");
  ASSERT_GT(id, 0);
  auto x = cluster_.WaitTerminal(id, absl::Minutes(8));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED) << x->message();

  std::vector<v1::Trial> trials = cluster_.Trials(id);
  ASSERT_EQ(trials.size(), 4u);
  std::sort(
      trials.begin(), trials.end(),
      [](const v1::Trial& a, const v1::Trial& b) { return a.id() < b.id(); });
  for (const v1::Trial& t : trials) {
    EXPECT_EQ(t.state(), v1::STATE_COMPLETED) << t.id() << ": " << t.message();
  }
  // The better member of round 1 by its last validation_loss.
  auto last_loss = [&](const v1::Trial& t) {
    auto reports = cluster_.Metrics(t.id(), v1::METRIC_GROUP_VALIDATION);
    EXPECT_FALSE(reports.empty()) << t.id();
    return reports.empty() ? 1e300
                           : reports.back().metrics().at("validation_loss");
  };
  const v1::Trial& best =
      last_loss(trials[0]) <= last_loss(trials[1]) ? trials[0] : trials[1];
  ASSERT_TRUE(best.has_latest_checkpoint());
  const std::string parent_ck = best.latest_checkpoint().uuid();
  ASSERT_FALSE(parent_ck.empty());
  EXPECT_TRUE(trials[0].warm_start_uuid().empty());
  EXPECT_TRUE(trials[1].warm_start_uuid().empty());

  const Value best_lr = FromProto(best.hparams())["learning_rate"];
  for (size_t i = 2; i < 4; ++i) {
    const v1::Trial& t = trials[i];
    SCOPED_TRACE(absl::StrCat("round 2 trial ", t.id()));
    // Both the copy (explored) and the continuation come from the best.
    EXPECT_EQ(t.warm_start_uuid(), parent_ck);
    // The trainer loaded those weights and counted its steps from 0.
    CliResult logs = cluster_.Cli({"trial", "logs", std::to_string(t.id())});
    EXPECT_EQ(logs.exit_code, 0) << logs.err;
    EXPECT_THAT(logs.out, HasSubstr("warm-starting from " + parent_ck));
    auto reports = cluster_.Metrics(t.id(), v1::METRIC_GROUP_VALIDATION);
    ASSERT_FALSE(reports.empty());
    EXPECT_EQ(reports.back().steps_completed(), 4);
  }
  // The copy explores; the continuation keeps the parent's learning rate.
  EXPECT_NE(FromProto(trials[2].hparams())["learning_rate"], best_lr);
  EXPECT_EQ(FromProto(trials[3].hparams())["learning_rate"], best_lr);
}

}  // namespace
}  // namespace det::testing
