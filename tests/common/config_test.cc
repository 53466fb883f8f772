// Experiment config parsing: every field, Determined's defaults, and a
// precise error (path, line, column, message) for every kind of bad input.
#include "common/config.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace det {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

constexpr char kMinimal[] = R"(searcher:
  name: single
  metric: validation_accuracy
  smaller_is_better: false
  max_length:
    batches: 100
)";

ExperimentConfig ParseOk(const std::string& yaml) {
  std::vector<ConfigError> errors;
  auto cfg = ParseExperimentConfig(yaml, &errors);
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  return cfg.ok() ? *cfg : ExperimentConfig{};
}

std::vector<ConfigError> ParseErrors(const std::string& yaml,
                                     const ParseLimits& limits = {}) {
  std::vector<ConfigError> errors;
  auto cfg = ParseExperimentConfig(yaml, &errors, limits);
  EXPECT_FALSE(cfg.ok()) << "expected errors for:\n" << yaml;
  if (!cfg.ok()) {
    EXPECT_EQ(cfg.status().code(), absl::StatusCode::kInvalidArgument);
    // The status lists every error, one per line.
    std::vector<std::string> lines;
    for (const ConfigError& e : errors) lines.push_back(e.ToString());
    EXPECT_EQ(cfg.status().message(), absl::StrJoin(lines, "\n"));
  }
  return errors;
}

// Asserts that the only error is at `path`, line, column, with `text` in it.
void ExpectOneError(const std::string& yaml, const std::string& path, int line,
                    int column, const std::string& text) {
  std::vector<ConfigError> errors = ParseErrors(yaml);
  ASSERT_THAT(errors, SizeIs(1)) << yaml;
  EXPECT_EQ(errors[0].path, path);
  EXPECT_EQ(errors[0].line, line);
  EXPECT_EQ(errors[0].column, column);
  EXPECT_THAT(errors[0].message, HasSubstr(text));
}

std::string WithSearcher(const std::string& searcher_body,
                         const std::string& rest = "") {
  return absl::StrCat("searcher:\n", searcher_body, rest);
}

TEST(ConfigTest, MinimalConfigTakesDeterminedDefaults) {
  ExperimentConfig cfg = ParseOk(kMinimal);
  EXPECT_EQ(cfg.searcher.name, SearcherName::kSingle);
  EXPECT_EQ(cfg.searcher.metric, "validation_accuracy");
  EXPECT_FALSE(cfg.searcher.smaller_is_better);
  EXPECT_EQ(cfg.searcher.max_length.unit, Unit::kBatches);
  EXPECT_EQ(cfg.searcher.max_length.value, 100);
  EXPECT_EQ(cfg.searcher.max_concurrent_trials, 16);
  EXPECT_EQ(cfg.searcher.mode, AshaMode::kStandard);
  EXPECT_EQ(cfg.searcher.divisor, 4);
  EXPECT_EQ(cfg.searcher.max_rungs, 5);
  EXPECT_EQ(cfg.resources.slots_per_trial, 1);
  EXPECT_FALSE(cfg.resources.max_slots.has_value());
  EXPECT_EQ(cfg.resources.priority, 42);
  EXPECT_EQ(cfg.max_restarts, 5);
  EXPECT_FALSE(cfg.min_validation_period.has_value());
  EXPECT_EQ(cfg.records_per_epoch, 0);
  EXPECT_EQ(cfg.checkpoint_storage.type, "shared_fs");
  EXPECT_EQ(cfg.checkpoint_storage.save_trial_best, 1);
  EXPECT_EQ(cfg.checkpoint_storage.save_trial_latest, 1);
  EXPECT_EQ(cfg.checkpoint_storage.save_experiment_best, 0);
  EXPECT_FALSE(cfg.has_experiment_seed);
  EXPECT_TRUE(cfg.entrypoint.empty());
  EXPECT_THAT(cfg.warnings, IsEmpty());

  // smaller_is_better defaults to true, as in Determined.
  ExperimentConfig loss =
      ParseOk(WithSearcher("  name: single\n  metric: validation_loss\n  "
                           "max_length: {epochs: 1}\n"));
  EXPECT_TRUE(loss.searcher.smaller_is_better);
  EXPECT_EQ(loss.searcher.max_length.unit, Unit::kEpochs);
}

