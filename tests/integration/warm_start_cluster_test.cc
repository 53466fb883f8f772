// Warm starts and `det experiment continue` end to end: the real master,
// worker, det-trial and det CLI on a small CIFAR-10 subset. A trial warm-
// started from a trained checkpoint validates better after a few batches
// than the same trial (same seed) started cold, and counts its steps from
// 0; a continued experiment trains its one trial further from its latest
// checkpoint; bad sources are refused when the experiment is created.
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace det::testing {
namespace {

using ::testing::HasSubstr;

class WarmStartClusterTest : public ClusterTest {
 protected:
  void SetUp() override {
    cluster_.StartMaster();
    cluster_.StartWorker("w1", 2);
  }

  // A single-trial CIFAR-10 config: a small CNN, `batches` long, one
  // validation at the end; `extra` goes under searcher.
  static std::string Config(const std::string& name, int64_t batches,
                            const std::string& extra = "") {
    return absl::StrCat(R"(name: )", name, R"(
hyperparameters:
  learning_rate: 0.01
  global_batch_size: 32
  n_filters1: 8
  n_filters2: 16
  hidden_units: 32
  dropout: 0.0
reproducibility: {experiment_seed: 11}
data:
  train_limit: 3200
  validation_limit: 1000
max_restarts: 0
searcher:
  name: single
  metric: validation_loss
  smaller_is_better: true
  max_length: {batches: )",
                        batches, "}\n", extra);
  }

  // The first validation report of an experiment's only trial.
  v1::MetricReport FirstValidation(int64_t experiment) {
    auto trials = cluster_.Trials(experiment);
    EXPECT_EQ(trials.size(), 1u);
    if (trials.empty()) return {};
    auto reports =
        cluster_.Metrics(trials[0].id(), v1::METRIC_GROUP_VALIDATION);
    EXPECT_FALSE(reports.empty());
    return reports.empty() ? v1::MetricReport() : reports.front();
  }

  // Trains the source experiment (200 batches); returns its trial id.
  int64_t TrainSource() {
    const int64_t id = cluster_.CreateExperiment(Config("source", 200));
    EXPECT_GT(id, 0);
    auto x = cluster_.WaitTerminal(id, absl::Minutes(5));
    EXPECT_TRUE(x.ok()) << x.status();
    if (!x.ok()) return 0;
    EXPECT_EQ(x->state(), v1::STATE_COMPLETED) << x->message();
    auto trials = cluster_.Trials(id);
    EXPECT_EQ(trials.size(), 1u);
    return trials.empty() ? 0 : trials[0].id();
  }
};

TEST_F(WarmStartClusterTest, WarmStartValidatesBetterThanAColdStart) {
  const int64_t source = TrainSource();
  ASSERT_GT(source, 0);
  const std::string latest = cluster_.Trials(1)[0].latest_checkpoint().uuid();
  ASSERT_FALSE(latest.empty());

  // The same 10-batch trial (same experiment seed), cold and warm.
  const int64_t cold = cluster_.CreateExperiment(Config("cold", 10));
  const int64_t warm = cluster_.CreateExperiment(
      Config("warm", 10, absl::StrCat("  source_trial_id: ", source, "\n")));
  ASSERT_GT(cold, 0);
  ASSERT_GT(warm, 0);
  for (int64_t id : {cold, warm}) {
    auto x = cluster_.WaitTerminal(id, absl::Minutes(4));
    ASSERT_TRUE(x.ok()) << x.status();
    EXPECT_EQ(x->state(), v1::STATE_COMPLETED) << x->message();
  }
  auto warm_trials = cluster_.Trials(warm);
  ASSERT_EQ(warm_trials.size(), 1u);
  EXPECT_EQ(warm_trials[0].warm_start_uuid(), latest);
  const v1::MetricReport c = FirstValidation(cold);
  const v1::MetricReport w = FirstValidation(warm);
  // Steps count from 0 after a warm start, as in Determined.
  EXPECT_EQ(c.steps_completed(), 10);
  EXPECT_EQ(w.steps_completed(), 10);
  const double cold_loss = c.metrics().at("validation_loss");
  const double warm_loss = w.metrics().at("validation_loss");
  std::cerr << "first validation after 10 batches: cold loss " << cold_loss
            << " accuracy " << c.metrics().at("validation_accuracy")
            << ", warm loss " << warm_loss << " accuracy "
            << w.metrics().at("validation_accuracy") << "\n";
  EXPECT_LT(warm_loss, cold_loss);
  EXPECT_GT(w.metrics().at("validation_accuracy"),
            c.metrics().at("validation_accuracy"));
  auto logs =
      cluster_.Cli({"trial", "logs", std::to_string(warm_trials[0].id())});
  EXPECT_THAT(logs.out, HasSubstr("warm-starting from " + latest));

  // The same by uuid.
  const int64_t by_uuid = cluster_.CreateExperiment(Config(
      "by-uuid", 10, absl::StrCat("  source_checkpoint_uuid: ", latest, "\n")));
  ASSERT_GT(by_uuid, 0);
  auto x = cluster_.WaitTerminal(by_uuid, absl::Minutes(4));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED) << x->message();
  EXPECT_EQ(FirstValidation(by_uuid).metrics().at("validation_loss"), warm_loss)
      << "the same weights, seed and data: the same run";
}

TEST_F(WarmStartClusterTest, BadSourcesAreRefusedAtCreate) {
  // A trial that failed before saving anything.
  const int64_t failed = cluster_.CreateExperiment(
      "name: fails\nentrypoint: /bin/false\n"
      "max_restarts: 0\n"
      "searcher: {name: single, metric: loss, "
      "max_length: {batches: 5}}\n");
  ASSERT_GT(failed, 0);
  auto x = cluster_.WaitTerminal(failed, absl::Minutes(2));
  ASSERT_TRUE(x.ok()) << x.status();
  ASSERT_EQ(x->state(), v1::STATE_ERROR);
  const int64_t no_checkpoint = cluster_.Trials(failed)[0].id();

  struct Case {
    std::string field, path, text;
  };
  for (const Case& c : {
           Case{"  source_checkpoint_uuid: 6a0c2d62-1111-4d2e-9f00-"
                "000000000000\n",
                "searcher.source_checkpoint_uuid",
                "no checkpoint '6a0c2d62-1111"},
           Case{absl::StrCat("  source_trial_id: ", no_checkpoint, "\n"),
                "searcher.source_trial_id",
                absl::StrCat("trial ", no_checkpoint, " has no checkpoint")},
       }) {
    const std::string path = absl::StrCat(cluster_.dir(), "/bad.yaml");
    std::ofstream(path) << Config("bad", 10, c.field);
    CliResult r = cluster_.Cli({"experiment", "create", path});
    EXPECT_NE(r.exit_code, 0) << r.out;
    EXPECT_THAT(r.err, HasSubstr("INVALID_ARGUMENT")) << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.path)) << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.text)) << r.err;
  }
  auto list = cluster_.Cli({"experiment", "list", "--json"});
  EXPECT_THAT(list.out, ::testing::Not(HasSubstr("\"bad\"")));
}

