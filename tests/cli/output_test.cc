#include "cli/output.h"

#include <sstream>

#include "cli/follow.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace det::cli {
namespace {

TEST(OutputTest, MessageToJsonUsesProtoNamesAndPrintsDefaults) {
  v1::Experiment e;
  e.set_id(3);
  e.set_best_trial_id(7);
  (*e.mutable_best_validation_metrics())["validation_accuracy"] = 0.5;
  auto json = MessageToJson(e);
  ASSERT_TRUE(json.ok());
  EXPECT_THAT(*json, ::testing::HasSubstr("\"best_trial_id\":\"7\""));
  EXPECT_THAT(*json,
              ::testing::HasSubstr(
                  "\"best_validation_metrics\":{\"validation_accuracy\":0.5}"));
  EXPECT_THAT(*json, ::testing::HasSubstr("\"trials_errored\":0"));
  EXPECT_THAT(*json, ::testing::HasSubstr("\"state\":\"STATE_UNSPECIFIED\""));
}

TEST(OutputTest, MessageToJsonSortsMapKeys) {
  v1::Trial t;
  auto& metrics = *t.mutable_best_validation_metrics();
  for (const char* name : {"zeta", "alpha", "mu", "beta", "omega", "kappa"}) {
    metrics[name] = 1;
  }
  auto& hp = *t.mutable_hparams()->mutable_fields();
  hp["b"].set_number_value(2);
  hp["a"].set_string_value("x");
  auto json = MessageToJson(t);
  ASSERT_TRUE(json.ok());
  EXPECT_THAT(*json, ::testing::HasSubstr("\"hparams\":{\"a\":\"x\",\"b\":2}"));
  EXPECT_THAT(*json, ::testing::HasSubstr(
                         "\"best_validation_metrics\":{\"alpha\":1,\"beta\":1,"
                         "\"kappa\":1,\"mu\":1,\"omega\":1,\"zeta\":1}"));
}

TEST(OutputTest, AddJsonMember) {
  EXPECT_EQ(*AddJsonMember("{}", "a", "1"), "{\"a\":1}");
  EXPECT_EQ(*AddJsonMember(" { } ", "a", "[]"), "{ \"a\":[]}");
  EXPECT_EQ(*AddJsonMember("{\"x\":true}", "tr\"ials", "[1,2]"),
            "{\"x\":true,\"tr\\\"ials\":[1,2]}");
  EXPECT_FALSE(AddJsonMember("[1]", "a", "1").ok());
  EXPECT_FALSE(AddJsonMember("", "a", "1").ok());
}

TEST(OutputTest, JsonQuoteEscapes) {
  EXPECT_EQ(JsonQuote("a\"b\\c\nd\x01"), "\"a\\\"b\\\\c\\nd\\u0001\"");
}

TEST(OutputTest, IndentJsonKeepsOrderAndStrings) {
  EXPECT_EQ(IndentJson("{\"b\":1,\"a\":[1,{}],\"s\":\"x,{y}:\\\"z\",\"e\":[]}"),
            "{\n"
            "  \"b\": 1,\n"
            "  \"a\": [\n"
            "    1,\n"
            "    {}\n"
            "  ],\n"
            "  \"s\": \"x,{y}:\\\"z\",\n"
            "  \"e\": []\n"
            "}");
  EXPECT_EQ(IndentJson("{}"), "{}");
}

TEST(OutputTest, StateNames) {
  EXPECT_EQ(StateName(v1::STATE_COMPLETED), "COMPLETED");
  EXPECT_EQ(StateName(v1::STATE_STOPPING_CANCELED), "STOPPING_CANCELED");
  EXPECT_TRUE(IsTerminal(v1::STATE_ERROR));
  EXPECT_TRUE(IsTerminal(v1::STATE_CANCELED));
  EXPECT_FALSE(IsTerminal(v1::STATE_STOPPING_COMPLETED));
  EXPECT_FALSE(IsTerminal(v1::STATE_PAUSED));
}

TEST(OutputTest, NumbersTimesAndDurations) {
  EXPECT_EQ(FormatMetric(0.7123), "0.7123");
  EXPECT_EQ(FormatMetric(1.0 / 3), "0.333333");
  EXPECT_EQ(FormatPercent(0.45), "45.0%");
  EXPECT_EQ(FormatTime(0), "-");
  EXPECT_EQ(FormatDuration(0, 0), "-");
  const int64_t start = 1'700'000'000'000'000;
  EXPECT_EQ(FormatDuration(start, start + 12'000'000), "12s");
  EXPECT_EQ(FormatDuration(start, start + 185'000'000), "3m05s");
  EXPECT_EQ(FormatDuration(start, start + 3'720'000'000), "1h02m");
  EXPECT_EQ(FormatDuration(start, start + 97'200'000'000), "1d03h");
}

TEST(OutputTest, HParamsAreFlattenedAndSorted) {
  google::protobuf::Struct hp;
  auto& f = *hp.mutable_fields();
  f["learning_rate"].set_number_value(0.01);
  f["global_batch_size"].set_number_value(64);
  f["optimizer"].set_string_value("adam");
  f["batch_norm"].set_bool_value(true);
  auto& model = *f["model"].mutable_struct_value()->mutable_fields();
  model["layers"].set_number_value(2);
  EXPECT_EQ(FormatHParams(hp),
            "batch_norm=true global_batch_size=64 learning_rate=0.01 "
            "model.layers=2 optimizer=adam");
}

TEST(OutputTest, BestMetricCellAndPrintMetrics) {
  v1::Experiment e;
  e.set_metric("validation_accuracy");
  EXPECT_EQ(BestMetricCell(e), "-");
  (*e.mutable_best_validation_metrics())["validation_accuracy"] = 0.71;
  (*e.mutable_best_validation_metrics())["validation_loss"] = 0.9;
  EXPECT_EQ(BestMetricCell(e), "0.71");
  std::ostringstream out;
  PrintMetrics(out, e.best_validation_metrics(), 2);
  EXPECT_EQ(out.str(),
            "  validation_accuracy  0.71\n"
            "  validation_loss      0.9\n");
}

TEST(FollowTest, ProgressLine) {
  v1::Experiment e;
  e.set_id(3);
  e.set_state(v1::STATE_ACTIVE);
  e.set_progress(0.25);
  e.set_trials_queued(1);
  e.set_trials_running(2);
  e.set_trials_completed(5);
  e.set_metric("validation_error");
  EXPECT_EQ(ProgressLine(e),
            "Experiment 3 ACTIVE  25.0%  trials: 1 queued, 2 running, 5 "
            "completed, 0 errored");
  (*e.mutable_best_validation_metrics())["validation_error"] = 0.3;
  EXPECT_THAT(ProgressLine(e),
              ::testing::EndsWith("  best validation_error 0.3"));
}

TEST(FollowTest, TerminalPrinterBlanksTheRestOfALongerLine) {
  std::ostringstream out;
  ProgressPrinter printer(out, /*terminal=*/true);
  v1::Experiment e;
  e.set_id(3);
  e.set_state(v1::STATE_ACTIVE);
  e.set_trials_running(10);
  e.set_trials_completed(100);
  printer.Update(e);
  const std::string first = out.str();
  e.set_trials_running(1);
  e.set_trials_completed(1);
  printer.Update(e);
  printer.Finish();
  const std::string second = out.str().substr(first.size());
  // The second line is 3 characters shorter: 3 blanks cover the rest.
  EXPECT_EQ(second, "\r" + ProgressLine(e) + "   \n");
}

}  // namespace
}  // namespace det::cli