TEST(ConfigTest, EveryFieldIsRead) {
  ExperimentConfig cfg = ParseOk(R"(
name: cifar10-asha
description: "a search"
labels: [cifar, asha]
hyperparameters:
  global_batch_size: 64
  learning_rate: {type: log, minval: -4, maxval: -1, base: 10}
searcher:
  name: adaptive_asha
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {records: 50000}
  max_trials: 16
  max_concurrent_trials: 4
  mode: aggressive
  divisor: 3
  max_rungs: 4
  bracket_rungs: [3, 2]
  stop_once: true
resources: {slots_per_trial: 2, max_slots: 4, priority: 10}
max_restarts: 2
min_validation_period: {batches: 50}
min_checkpoint_period: {epochs: 1}
records_per_epoch: 10000
checkpoint_storage:
  type: shared_fs
  host_path: /tmp/det-ckpt
  storage_path: exp
  save_trial_best: 2
  save_trial_latest: 0
  save_experiment_best: 3
reproducibility: {experiment_seed: 777}
data: {dir: /data/cifar, train_limit: 5000, augment: true}
entrypoint: /usr/local/bin/my-trainer --fast
)");
  EXPECT_EQ(cfg.name, "cifar10-asha");
  EXPECT_EQ(cfg.description, "a search");
  EXPECT_EQ(cfg.labels, (std::vector<std::string>{"cifar", "asha"}));
  EXPECT_EQ(cfg.searcher.name, SearcherName::kAdaptiveAsha);
  EXPECT_EQ(cfg.searcher.max_length.unit, Unit::kRecords);
  EXPECT_EQ(cfg.searcher.max_length.value, 50000);
  EXPECT_EQ(cfg.searcher.max_trials, 16);
  EXPECT_EQ(cfg.searcher.max_concurrent_trials, 4);
  EXPECT_EQ(cfg.searcher.mode, AshaMode::kAggressive);
  EXPECT_EQ(cfg.searcher.divisor, 3);
  EXPECT_EQ(cfg.searcher.max_rungs, 4);
  EXPECT_EQ(cfg.searcher.bracket_rungs, (std::vector<int64_t>{3, 2}));
  EXPECT_TRUE(cfg.searcher.stop_once);
  EXPECT_EQ(cfg.resources.slots_per_trial, 2);
  EXPECT_EQ(cfg.resources.max_slots, 4);
  EXPECT_EQ(cfg.resources.priority, 10);
  EXPECT_EQ(cfg.max_restarts, 2);
  ASSERT_TRUE(cfg.min_validation_period.has_value());
  EXPECT_EQ(cfg.min_validation_period->unit, Unit::kBatches);
  EXPECT_EQ(cfg.min_validation_period->value, 50);
  ASSERT_TRUE(cfg.min_checkpoint_period.has_value());
  EXPECT_EQ(cfg.min_checkpoint_period->unit, Unit::kEpochs);
  EXPECT_EQ(cfg.records_per_epoch, 10000);
  EXPECT_EQ(cfg.checkpoint_storage.host_path, "/tmp/det-ckpt");
  EXPECT_EQ(cfg.checkpoint_storage.storage_path, "exp");
  EXPECT_EQ(cfg.checkpoint_storage.save_trial_best, 2);
  EXPECT_EQ(cfg.checkpoint_storage.save_trial_latest, 0);
  EXPECT_EQ(cfg.checkpoint_storage.save_experiment_best, 3);
  EXPECT_TRUE(cfg.has_experiment_seed);
  EXPECT_EQ(cfg.experiment_seed, 777u);
  EXPECT_EQ(cfg.data["dir"], Value("/data/cifar"));
  EXPECT_EQ(cfg.data["train_limit"], Value(5000));
  EXPECT_EQ(cfg.data["augment"], Value(true));
  EXPECT_EQ(cfg.entrypoint, "/usr/local/bin/my-trainer --fast");
}