TEST_F(WarmStartClusterTest, ContinueTrainsTheSameTrialFromItsCheckpoint) {
  const int64_t trial = TrainSource();
  ASSERT_GT(trial, 0);
  CliResult r = cluster_.Cli({"experiment", "continue", "1", "--config",
                              "searcher.max_length.batches=240"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("Continued experiment 1"));
  auto x = cluster_.WaitTerminal(1, absl::Minutes(4));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED) << x->message();
  auto trials = cluster_.Trials(1);
  ASSERT_EQ(trials.size(), 1u) << "the same trial, in the same experiment";
  EXPECT_EQ(trials[0].id(), trial);
  EXPECT_EQ(trials[0].steps_completed(), 240);
  EXPECT_EQ(trials[0].latest_checkpoint().steps_completed(), 240);
  // Validations at 200 (first run) and 240 (the continued one): the step
  // count went on from the checkpoint.
  auto reports = cluster_.Metrics(trial, v1::METRIC_GROUP_VALIDATION);
  ASSERT_EQ(reports.size(), 2u);
  EXPECT_EQ(reports[0].steps_completed(), 200);
  EXPECT_EQ(reports[1].steps_completed(), 240);
  auto training = cluster_.Metrics(trial, v1::METRIC_GROUP_TRAINING);
  ASSERT_FALSE(training.empty());
  EXPECT_EQ(training.back().steps_completed(), 240);
  auto logs = cluster_.Cli({"trial", "logs", std::to_string(trial)});
  EXPECT_THAT(logs.out, HasSubstr("restoring "));

  // An experiment that has not ended cannot be continued.
  const int64_t paused =
      cluster_.CreateExperiment(Config("paused", 10), {"--paused"});
  ASSERT_GT(paused, 0);
  CliResult live =
      cluster_.Cli({"experiment", "continue", std::to_string(paused)});
  EXPECT_NE(live.exit_code, 0);
  EXPECT_THAT(live.err, HasSubstr("FAILED_PRECONDITION")) << live.err;
  EXPECT_THAT(live.err, HasSubstr("PAUSED")) << live.err;
  // Overrides that break the config are refused, naming the field.
  CliResult twice = cluster_.Cli(
      {"experiment", "continue", "1", "--config", "searcher.max_length=oops"});
  EXPECT_NE(twice.exit_code, 0);
  EXPECT_THAT(twice.err, HasSubstr("INVALID_ARGUMENT"));
  EXPECT_THAT(twice.err, HasSubstr("searcher.max_length"));
}

}  // namespace
}  // namespace det::testing
