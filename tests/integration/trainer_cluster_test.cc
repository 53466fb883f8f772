// End-to-end tests with the real trainer (det-trial on a small CIFAR-10
// subset): the seed's own commands, and a data-parallel trial on two slots.
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/value.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace det::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using TrainerClusterTest = ClusterTest;

// A tiny real training run: 320 images, 8 batches of 32, validation on 256.
constexpr char kSmallData[] = R"(
data:
  train_limit: 320
  validation_limit: 256
)";

TEST_F(TrainerClusterTest, SeedCommandsWorkAsWritten) {
  cluster_.StartMaster();
  cluster_.StartWorker("w1", 1);
  fs::path ctx = fs::path(cluster_.dir()) / "context";
  fs::create_directories(ctx);
  std::ofstream(ctx / "config.yaml") << absl::StrCat(R"(
name: seed-commands
hyperparameters:
  learning_rate: 0.01
  global_batch_size: 32
  n_filters1: 8
  n_filters2: 16
  hidden_units: 32
searcher:
  name: single
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 8}
)",
                                                     kSmallData);
  // `det experiment create . --config=config.yaml`, from the context dir.
  CliResult created = cluster_.Cli(
      {"experiment", "create", ".", "--config=config.yaml"}, {}, ctx.string());
  ASSERT_EQ(created.exit_code, 0) << created.out << created.err;
  ASSERT_THAT(created.out, HasSubstr("Created experiment 1"));
  auto x = cluster_.WaitTerminal(1, absl::Minutes(4));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED) << x->message();

  CliResult describe = cluster_.Cli({"experiment", "describe", "1"});
  EXPECT_EQ(describe.exit_code, 0) << describe.err;
  EXPECT_THAT(describe.out, HasSubstr("COMPLETED"));

  // `det experiment describe 1 --json | jq '.best_validation_metrics'`
  CliResult jq = cluster_.Shell(
      "det experiment describe 1 --json | jq '.best_validation_metrics'");
  ASSERT_EQ(jq.exit_code, 0) << jq.err;
  auto metrics = ParseJson(jq.out);
  ASSERT_TRUE(metrics.ok()) << jq.out;
  ASSERT_TRUE((*metrics)["validation_accuracy"].is_number()) << jq.out;
  double acc = (*metrics)["validation_accuracy"].as_number();
  EXPECT_GE(acc, 0.0);
  EXPECT_LE(acc, 1.0);
  EXPECT_TRUE((*metrics)["validation_loss"].is_number()) << jq.out;

  // The trial's validations were stored: one at the end of its 8 batches.
  auto trials = cluster_.Trials(1);
  ASSERT_EQ(trials.size(), 1u);
  auto reports = cluster_.Metrics(trials[0].id(), v1::METRIC_GROUP_VALIDATION);
  ASSERT_FALSE(reports.empty());
  EXPECT_EQ(reports.back().steps_completed(), 8);
  EXPECT_EQ(reports.back().metrics().at("validation_accuracy"), acc);
}

TEST_F(TrainerClusterTest, TwoSlotTrialRunsDataParallel) {
  cluster_.StartMaster();
  cluster_.StartWorker("w1", 2);
  int64_t id = cluster_.CreateExperiment(absl::StrCat(R"(
name: distributed
hyperparameters:
  learning_rate: 0.01
  global_batch_size: 32
  n_filters1: 8
  n_filters2: 16
  hidden_units: 32
resources:
  slots_per_trial: 2
searcher:
  name: single
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 6}
)",
                                                      kSmallData));
  ASSERT_GT(id, 0);
  auto x = cluster_.WaitTerminal(id, absl::Minutes(4));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED) << x->message();
  auto trials = cluster_.Trials(id);
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(trials[0].state(), v1::STATE_COMPLETED) << trials[0].message();
  // Both ranks ran, in one group of two: each logged its rank.
  auto logs = cluster_.Cli({"trial", "logs", std::to_string(trials[0].id())});
  EXPECT_EQ(logs.exit_code, 0);
  EXPECT_THAT(logs.out, HasSubstr("rank 0/2"));
  EXPECT_THAT(logs.out, HasSubstr("rank 1/2"));
  auto reports = cluster_.Metrics(trials[0].id(), v1::METRIC_GROUP_VALIDATION);
  ASSERT_FALSE(reports.empty());
  EXPECT_EQ(reports.back().steps_completed(), 6);
}

}  // namespace
}  // namespace det::testing