TEST(ConfigTest, EveryHyperparameterType) {
  ExperimentConfig cfg = ParseOk(absl::StrCat(kMinimal, R"(
hyperparameters:
  bare_int: 64
  bare_float: 0.5
  bare_string: adam
  bare_bool: true
  quoted_number: "64"
  bare_list: [1, 2, 3]
  typed_const: {type: const, val: {a: 1}}
  an_int: {type: int, minval: 1, maxval: 5, count: 3}
  a_double: {type: double, minval: 0.1, maxval: 0.5}
  a_log: {type: log, minval: -5, maxval: -1, base: 10, count: 4}
  default_base: {type: log, minval: -2, maxval: 0}
  a_cat: {type: categorical, vals: [sgd, adam, 3, {nested: true}]}
  optim:
    lr: {type: double, minval: 0.01, maxval: 0.1}
    inner:
      beta: 0.9
  empty_group: {}
)"));
  const HParamSpecs& h = cfg.hyperparameters;
  using T = HParamSpec::Type;
  EXPECT_EQ(h.at("bare_int").type, T::kConst);
  EXPECT_EQ(h.at("bare_int").val, Value(64));
  EXPECT_EQ(h.at("bare_float").val, Value(0.5));
  EXPECT_EQ(h.at("bare_string").val, Value("adam"));
  EXPECT_EQ(h.at("bare_bool").val, Value(true));
  EXPECT_EQ(h.at("quoted_number").val, Value("64"));
  EXPECT_EQ(h.at("bare_list").type, T::kConst);
  EXPECT_EQ(h.at("bare_list").val,
            Value(ValueList{Value(1), Value(2), Value(3)}));
  EXPECT_EQ(h.at("typed_const").val, Value(ValueMap{{"a", Value(1)}}));
  EXPECT_EQ(h.at("an_int").type, T::kInt);
  EXPECT_EQ(h.at("an_int").minval, 1);
  EXPECT_EQ(h.at("an_int").maxval, 5);
  EXPECT_EQ(h.at("an_int").count, 3);
  EXPECT_EQ(h.at("a_double").type, T::kDouble);
  EXPECT_FALSE(h.at("a_double").count.has_value());
  EXPECT_EQ(h.at("a_log").type, T::kLog);
  EXPECT_EQ(h.at("a_log").base, 10);
  EXPECT_EQ(h.at("a_log").minval, -5);
  EXPECT_EQ(h.at("default_base").base, 10);
  EXPECT_EQ(h.at("a_cat").type, T::kCategorical);
  ASSERT_THAT(h.at("a_cat").vals, SizeIs(4));
  EXPECT_EQ(h.at("a_cat").vals[2], Value(3));
  EXPECT_EQ(h.at("optim").type, T::kGroup);
  EXPECT_EQ(h.at("optim").group.at("lr").type, T::kDouble);
  EXPECT_EQ(h.at("optim").group.at("inner").type, T::kGroup);
  EXPECT_EQ(h.at("optim").group.at("inner").group.at("beta").val, Value(0.9));
  EXPECT_EQ(h.at("empty_group").type, T::kGroup);
  EXPECT_THAT(h.at("empty_group").group, IsEmpty());
}

TEST(ConfigTest, DeterminedConfigReadsUnchanged) {
  // The shape of a Determined CIFAR-10 PyTorch experiment.
  ExperimentConfig cfg = ParseOk(R"(
name: cifar10_pytorch_adaptive_search
workspace: research
project: cifar
hyperparameters:
  learning_rate: {type: log, minval: -5.0, maxval: 1.0, base: 10.0}
  global_batch_size: 32
records_per_epoch: 50000
searcher:
  name: adaptive_asha
  metric: validation_error
  max_length:
    epochs: 32
  max_trials: 16
entrypoint: model_def:CIFARTrial
min_validation_period:
  epochs: 1
environment:
  image: determinedai/environments:py-3.8-pytorch-1.12
bind_mounts:
  - host_path: /data
    container_path: /data
profiling: {enabled: true}
scheduling_unit: 100
optimizations: {aggregation_frequency: 1}
resources: {slots_per_trial: 1, resource_pool: gpu}
max_restarts: 3
)");
  EXPECT_EQ(cfg.searcher.name, SearcherName::kAdaptiveAsha);
  EXPECT_EQ(cfg.records_per_epoch, 50000);
  EXPECT_TRUE(cfg.entrypoint.empty()) << "Python trial -> built-in trainer";
  std::vector<std::string> warned;
  for (const ConfigError& w : cfg.warnings) warned.push_back(w.path);
  EXPECT_THAT(warned,
              ::testing::UnorderedElementsAre(
                  "workspace", "project", "entrypoint", "environment.image",
                  "bind_mounts", "profiling", "scheduling_unit",
                  "optimizations", "resources.resource_pool"));
}

TEST(ConfigTest, AccuracyWithSmallerIsBetterIsLegalButWarned) {
  ExperimentConfig cfg =
      ParseOk(WithSearcher("  name: single\n  metric: validation_accuracy\n"
                           "  max_length: {batches: 1}\n"));
  EXPECT_TRUE(cfg.searcher.smaller_is_better);
  ASSERT_THAT(cfg.warnings, SizeIs(1));
  EXPECT_EQ(cfg.warnings[0].path, "searcher.smaller_is_better");
  EXPECT_THAT(cfg.warnings[0].message, HasSubstr("smaller_is_better: false"));
}

TEST(ConfigTest, NameTheBuiltInTrainerDoesNotKnowIsWarnedWhereItIs) {
  // kMinimal has 6 lines; the hyperparameters start on line 7.
  ExperimentConfig cfg = ParseOk(absl::StrCat(kMinimal, R"(hyperparameters:
  learning_rate: 0.01
  learnin_rate: 0.1
  _note: ignored by the trainer
  zzz: 1
)"));
  ASSERT_THAT(cfg.warnings, SizeIs(2));
  EXPECT_EQ(cfg.warnings[0].path, "hyperparameters.learnin_rate");
  EXPECT_EQ(cfg.warnings[0].line, 9);
  EXPECT_EQ(cfg.warnings[0].column, 3);
  EXPECT_THAT(cfg.warnings[0].message,
              AllOf(HasSubstr("no hyperparameter 'learnin_rate'"),
                    HasSubstr("invalid-hyperparameter exit"),
                    HasSubstr("did you mean 'learning_rate'?"),
                    HasSubstr("It knows batch_norm, conv_layers")));
  EXPECT_EQ(cfg.warnings[1].path, "hyperparameters.zzz");
  EXPECT_THAT(cfg.warnings[1].message,
              AllOf(HasSubstr("exit. It knows"), Not(HasSubstr("did you"))));

  // An entrypoint of the user's own takes any names.
  EXPECT_THAT(ParseOk(absl::StrCat(kMinimal, R"(entrypoint: ./train
hyperparameters:
  learnin_rate: 0.1
)"))
                  .warnings,
              IsEmpty());
}

// data.format: jsonl: the checks follow the JSON-records MLP's rules (its
// own names; the CNN's are unknown to it) and its data section.
constexpr char kRecordsMinimal[] = R"(searcher:
  name: random
  metric: validation_rmse
  max_trials: 2
  max_length:
    batches: 100
data:
  format: jsonl
  path: /data/patients.jsonl
  label: stay
  task: regression
  validation_split: 0.2
)";

TEST(ConfigErrorsTest, JsonRecordsTaskIsCheckedAsTheMlp) {
  // kRecordsMinimal has 12 lines; the hyperparameters start on line 13.
  std::vector<ConfigError> errors =
      ParseErrors(absl::StrCat(kRecordsMinimal, R"(hyperparameters:
  hidden_layers: {type: int, minval: 0, maxval: 20}
  activation: {type: categorical, vals: [relu, swish]}
  n_filters1: 16
)"));
  ASSERT_THAT(errors, SizeIs(2));
  EXPECT_EQ(errors[0].path, "hyperparameters.hidden_layers");
  EXPECT_EQ(errors[0].line, 14);
  EXPECT_THAT(errors[0].message, HasSubstr("an integer in [0, 16], found 17"));
  EXPECT_EQ(errors[1].path, "hyperparameters.activation.vals[1]");
  EXPECT_THAT(errors[1].message, HasSubstr("found \"swish\""));

  ExperimentConfig cfg =
      ParseOk(absl::StrCat(kRecordsMinimal, R"(hyperparameters:
  hidden_layers: 2
  n_filters1: 16
)"));
  ASSERT_THAT(cfg.warnings, SizeIs(1));
  EXPECT_EQ(cfg.warnings[0].path, "hyperparameters.n_filters1");
  EXPECT_THAT(
      cfg.warnings[0].message,
      AllOf(HasSubstr("no hyperparameter 'n_filters1' for JSON records"),
            HasSubstr("It knows activation, batch_norm")));

  // The same names on CIFAR-10 (no data.format): hidden_layers is unknown.
  cfg =
      ParseOk(absl::StrCat(kMinimal, "hyperparameters:\n  hidden_layers: 2\n"));
  ASSERT_THAT(cfg.warnings, SizeIs(1));
  EXPECT_THAT(cfg.warnings[0].message,
              HasSubstr("no hyperparameter 'hidden_layers'"));

  // validation_rmse is what a regression reports; accuracy is not.
  cfg = ParseOk(kRecordsMinimal);
  EXPECT_THAT(cfg.warnings, IsEmpty());
  std::string accuracy = kRecordsMinimal;
  accuracy.replace(accuracy.find("validation_rmse"), 15, "validation_accuracy");
  cfg = ParseOk(accuracy);
  ASSERT_FALSE(cfg.warnings.empty());
  EXPECT_THAT(
      cfg.warnings.back().message,
      HasSubstr("reports validation_loss, validation_mae, validation_rmse"));
}

TEST(ConfigErrorsTest, JsonRecordsDataSectionIsChecked) {
  std::string yaml = kRecordsMinimal;
  yaml.replace(yaml.find("  label: stay\n"), 14, "");
  // At the data section (its first key) when the key is absent.
  ExpectOneError(yaml, "data.label", 8, 3, "required for JSON records");

  yaml = kRecordsMinimal;
  yaml.replace(yaml.find("regression"), 10, "clustering");
  ExpectOneError(
      yaml, "data.task", 11, 9,
      "expected 'regression' or 'classification', found 'clustering'");

  yaml = absl::StrCat(kRecordsMinimal, "  validation_path: /data/v.jsonl\n");
  ExpectOneError(yaml, "data.validation_split", 12, 21, "give exactly one of");
}

// Values det-trial would refuse, at the ends of each range a search can
// reach, are errors where they are written (kMinimal has 6 lines).
TEST(ConfigErrorsTest, ValuesTheBuiltInTrainerRefuses) {
  const std::string space = R"(hyperparameters:
  dropout: 1.5
  conv_layers: {type: int, minval: 2, maxval: 7}
  learning_rate: {type: log, minval: -4, maxval: 2, base: 10}
  optimizer: {type: categorical, vals: [adam, sgd, rmsprop]}
  momentum: {type: double, minval: 0.5, maxval: 1.0}
)";
  std::vector<ConfigError> errors = ParseErrors(absl::StrCat(kMinimal, space));
  ASSERT_THAT(errors, SizeIs(4));
  EXPECT_EQ(errors[0].path, "hyperparameters.dropout");
  EXPECT_EQ(errors[0].line, 8);
  EXPECT_EQ(errors[0].column, 12);
  EXPECT_THAT(errors[0].message,
              AllOf(HasSubstr("built-in trainer would refuse this value"),
                    HasSubstr("expected a number in [0, 1), found 1.5")));
  // The first refused value of an int range, 6, is inside it.
  EXPECT_EQ(errors[1].path, "hyperparameters.conv_layers");
  EXPECT_EQ(errors[1].line, 9);
  EXPECT_THAT(errors[1].message,
              AllOf(HasSubstr("values this search gives trials"),
                    HasSubstr("an integer in [1, 5], found 6")));
  EXPECT_EQ(errors[2].path, "hyperparameters.learning_rate.maxval");
  EXPECT_THAT(errors[2].message, HasSubstr("(0, 10]"));
  EXPECT_EQ(errors[3].path, "hyperparameters.optimizer.vals[2]");
  EXPECT_EQ(errors[3].line, 11);
  EXPECT_EQ(errors[3].column, 52);
  EXPECT_THAT(errors[3].message, HasSubstr("found \"rmsprop\""));

  // momentum's range stops short of 1.0 (random values lie in [min, max));
  // a grid of 3 tries 0.5, 0.75 and 1.0 itself.
  const std::string grid = R"(searcher:
  name: grid
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 10}
hyperparameters:
  momentum: {type: double, minval: 0.5, maxval: 1.0, count: 3}
)";
  ExpectOneError(grid, "hyperparameters.momentum", 7, 13,
                 "expected a number in [0, 1), found 1");

  // Inside a range: kernel_size must be odd, and an int range reaches 2;
  // a grid tries only its own points (1, 5, 9 here: all odd).
  ExpectOneError(absl::StrCat(kMinimal, R"(hyperparameters:
  kernel_size: {type: int, minval: 1, maxval: 9}
)"),
                 "hyperparameters.kernel_size", 8, 16,
                 "an odd integer in [1, 9], found 2");
  ParseOk(absl::StrReplaceAll(
      grid, {{"momentum: {type: double, minval: 0.5, maxval: 1.0, count: 3}",
              "kernel_size: {type: int, minval: 1, maxval: 9, count: 3}"}}));

  // Wide ranges are checked at their ends only, without enumerating them.
  ExpectOneError(absl::StrCat(kMinimal, R"(hyperparameters:
  lr_step_size: {type: int, minval: -9000000000000000000, maxval: 10}
)"),
                 "hyperparameters.lr_step_size.minval", 8, 37,
                 "found -9000000000000000000");
  ParseOk(absl::StrReplaceAll(
      grid,
      {{"momentum: {type: double, minval: 0.5, maxval: 1.0, count: 3}",
        "dropout: {type: double, minval: 0, maxval: 0.9, count: 90000}"}}));

  // Each of a trial's slots trains on an equal share of the global batch.
  ExpectOneError(absl::StrCat(kMinimal, R"(resources: {slots_per_trial: 3}
hyperparameters:
  global_batch_size: {type: categorical, vals: [64, 96]}
)"),
                 "hyperparameters.global_batch_size.vals[0]", 9, 49,
                 "64 does not split evenly over 3 slots");

  // A trainer of the user's own: its rules are not known here (ParseOk
  // fails the test on any error).
  ExperimentConfig own =
      ParseOk(absl::StrCat(kMinimal, "entrypoint: ./train\n", space));
  for (const ConfigError& w : own.warnings) {
    EXPECT_THAT(w.message, Not(HasSubstr("built-in trainer"))) << w.path;
  }
}

TEST(ConfigTest, MergeKeysAndAnchors) {
  ExperimentConfig cfg = ParseOk(R"(
searcher:
  <<: {name: random, metric: validation_loss, max_trials: 3}
  max_length: {batches: 10}
  max_trials: 5
hyperparameters:
  lr: &range {type: double, minval: 0.1, maxval: 0.2}
  momentum: *range
)");
  EXPECT_EQ(cfg.searcher.name, SearcherName::kRandom);
  EXPECT_EQ(cfg.searcher.metric, "validation_loss");
  EXPECT_EQ(cfg.searcher.max_trials, 5) << "explicit keys win over merged";
  EXPECT_EQ(cfg.hyperparameters.at("momentum").type, HParamSpec::Type::kDouble);
  EXPECT_EQ(cfg.hyperparameters.at("momentum").maxval, 0.2);
}

TEST(ConfigErrorsTest, MalformedYaml) {
  ExpectOneError("searcher:\n  name: [single\n  metric: x\n", "", 3, 9,
                 "malformed YAML");
}

TEST(ConfigErrorsTest, MissingMetric) {
  ExpectOneError(WithSearcher("  name: single\n  max_length: {batches: 1}\n"),
                 "searcher.metric", 2, 3, "missing");
}

TEST(ConfigErrorsTest, MissingSearcher) {
  ExpectOneError("name: x\n", "searcher", 1, 1, "missing");
}

TEST(ConfigErrorsTest, MinvalGreaterThanMaxval) {
  ExpectOneError(
      absl::StrCat(kMinimal,
                   "hyperparameters:\n"
                   "  lr: {type: double, minval: 0.5, maxval: 0.1}\n"),
      "hyperparameters.lr.minval", 8, 30,
      "minval (0.5) is greater than maxval (0.1)");
}

TEST(ConfigErrorsTest, LogBaseNotPositive) {
  ExpectOneError(absl::StrCat(kMinimal,
                              "hyperparameters:\n"
                              "  lr:\n"
                              "    type: log\n"
                              "    minval: -3\n"
                              "    maxval: -1\n"
                              "    base: 0\n"),
                 "hyperparameters.lr.base", 12, 11, "must be > 0, found 0");
}

TEST(ConfigErrorsTest, EmptyVals) {
  ExpectOneError(absl::StrCat(kMinimal,
                              "hyperparameters:\n"
                              "  opt: {type: categorical, vals: []}\n"),
                 "hyperparameters.opt.vals", 8, 34, "the list is empty");
}

TEST(ConfigErrorsTest, GridWithoutCount) {
  ExpectOneError(R"(searcher:
  name: grid
  metric: validation_loss
  max_length: {batches: 10}
hyperparameters:
  lr: {type: double, minval: 0.01, maxval: 0.1}
  layers: {type: int, minval: 1, maxval: 3, count: 3}
)",
                 "hyperparameters.lr.count", 6, 7,
                 "the grid searcher needs a count");
}

