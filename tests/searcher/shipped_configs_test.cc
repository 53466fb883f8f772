// Every config under configs/cifar10 parses without errors or warnings,
// follows the project's conventions, and makes a search; quick.yaml stays
// within its training budget.
#include <filesystem>

#include "common/config.h"
#include "common/trainer_hparams.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "master/searcher/preview.h"
#include "master/searcher/searcher.h"

namespace det::searcher {
namespace {

const std::string kDir = std::string(DET_SOURCE_DIR) + "/configs/cifar10";

ExperimentConfig Load(const std::string& name) {
  auto text = ReadExperimentConfigFile(kDir + "/" + name);
  EXPECT_TRUE(text.ok()) << text.status();
  auto cfg = ParseExperimentConfig(text.ok() ? *text : "");
  EXPECT_TRUE(cfg.ok()) << name << ": " << cfg.status();
  return cfg.ok() ? *cfg : ExperimentConfig{};
}

TEST(ShippedConfigsTest, EveryConfigParsesAndPlans) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(kDir)) {
    if (entry.path().extension() == ".yaml") {
      names.push_back(entry.path().filename().string());
    }
  }
  std::sort(names.begin(), names.end());
  EXPECT_THAT(names, ::testing::IsSupersetOf({"adaptive.yaml", "const.yaml",
                                              "distributed.yaml", "grid.yaml",
                                              "pbt.yaml", "quick.yaml",
                                              "random.yaml", "tpe.yaml"}));
  for (const std::string& name : names) {
    SCOPED_TRACE(name);
    ExperimentConfig cfg = Load(name);
    for (const ConfigError& w : cfg.warnings) ADD_FAILURE() << w.ToString();
    EXPECT_EQ(cfg.searcher.metric, "validation_accuracy");
    EXPECT_FALSE(cfg.searcher.smaller_is_better);
    EXPECT_EQ(cfg.checkpoint_storage.type, "shared_fs");
    EXPECT_TRUE(cfg.entrypoint.empty()) << "the built-in trainer";
    const std::vector<std::string>& known = trainer::KnownHParamNames();
    for (const auto& [hp, spec] : cfg.hyperparameters) {
      EXPECT_THAT(known, ::testing::Contains(hp)) << "unknown to the trainer";
    }
    auto plan = PlanSearch(cfg);
    ASSERT_TRUE(plan.ok()) << plan.status();
    auto method = NewSearchMethod(cfg);
    ASSERT_TRUE(method.ok()) << method.status();
    EXPECT_FALSE((*method)->InitialOperations().empty());
  }
}

TEST(ShippedConfigsTest, ConventionsOfEachConfig) {
  EXPECT_EQ(Load("const.yaml").searcher.name, SearcherName::kSingle);
  EXPECT_TRUE(Load("const.yaml").data.count("train_limit") == 0)
      << "const trains on the full training set";
  EXPECT_EQ(Load("grid.yaml").searcher.name, SearcherName::kGrid);
  EXPECT_EQ(Load("random.yaml").searcher.name, SearcherName::kRandom);
  EXPECT_EQ(Load("adaptive.yaml").searcher.name, SearcherName::kAdaptiveAsha);
  EXPECT_EQ(Load("tpe.yaml").searcher.name, SearcherName::kAdaptiveAsha);
  EXPECT_EQ(Load("tpe.yaml").searcher.sampler, SamplerName::kTpe);
  EXPECT_EQ(Load("distributed.yaml").resources.slots_per_trial, 2);
  ExperimentConfig pbt = Load("pbt.yaml");
  EXPECT_EQ(pbt.searcher.name, SearcherName::kPbt);
  // A copy loads its parent's weights: the network's shape must not vary.
  for (const char* shape :
       {"hidden_units", "n_filters1", "n_filters2", "conv_layers",
        "kernel_size", "batch_norm", "optimizer"}) {
    EXPECT_EQ(pbt.hyperparameters.at(shape).type, HParamSpec::Type::kConst)
        << shape;
  }
}

TEST(ShippedConfigsTest, QuickFitsItsBudget) {
  ExperimentConfig cfg = Load("quick.yaml");
  EXPECT_EQ(cfg.searcher.name, SearcherName::kAdaptiveAsha);
  EXPECT_TRUE(cfg.data.count("train_limit"));
  EXPECT_TRUE(cfg.data.count("validation_limit"));
  auto plan = PlanSearch(cfg);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->unit, Unit::kBatches);
  // Training images summed over all trials, even if nothing is stopped.
  int64_t batch = cfg.hyperparameters.at("global_batch_size").val.as_int();
  EXPECT_LE(plan->total_length * batch, 150000);
  EXPECT_LE(plan->max_concurrent_trials, 2) << "two CPU slots";
  EXPECT_GE(plan->brackets.size(), 1u);
  EXPECT_GE(plan->brackets[0].num_rungs, 2) << "something to stop early";
}

// configs/records: the JSON-records task on the diabetes study, checked as
// the built-in trainer would check it (no warnings: every name is the MLP's).
TEST(ShippedConfigsTest, RecordsConfigsParseAndPlanForTheMlp) {
  const std::string dir = std::string(DET_SOURCE_DIR) + "/configs/records";
  for (const std::string name : {"const.yaml", "adaptive.yaml"}) {
    SCOPED_TRACE(name);
    auto text = ReadExperimentConfigFile(dir + "/" + name);
    ASSERT_TRUE(text.ok()) << text.status();
    auto cfg = ParseExperimentConfig(*text);
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    for (const ConfigError& w : cfg->warnings) ADD_FAILURE() << w.ToString();
    EXPECT_EQ(trainer::TaskForData(cfg->data), trainer::Task::kRecords);
    EXPECT_EQ(cfg->searcher.metric, "validation_rmse");
    EXPECT_TRUE(cfg->searcher.smaller_is_better);
    const auto& known = trainer::KnownHParamNames(trainer::Task::kRecords);
    for (const auto& [hp, spec] : cfg->hyperparameters) {
      EXPECT_THAT(known, ::testing::Contains(hp)) << "unknown to the MLP";
    }
    auto plan = PlanSearch(*cfg);
    ASSERT_TRUE(plan.ok()) << plan.status();
  }
}

}  // namespace
}  // namespace det::searcher
