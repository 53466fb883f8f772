// Determined's config forms: time_metric + max_time (0.38), max_length as a
// map or a bare integer, no length where the trial decides,
// environment.environment_variables in each form, fields det cannot honour
// accepted with a warning naming them; and a corpus of Determined-style
// configs (tests/common/determined_configs/) read as their comments expect.
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "common/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace det {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ExperimentConfig Ok(const std::string& yaml) {
  auto cfg = ParseExperimentConfig(yaml);
  EXPECT_TRUE(cfg.ok()) << cfg.status() << "\n" << yaml;
  return cfg.ok() ? *cfg : ExperimentConfig{};
}

std::string Errors(const std::string& yaml) {
  auto cfg = ParseExperimentConfig(yaml);
  EXPECT_FALSE(cfg.ok()) << yaml;
  return cfg.ok() ? "" : std::string(cfg.status().message());
}

std::vector<std::string> WarnedPaths(const ExperimentConfig& cfg) {
  std::vector<std::string> out;
  for (const ConfigError& w : cfg.warnings) out.push_back(w.path);
  return out;
}

std::string Searcher(const std::string& name, const std::string& body,
                     const std::string& rest = "") {
  const bool trials = name == "random" || name == "adaptive_asha";
  return absl::StrCat("searcher:\n  name: ", name,
                      "\n  metric: validation_loss\n",
                      trials ? "  max_trials: 4\n" : "", body, rest);
}

TEST(DeterminedConfigTest, TimeMetricOfAUnitIsTheLength) {
  for (auto [metric, unit] : {std::make_pair("batches", Unit::kBatches),
                              std::make_pair("epochs", Unit::kEpochs),
                              std::make_pair("records", Unit::kRecords)}) {
    ExperimentConfig cfg =
        Ok(Searcher("adaptive_asha", absl::StrCat("  time_metric: ", metric,
                                                  "\n  max_time: 937\n")));
    EXPECT_EQ(cfg.searcher.max_length.unit, unit) << metric;
    EXPECT_EQ(cfg.searcher.max_length.value, 937);
    EXPECT_EQ(cfg.searcher.time_metric, metric);
    EXPECT_FALSE(cfg.searcher.trial_decides_length);
  }
}

TEST(DeterminedConfigTest, TimeMetricAndMaxTimeGoTogether) {
  EXPECT_THAT(Errors(Searcher("adaptive_asha", "  max_time: 10\n")),
              HasSubstr("searcher.time_metric: missing: time_metric and "
                        "max_time go together"));
  EXPECT_THAT(Errors(Searcher("adaptive_asha", "  time_metric: batches\n")),
              HasSubstr("searcher.max_time: missing"));
  EXPECT_THAT(Errors(Searcher("adaptive_asha",
                              "  time_metric: batches\n  max_time: 0\n")),
              HasSubstr("searcher.max_time"));
}

TEST(DeterminedConfigTest, CustomTimeMetric) {
  // Lengths (ASHA's rungs included) count in a metric the trial reports.
  for (const char* name : {"adaptive_asha", "random"}) {
    ExperimentConfig cfg =
        Ok(Searcher(name, "  time_metric: steps\n  max_time: 10\n",
                    "entrypoint: python3 t.py\n"));
    EXPECT_TRUE(cfg.searcher.metric_length) << name;
    EXPECT_FALSE(cfg.searcher.trial_decides_length) << name;
    EXPECT_EQ(cfg.searcher.max_length.value, 10) << name;
    EXPECT_EQ(cfg.searcher.time_metric, "steps");
    EXPECT_TRUE(WarnedPaths(cfg).empty()) << name;
  }
  // batches, epochs and records are the built-in units, not a metric.
  ExperimentConfig epochs =
      Ok(Searcher("random", "  time_metric: epochs\n  max_time: 3\n"));
  EXPECT_FALSE(epochs.searcher.metric_length);
  EXPECT_EQ(epochs.searcher.max_length.unit, Unit::kEpochs);
}

TEST(DeterminedConfigTest, MaxLengthMapOrBareInteger) {
  ExperimentConfig map = Ok(Searcher("random", "  max_length: {epochs: 2}\n"));
  EXPECT_EQ(map.searcher.max_length.unit, Unit::kEpochs);
  EXPECT_EQ(map.searcher.max_length.value, 2);
  ExperimentConfig bare = Ok(Searcher("random", "  max_length: 100\n"));
  EXPECT_EQ(bare.searcher.max_length.unit, Unit::kBatches);
  EXPECT_EQ(bare.searcher.max_length.value, 100);
  EXPECT_THAT(Errors(Searcher("random", "  max_length: -3\n")),
              HasSubstr("searcher.max_length"));
  EXPECT_THAT(Errors(Searcher("random", "  max_length: ten\n")),
              HasSubstr("searcher.max_length"));
}