TEST(ConfigErrorsTest, UnknownSearcherName) {
  ExpectOneError(WithSearcher("  name: gird\n  metric: m\n"
                              "  max_length: {batches: 1}\n"),
                 "searcher.name", 2, 9, "did you mean 'grid'?");
  ExpectOneError(WithSearcher("  name: sync_halving\n  metric: m\n"
                              "  max_length: {batches: 1}\n"),
                 "searcher.name", 2, 9, "not supported by det");
}

TEST(ConfigErrorsTest, NegativeLengths) {
  ExpectOneError(
      absl::StrCat(kMinimal, "min_validation_period:\n  batches: -5\n"),
      "min_validation_period.batches", 8, 12, "must not be negative, found -5");
  ExpectOneError(WithSearcher("  name: single\n  metric: validation_loss\n"
                              "  max_length: {epochs: -2}\n"),
                 "searcher.max_length.epochs", 4, 24,
                 "must be positive, found -2");
}

TEST(ConfigErrorsTest, MaxLengthMustBePositive) {
  ExpectOneError(WithSearcher("  name: single\n  metric: validation_loss\n"
                              "  max_length: {batches: 0}\n"),
                 "searcher.max_length.batches", 4, 25, "must be positive");
}

TEST(ConfigErrorsTest, LengthInTwoUnits) {
  ExpectOneError(
      WithSearcher("  name: single\n  metric: validation_loss\n"
                   "  max_length:\n    batches: 10\n    epochs: 1\n"),
      "searcher.max_length.epochs", 6, 5, "found both 'batches' and 'epochs'");
}

