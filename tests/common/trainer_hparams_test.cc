#include "common/trainer_hparams.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace det::trainer {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

absl::Status Parse(const ValueMap& m) { return ParseHParams(m).status(); }

TEST(ParseHParams, DefaultsAndAllNames) {
  absl::StatusOr<HParams> hp = ParseHParams({});
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->conv_layers, 2);
  EXPECT_EQ(hp->global_batch_size, 64);

  hp = ParseHParams({{"learning_rate", 0.1},
                     {"global_batch_size", 128},
                     {"n_filters1", 16},
                     {"n_filters2", 48.0},
                     {"kernel_size", 5},
                     {"hidden_units", 256},
                     {"dropout", 0.25},
                     {"conv_layers", 3},
                     {"batch_norm", true},
                     {"optimizer", "sgd"},
                     {"momentum", 0.8},
                     {"nesterov", true},
                     {"weight_decay", 5e-4},
                     {"lr_schedule", "step"},
                     {"lr_step_size", 100},
                     {"lr_gamma", 0.5},
                     {"_note", "ignored"}});
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_DOUBLE_EQ(hp->learning_rate, 0.1);
  EXPECT_EQ(hp->n_filters2, 48);  // integral double accepted
  EXPECT_EQ(hp->kernel_size, 5);
  EXPECT_TRUE(hp->batch_norm);
  EXPECT_TRUE(hp->nesterov);
  EXPECT_EQ(hp->lr_schedule, LrSchedule::kStep);
  EXPECT_EQ(hp->lr_step_size, 100);

  hp = ParseHParams({{"optimizer", "adam"}, {"lr_schedule", "cosine"}});
  ASSERT_TRUE(hp.ok());
  EXPECT_EQ(hp->optimizer, OptimizerKind::kAdam);
  EXPECT_EQ(hp->lr_schedule, LrSchedule::kCosine);
}

TEST(ParseHParams, UnknownNameIsRejectedWithTheKnownOnes) {
  absl::Status s = Parse({{"learning_rat", 0.1}});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), AllOf(HasSubstr("'learning_rat'"),
                                 HasSubstr("did you mean 'learning_rate'?"),
                                 HasSubstr("knows batch_norm, conv_layers")));
  // Nothing close: no guess, still the list.
  EXPECT_THAT(
      Parse({{"group", ValueMap{{"x", 1}}}}).message(),
      AllOf(HasSubstr("'group'. The built-in"), Not(HasSubstr("did you mean")),
            HasSubstr("knows batch_norm")));
}

TEST(ParseHParams, OutOfRangeAndWrongTypesNameTheHyperparameter) {
  struct Case {
    ValueMap m;
    const char* name;
  } cases[] = {
      {{{"learning_rate", 0}}, "'learning_rate'"},
      {{{"learning_rate", -0.1}}, "'learning_rate'"},
      {{{"learning_rate", "fast"}}, "'learning_rate'"},
      {{{"global_batch_size", 0}}, "'global_batch_size'"},
      {{{"global_batch_size", 32.5}}, "'global_batch_size'"},
      {{{"n_filters1", 0}}, "'n_filters1'"},
      {{{"kernel_size", 4}}, "odd"},
      {{{"kernel_size", 11}}, "'kernel_size'"},
      {{{"hidden_units", -3}}, "'hidden_units'"},
      {{{"dropout", 1.0}}, "'dropout'"},
      {{{"conv_layers", 6}}, "'conv_layers'"},
      {{{"conv_layers", 0}}, "'conv_layers'"},
      {{{"batch_norm", 1}}, "'batch_norm'"},
      {{{"optimizer", "rmsprop"}}, "'adam'"},
      {{{"momentum", 1.0}}, "'momentum'"},
      {{{"weight_decay", -1e-4}}, "'weight_decay'"},
      {{{"lr_schedule", "linear"}}, "'cosine'"},
      {{{"lr_gamma", 0}}, "'lr_gamma'"},
      {{{"nesterov", true}, {"momentum", 0}}, "'nesterov'"},
      {{{"nesterov", true}, {"optimizer", "adam"}}, "'nesterov'"},
  };
  for (const Case& c : cases) {
    absl::Status s = Parse(c.m);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument)
        << Value(c.m).ToJson();
    EXPECT_THAT(s.message(), HasSubstr(c.name)) << Value(c.m).ToJson();
  }
}

TEST(CheckBatchSplit, TheGlobalBatchDividesOverTheSlots) {
  EXPECT_TRUE(CheckBatchSplit(64, 1).ok());
  EXPECT_TRUE(CheckBatchSplit(64, 2).ok());
  absl::Status s = CheckBatchSplit(64, 3);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("'global_batch_size': 64 does not split "
                                     "evenly over 3 slots"));
  EXPECT_FALSE(CheckBatchSplit(64, 0).ok());
}

TEST(ParseHParams, RecordsTaskHasTheMlpNames) {
  absl::StatusOr<HParams> hp = ParseHParams({{"hidden_layers", 0},
                                             {"activation", "gelu"},
                                             {"hidden_units", 32},
                                             {"optimizer", "adam"}},
                                            Task::kRecords);
  ASSERT_TRUE(hp.ok()) << hp.status();
  EXPECT_EQ(hp->hidden_layers, 0);
  EXPECT_EQ(hp->activation, Activation::kGelu);
  EXPECT_THAT(
      ParseHParams({{"hidden_layers", 17}}, Task::kRecords).status().message(),
      HasSubstr("expected an integer in [0, 16], found 17"));
  EXPECT_THAT(ParseHParams({{"activation", "swish"}}, Task::kRecords)
                  .status()
                  .message(),
              HasSubstr("one of 'gelu', 'relu', 'tanh'"));
  // Each task's own names are unknown to the other.
  EXPECT_THAT(
      ParseHParams({{"kernel_size", 3}}, Task::kRecords).status().message(),
      HasSubstr("unknown hyperparameter 'kernel_size' for JSON records"));
  EXPECT_THAT(ParseHParams({{"hidden_layers", 1}}).status().message(),
              HasSubstr("unknown hyperparameter 'hidden_layers' for CIFAR-10"));
  EXPECT_THAT(KnownHParamNames(Task::kRecords),
              ::testing::Not(::testing::Contains("conv_layers")));
  EXPECT_THAT(KnownHParamNames(),
              ::testing::Not(::testing::Contains("activation")));
}

TEST(TaskForData, FormatJsonlSelectsRecordsAndItsMetrics) {
  EXPECT_EQ(TaskForData({}), Task::kCifar10);
  EXPECT_EQ(TaskForData({{"format", "jsonl"}}), Task::kRecords);
  EXPECT_THAT(BuiltinValidationMetrics({}),
              ::testing::Contains("validation_accuracy"));
  EXPECT_THAT(
      BuiltinValidationMetrics({{"format", "jsonl"}, {"task", "regression"}}),
      ::testing::ElementsAre("validation_loss", "validation_mae",
                             "validation_rmse"));
  EXPECT_THAT(BuiltinValidationMetrics(
                  {{"format", "jsonl"}, {"task", "classification"}}),
              ::testing::Contains("validation_accuracy"));
}

}  // namespace
}  // namespace det::trainer