TEST(DeterminedConfigTest, NoLength) {
  // The user's script decides (single, grid, random).
  for (const char* name : {"single", "random"}) {
    ExperimentConfig cfg = Ok(Searcher(name, "", "entrypoint: python3 t.py\n"));
    EXPECT_TRUE(cfg.searcher.trial_decides_length) << name;
    EXPECT_EQ(cfg.searcher.max_length.value, kTrialDecidesLength);
  }
  // ASHA, and the built-in trainer, need one: the error shows both forms.
  for (const std::string& yaml :
       {Searcher("adaptive_asha", "", "entrypoint: python3 t.py\n"),
        Searcher("single", "")}) {
    std::string e = Errors(yaml);
    EXPECT_THAT(e, HasSubstr("'time_metric: batches' with 'max_time: 1000'"));
    EXPECT_THAT(e, HasSubstr("'max_length: {batches: 1000}'"));
  }
}

TEST(DeterminedConfigTest, EnvironmentVariablesInEachForm) {
  const std::string base = Searcher("single", "  max_length: 10\n");
  ExperimentConfig list = Ok(absl::StrCat(
      base, "environment:\n  environment_variables: [A=1, B=x=y]\n"));
  EXPECT_THAT(list.environment_variables, ElementsAre("A=1", "B=x=y"));
  EXPECT_THAT(list.environment_variables_cuda, ElementsAre("A=1", "B=x=y"));
  ExperimentConfig map = Ok(absl::StrCat(
      base, "environment:\n  environment_variables: {A: 1, B: two}\n"));
  EXPECT_THAT(map.environment_variables, ElementsAre("A=1", "B=two"));
  ExperimentConfig variants = Ok(absl::StrCat(base, R"(environment:
  environment_variables:
    cpu: [DEV=cpu]
    cuda: [DEV=gpu, NCCL_DEBUG=INFO]
)"));
  EXPECT_THAT(variants.environment_variables, ElementsAre("DEV=cpu"));
  EXPECT_THAT(variants.environment_variables_cuda,
              ElementsAre("DEV=gpu", "NCCL_DEBUG=INFO"));
  EXPECT_THAT(Errors(absl::StrCat(
                  base, "environment:\n  environment_variables: [NOEQUALS]\n")),
              HasSubstr("environment.environment_variables[0]: expected "
                        "KEY=VALUE, found 'NOEQUALS'"));
  ExperimentConfig det_var = Ok(absl::StrCat(
      base, "environment:\n  environment_variables: [DET_TRIAL_ID=9]\n"));
  EXPECT_THAT(WarnedPaths(det_var),
              ElementsAre("environment.environment_variables[0]"));
}

TEST(DeterminedConfigTest, FieldsDetCannotHonourAreWarnedByName) {
  ExperimentConfig cfg =
      Ok(absl::StrCat(Searcher("single", "  max_length: 10\n"),
                      "environment: {image: x, force_pull_image: true}\n"
                      "resources: {slots: 0, slots_per_trial: 0}\n"));
  EXPECT_THAT(WarnedPaths(cfg),
              ::testing::UnorderedElementsAre(
                  "environment.image", "environment.force_pull_image",
                  "resources.slots", "resources.slots_per_trial"));
  EXPECT_EQ(cfg.resources.slots_per_trial, 1);
  // A field Determined does not have either is still an error.
  EXPECT_THAT(Errors(absl::StrCat(Searcher("single", "  max_length: 10\n"),
                                  "environment: {imagee: x}\n")),
              HasSubstr("did you mean 'image'?"));
}

TEST(DeterminedConfigTest, TrialClassRefusalSaysTheBuiltInTrainerStandsIn) {
  std::string e = Errors(absl::StrCat(Searcher("single", "  max_length: 10\n"),
                                      "hyperparameters: {learning_rate: 20}\n"
                                      "entrypoint: model_def:LMTrial\n"));
  EXPECT_THAT(e, HasSubstr("the built-in trainer would refuse this value"));
  EXPECT_THAT(e, HasSubstr("names a Determined Trial class, which det cannot "
                           "run (it has no Trial API)"));
}

// Every file of the corpus reads as its comments say.
TEST(DeterminedConfigTest, Corpus) {
  const std::filesystem::path dir =
      std::filesystem::path(DET_SOURCE_DIR) / "tests/common/determined_configs";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    ++files;
    std::ifstream in(entry.path());
    std::stringstream text;
    text << in.rdbuf();
    std::vector<std::string> want_warnings, want_errors;
    std::istringstream lines(text.str());
    for (std::string line; std::getline(lines, line);) {
      absl::string_view l = line;
      if (absl::ConsumePrefix(&l, "# expect-warning: ")) {
        want_warnings.emplace_back(l);
      } else if (absl::ConsumePrefix(&l, "# expect-error: ")) {
        want_errors.emplace_back(l);
      }
    }
    const std::string name = entry.path().filename().string();
    auto cfg = ParseExperimentConfig(text.str());
    if (!want_errors.empty()) {
      ASSERT_FALSE(cfg.ok()) << name;
      for (const std::string& e : want_errors) {
        EXPECT_THAT(std::string(cfg.status().message()), HasSubstr(e)) << name;
      }
      continue;
    }
    ASSERT_TRUE(cfg.ok()) << name << ": " << cfg.status();
    std::vector<std::string> warned = WarnedPaths(*cfg);
    EXPECT_THAT(warned, ::testing::UnorderedElementsAreArray(want_warnings))
        << name << " warned: " << absl::StrJoin(warned, ", ");
  }
  EXPECT_GE(files, 10);
}

}  // namespace
}  // namespace det