TEST(ConfigErrorsTest, DivisorNotAboveOne) {
  ExpectOneError(
      WithSearcher("  name: adaptive_asha\n  metric: validation_loss\n"
                   "  max_length: {batches: 10}\n  max_trials: 4\n"
                   "  divisor: 1\n"),
      "searcher.divisor", 6, 12, "must be greater than 1");
}

TEST(ConfigErrorsTest, MaxTrialsMissingForRandomAndAsha) {
  for (const char* name : {"random", "adaptive_asha"}) {
    ExpectOneError(WithSearcher(absl::StrCat("  name: ", name,
                                             "\n  metric: validation_loss\n"
                                             "  max_length: {batches: 10}\n")),
                   "searcher.max_trials", 2, 3, "needs max_trials");
  }
}

TEST(ConfigErrorsTest, FieldThatDoesNotApplyToTheSearcher) {
  ExpectOneError(WithSearcher("  name: grid\n  metric: validation_loss\n"
                              "  max_length: {batches: 10}\n  max_trials: 4\n"),
                 "searcher.max_trials", 5, 3,
                 "does not apply to the grid searcher");
}

TEST(ConfigErrorsTest, RangesOfResourcesAndRestarts) {
  ExpectOneError(absl::StrCat(kMinimal, "resources: {priority: 0}\n"),
                 "resources.priority", 7, 23, "from 1 to 99, found 0");
  ExpectOneError(absl::StrCat(kMinimal, "resources: {priority: 100}\n"),
                 "resources.priority", 7, 23, "from 1 to 99, found 100");
  ExpectOneError(absl::StrCat(kMinimal, "resources: {slots_per_trial: -1}\n"),
                 "resources.slots_per_trial", 7, 30, "found -1");
  ExpectOneError(absl::StrCat(kMinimal, "max_restarts: -1\n"), "max_restarts",
                 7, 15, "found -1");
  ExpectOneError(
      absl::StrCat(kMinimal, "resources: {slots_per_trial: 4, max_slots: 2}\n"),
      "resources.max_slots", 7, 44, "no trial could ever be scheduled");
}

TEST(ConfigErrorsTest, SmallerIsBetterMustBeBool) {
  ExpectOneError(WithSearcher("  name: single\n  metric: validation_loss\n"
                              "  smaller_is_better: maybe\n"
                              "  max_length: {batches: 1}\n"),
                 "searcher.smaller_is_better", 4, 22,
                 "expected true or false, found 'maybe'");
}

TEST(ConfigErrorsTest, TypeMismatchSaysWhatWasFound) {
  ExpectOneError(WithSearcher("  name: random\n  metric: validation_loss\n"
                              "  max_length: {batches: 1}\n"
                              "  max_trials: lots\n"),
                 "searcher.max_trials", 5, 15,
                 "expected an integer, found 'lots'");
  ExpectOneError(absl::StrCat(kMinimal, "max_restarts: [1]\n"), "max_restarts",
                 7, 15, "found a list");
  ExpectOneError(absl::StrCat(kMinimal, "max_restarts: 1.5\n"), "max_restarts",
                 7, 15, "expected an integer, found '1.5'");
}

TEST(ConfigErrorsTest, UnknownFieldsWithDidYouMean) {
  ExpectOneError(absl::StrCat(kMinimal, "hyperparameter:\n  lr: 0.1\n"),
                 "hyperparameter", 7, 1, "did you mean 'hyperparameters'?");
  ExpectOneError(WithSearcher("  name: random\n  metric: validation_loss\n"
                              "  max_length: {batches: 1}\n"
                              "  max_trials: 2\n  max_trails: 3\n"),
                 "searcher.max_trails", 6, 3, "did you mean 'max_trials'?");
  ExpectOneError(absl::StrCat(kMinimal,
                              "hyperparameters:\n"
                              "  lr: {type: double, minval: 0, "
                              "maxval: 1, cont: 3}\n"),
                 "hyperparameters.lr.cont", 8, 44, "did you mean 'count'?");
  std::vector<ConfigError> errors =
      ParseErrors(absl::StrCat(kMinimal, "zebra: 1\n"));
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_THAT(errors[0].message, HasSubstr("unknown field 'zebra'"));
  EXPECT_THAT(errors[0].message, HasSubstr("expected one of"));
}

TEST(ConfigErrorsTest, UnknownHyperparameterType) {
  ExpectOneError(absl::StrCat(kMinimal,
                              "hyperparameters:\n"
                              "  opt: {type: categorial, vals: [a]}\n"),
                 "hyperparameters.opt.type", 8, 15,
                 "did you mean 'categorical'?");
}

TEST(ConfigErrorsTest, EveryProblemIsReportedAtOnce) {
  std::vector<ConfigError> errors = ParseErrors(R"(searcher:
  name: adaptive_asha
  max_length: {batches: -1}
  divisor: 0.5
hyperparameters:
  lr: {type: double, minval: 2, maxval: 1}
  opt: {type: categorical, vals: []}
resources: {priority: 500}
bogus: true
)");
  std::vector<std::string> paths;
  for (const ConfigError& e : errors) paths.push_back(e.path);
  EXPECT_THAT(paths,
              ::testing::ElementsAre(
                  "searcher.metric", "searcher.max_trials",
                  "searcher.max_length.batches", "searcher.divisor",
                  "hyperparameters.lr.minval", "hyperparameters.opt.vals",
                  "resources.priority", "bogus"));
}

TEST(ConfigErrorsTest, DuplicateKeys) {
  ExpectOneError(absl::StrCat(kMinimal, "name: a\nname: b\n"), "", 8, 1,
                 "duplicate key 'name' (first given at line 7, column 1)");
}

TEST(ConfigErrorsTest, NotAMap) {
  ExpectOneError("just a string\n", "", 1, 1, "expected a map");
  ExpectOneError("", "", 0, 0, "the configuration is empty");
  ExpectOneError("# only a comment\n", "", 0, 0, "the configuration is empty");
}

TEST(ConfigErrorsTest, RefusesTooLargeInputBeforeParsing) {
  ParseLimits limits;
  limits.max_bytes = 64;
  std::string big = absl::StrCat(kMinimal, std::string(100, '#'));
  std::vector<ConfigError> errors = ParseErrors(big, limits);
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_THAT(errors[0].message,
              HasSubstr(absl::StrCat("is ", big.size(),
                                     " bytes; the limit is 64 bytes")));

  // With the default limit (1 MiB).
  std::string huge(ParseLimits{}.max_bytes + 1, ' ');
  errors = ParseErrors(huge);
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_THAT(errors[0].message, HasSubstr("the limit is 1048576 bytes"));
}

TEST(ConfigErrorsTest, RefusesTwoGigabyteFileByItsSize) {
  std::string path = ::testing::TempDir() + "/det_huge_config.yaml";
  int fd = ::open(path.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0600);
  ASSERT_GE(fd, 0);
  // Sparse: takes no disk space, and is refused without being read.
  ASSERT_EQ(::ftruncate(fd, int64_t{2} << 30), 0);
  ::close(fd);
  auto text = ReadExperimentConfigFile(path);
  ::unlink(path.c_str());
  ASSERT_FALSE(text.ok());
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(text.status().message()),
              HasSubstr("is 2147483648 bytes; the limit is 1048576 bytes"));

  auto missing = ReadExperimentConfigFile(path);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  auto dir = ReadExperimentConfigFile(::testing::TempDir());
  EXPECT_THAT(std::string(dir.status().message()),
              HasSubstr("not a regular file"));
}

TEST(ConfigErrorsTest, BinaryInputNamesTheByteOffset) {
  std::string with_nul =
      absl::StrCat("name: a\nsea", std::string(1, '\0'), "rcher: {}\n");
  ExpectOneError(with_nul, "", 2, 4, "a NUL byte at byte offset 11");
  std::string bad_utf8 = "name: caf\xC3\x28\n";
  ExpectOneError(bad_utf8, "", 1, 10,
                 "invalid UTF-8 (byte 0xc3) at byte offset 9");
  // Valid UTF-8 is fine.
  ExperimentConfig cfg = ParseOk(absl::StrCat("name: caf\xC3\xA9\n", kMinimal));
  EXPECT_EQ(cfg.name, "caf\xC3\xA9");
}

TEST(ConfigErrorsTest, DeepNestingIsRefused) {
  std::string deep = absl::StrCat(kMinimal, "data: ", std::string(100, '['),
                                  std::string(100, ']'), "\n");
  std::vector<ConfigError> errors = ParseErrors(deep);
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_THAT(errors[0].message, HasSubstr("deeper than 32 levels"));
  EXPECT_EQ(errors[0].line, 7);

  // Far deeper than yaml-cpp's own guard: an error, not a stack overflow.
  std::string abyss = absl::StrCat("data: ", std::string(100000, '['));
  errors = ParseErrors(abyss);
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_THAT(errors[0].message, HasSubstr("malformed YAML"));
}

TEST(ConfigErrorsTest, BillionLaughsStopsAtTheNodeLimit) {
  std::string yaml = "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i <= 9; ++i) {
    absl::StrAppend(&yaml, "a", i, ": &a", i, " [");
    for (int k = 0; k < 9; ++k)
      absl::StrAppend(&yaml, k ? ", " : "", "*a", i - 1);
    absl::StrAppend(&yaml, "]\n");
  }
  auto start = std::chrono::steady_clock::now();
  std::vector<ConfigError> errors = ParseErrors(yaml);
  auto elapsed = std::chrono::steady_clock::now() - start;
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_THAT(errors[0].message, HasSubstr("more than 100000 YAML nodes"));
  // 9^10 nodes if expanded; bounded work means well under a minute even on
  // a loaded machine (typically milliseconds).
  EXPECT_LT(elapsed, std::chrono::seconds(60));
}

TEST(ConfigErrorsTest, SelfReferentialAliasIsHandled) {
  std::vector<ConfigError> errors;
  auto cfg = ParseExperimentConfig("a: &x [*x]\n", &errors);
  EXPECT_FALSE(cfg.ok());
  EXPECT_FALSE(errors.empty());
}

TEST(ConfigErrorsTest, StrayCommaDoesNotHangYamlCpp) {
  // yaml-cpp 0.7's LoadAll loops forever (and exhausts memory) on this.
  ExpectOneError(",", "", 1, 1, "malformed YAML: unexpected ','");
  ExpectOneError(absl::StrCat(kMinimal, ",\n"), "", 7, 1, "malformed YAML");
  EXPECT_FALSE(ApplyConfigOverrides(",", {"a=1"}).ok());
  EXPECT_FALSE(ApplyConfigOverrides(kMinimal, {"a=,"}).ok());
}

TEST(ConfigErrorsTest, MultipleDocuments) {
  ExpectOneError(absl::StrCat(kMinimal, "---\nname: x\n"), "", 7, 1,
                 "found more than one YAML document");
}

TEST(ConfigErrorsTest, CheckpointStorage) {
  ExpectOneError(absl::StrCat(kMinimal, "checkpoint_storage: {type: s3}\n"),
                 "checkpoint_storage.type", 7, 28, "not supported by det");
  ExpectOneError(
      absl::StrCat(kMinimal, "checkpoint_storage: {host_path: relative}\n"),
      "checkpoint_storage.host_path", 7, 33, "absolute path");
  ExpectOneError(
      absl::StrCat(kMinimal, "checkpoint_storage: {storage_path: ../up}\n"),
      "checkpoint_storage.storage_path", 7, 36, "'..' is not allowed");
}

// Determined's directory storage: container_path, required and absolute;
// shared_fs's fields do not belong to it.
TEST(ConfigTest, DirectoryCheckpointStorage) {
  ExperimentConfig cfg = ParseOk(absl::StrCat(
      kMinimal,
      "checkpoint_storage:\n  type: directory\n  container_path: /mnt/ckpt\n"
      "  save_trial_latest: 2\n"));
  EXPECT_EQ(cfg.checkpoint_storage.type, "directory");
  EXPECT_EQ(cfg.checkpoint_storage.container_path, "/mnt/ckpt");
  EXPECT_EQ(cfg.checkpoint_storage.save_trial_latest, 2);
}

TEST(ConfigErrorsTest, DirectoryCheckpointStorage) {
  ExpectOneError(
      absl::StrCat(kMinimal, "checkpoint_storage: {type: directory}\n"),
      "checkpoint_storage.container_path", 7, 21, "required");
  ExpectOneError(
      absl::StrCat(
          kMinimal,
          "checkpoint_storage: {type: directory, container_path: x}\n"),
      "checkpoint_storage.container_path", 7, 55, "absolute path");
  std::vector<ConfigError> errors = ParseErrors(
      absl::StrCat(kMinimal,
                   "checkpoint_storage: {type: directory, container_path: /a, "
                   "host_path: /b}\n"));
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_THAT(errors[0].path, HasSubstr("host_path"));
  ExpectOneError(absl::StrCat(kMinimal, "checkpoint_storage: {type: gcs}\n"),
                 "checkpoint_storage.type", 7, 28,
                 "use shared_fs or directory");
}

TEST(ConfigErrorsTest, GridTooLarge) {
  std::vector<ConfigError> errors = ParseErrors(R"(searcher:
  name: grid
  metric: validation_loss
  max_length: {batches: 10}
hyperparameters:
  a: {type: double, minval: 0, maxval: 1, count: 1000}
  b: {type: double, minval: 0, maxval: 1, count: 1000}
)");
  ASSERT_THAT(errors, SizeIs(1));
  EXPECT_EQ(errors[0].path, "hyperparameters");
  EXPECT_THAT(errors[0].message, HasSubstr("the grid has 1000000 points"));
}

TEST(ConfigOverridesTest, SetsAndCreatesFields) {
  auto yaml = ApplyConfigOverrides(
      kMinimal, {"searcher.max_length.batches=7", "searcher.name=random",
                 "searcher.max_trials=4", "resources.slots_per_trial=2",
                 "hyperparameters.lr=0.01", "data={train_limit: 10}",
                 "description=hello world"});
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  ExperimentConfig cfg = ParseOk(*yaml);
  EXPECT_EQ(cfg.searcher.name, SearcherName::kRandom);
  EXPECT_EQ(cfg.searcher.max_trials, 4);
  EXPECT_EQ(cfg.searcher.max_length.value, 7);
  EXPECT_EQ(cfg.searcher.metric, "validation_accuracy");
  EXPECT_EQ(cfg.resources.slots_per_trial, 2);
  EXPECT_EQ(cfg.hyperparameters.at("lr").val, Value(0.01));
  EXPECT_EQ(cfg.data["train_limit"], Value(10));
  EXPECT_EQ(cfg.description, "hello world");
}

TEST(ConfigOverridesTest, RejectsBadOverrides) {
  EXPECT_THAT(
      std::string(
          ApplyConfigOverrides(kMinimal, {"searcher.name"}).status().message()),
      HasSubstr("not of the form key.path=value"));
  EXPECT_THAT(
      std::string(ApplyConfigOverrides(kMinimal, {"=3"}).status().message()),
      HasSubstr("not of the form"));
  EXPECT_THAT(
      std::string(
          ApplyConfigOverrides(kMinimal, {"a..b=3"}).status().message()),
      HasSubstr("empty name"));
  EXPECT_THAT(
      std::string(ApplyConfigOverrides(kMinimal, {"searcher.metric.x=3"})
                      .status()
                      .message()),
      HasSubstr("'searcher.metric' is not a map"));
  EXPECT_THAT(
      std::string(
          ApplyConfigOverrides(kMinimal, {"name=[1, 2"}).status().message()),
      HasSubstr("not valid YAML"));
  EXPECT_FALSE(ApplyConfigOverrides("- a\n- b\n", {"x=1"}).ok());
}

TEST(ConfigTest, GlobalBatchSize) {
  EXPECT_EQ(GlobalBatchSize({}), 64);
  EXPECT_EQ(GlobalBatchSize({{"global_batch_size", Value(128)}}), 128);
  EXPECT_EQ(GlobalBatchSize({{"global_batch_size", Value(32.0)}}), 32);
  EXPECT_EQ(GlobalBatchSize({{"global_batch_size", Value(0)}}), 64);
  EXPECT_EQ(GlobalBatchSize({{"global_batch_size", Value("big")}}), 64);
  EXPECT_EQ(GlobalBatchSize({{"global_batch_size", Value(12.5)}}), 64);
}

TEST(ConfigTest, ErrorToString) {
  EXPECT_EQ((ConfigError{"searcher.metric", 4, 3, "missing"}).ToString(),
            "line 4, column 3: searcher.metric: missing");
  EXPECT_EQ((ConfigError{"", 0, 0, "too big"}).ToString(), "too big");
}

// Warm starts (Determined's searcher.source_trial_id /
// source_checkpoint_uuid).
constexpr char kWarmSearcher[] =
    "  name: single\n  metric: validation_loss\n"
    "  max_length: {batches: 10}\n";

TEST(ConfigWarmStartTest, NoneByDefault) {
  ExperimentConfig cfg = ParseOk(kMinimal);
  EXPECT_EQ(cfg.searcher.source_trial_id, 0);
  EXPECT_EQ(cfg.searcher.source_checkpoint_uuid, "");
}

TEST(ConfigWarmStartTest, SourceTrialIdAndUuidAreRead) {
  ExperimentConfig by_trial = ParseOk(
      WithSearcher(absl::StrCat(kWarmSearcher, "  source_trial_id: 7\n")));
  EXPECT_EQ(by_trial.searcher.source_trial_id, 7);
  EXPECT_THAT(by_trial.warnings, IsEmpty());
  ExperimentConfig by_uuid = ParseOk(WithSearcher(absl::StrCat(
      kWarmSearcher,
      "  source_checkpoint_uuid: 1b4e28ba-2fa1-41d2-883f-0016d3cca427\n")));
  EXPECT_EQ(by_uuid.searcher.source_checkpoint_uuid,
            "1b4e28ba-2fa1-41d2-883f-0016d3cca427");
  EXPECT_EQ(by_uuid.searcher.source_trial_id, 0);
  // Null (as Determined's defaults write them): no warm start.
  ExperimentConfig nulls = ParseOk(WithSearcher(absl::StrCat(
      kWarmSearcher,
      "  source_trial_id: null\n  source_checkpoint_uuid: null\n")));
  EXPECT_EQ(nulls.searcher.source_trial_id, 0);
  EXPECT_EQ(nulls.searcher.source_checkpoint_uuid, "");
}

TEST(ConfigWarmStartTest, AnySearcherMayWarmStart) {
  ExperimentConfig cfg = ParseOk(R"(searcher:
  name: adaptive_asha
  metric: validation_loss
  max_trials: 4
  max_length: {batches: 100}
  source_trial_id: 3
hyperparameters:
  learning_rate: {type: double, minval: 0.001, maxval: 0.1}
)");
  EXPECT_EQ(cfg.searcher.source_trial_id, 3);
}

TEST(ConfigWarmStartTest, BothGivenSourceTrialIdWinsWithAWarning) {
  ExperimentConfig cfg = ParseOk(WithSearcher(absl::StrCat(
      kWarmSearcher, "  source_trial_id: 2\n  source_checkpoint_uuid: abc\n")));
  EXPECT_EQ(cfg.searcher.source_trial_id, 2);
  EXPECT_EQ(cfg.searcher.source_checkpoint_uuid, "");
  ASSERT_THAT(cfg.warnings, SizeIs(1));
  EXPECT_EQ(cfg.warnings[0].path, "searcher.source_checkpoint_uuid");
  EXPECT_EQ(cfg.warnings[0].line, 6);
  EXPECT_THAT(cfg.warnings[0].message, HasSubstr("source_trial_id"));
}

TEST(ConfigWarmStartTest, BadValuesNameTheField) {
  ExpectOneError(
      WithSearcher(absl::StrCat(kWarmSearcher, "  source_trial_id: 0\n")),
      "searcher.source_trial_id", 5, 20, "0");
  ExpectOneError(
      WithSearcher(absl::StrCat(kWarmSearcher, "  source_trial_id: -4\n")),
      "searcher.source_trial_id", 5, 20, "-4");
  ExpectOneError(
      WithSearcher(absl::StrCat(kWarmSearcher, "  source_trial_id: two\n")),
      "searcher.source_trial_id", 5, 20, "two");
  ExpectOneError(WithSearcher(absl::StrCat(kWarmSearcher,
                                           "  source_checkpoint_uuid: \"\"\n")),
                 "searcher.source_checkpoint_uuid", 5, 27,
                 "expected a checkpoint's uuid");
  ExpectOneError(WithSearcher(absl::StrCat(
                     kWarmSearcher, "  source_checkpoint_uuid: ../etc\n")),
                 "searcher.source_checkpoint_uuid", 5, 27, "found '../etc'");
  ExpectOneError(WithSearcher(absl::StrCat(kWarmSearcher,
                                           "  source_checkpoint_uuid: [a]\n")),
                 "searcher.source_checkpoint_uuid", 5, 27, "");
}

}  // namespace
}  // namespace det
