// The search replay (bench/search/replay_sim.h): table parsing and the
// virtual-time accounting of trials on slots.
#include "bench/search/replay_sim.h"

#include <sstream>
#include <string>

#include "common/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace det::bench {
namespace {

using ::testing::HasSubstr;

// Two configurations (x = 1, 2), validated at 8 and 16 batches: 3 s and 5 s
// from process start, each validation 0.5 s.
constexpr char kTable[] =
    "config,x,batches,accuracy,loss,wall_s,val_s,train_s\n"
    "0,1,8,0.10,2,3.0,0.5,1\n"
    "0,1,16,0.20,2,5.0,0.5,2\n"
    "1,2,8,0.30,2,3.0,0.5,1\n"
    "1,2,16,0.40,2,5.0,0.5,2\n";

Table MustParse(const std::string& csv) {
  std::istringstream in(csv);
  absl::StatusOr<Table> t = ParseTable(in, "t.csv");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *t : Table{};
}

ExperimentConfig MustConfig(const std::string& searcher,
                            const std::string& extra = "") {
  absl::StatusOr<ExperimentConfig> c = ParseExperimentConfig(
      "name: t\n"
      "hyperparameters:\n"
      "  x: {type: categorical, vals: [1, 2]}\n"
      "searcher:\n"
      "  metric: validation_accuracy\n"
      "  smaller_is_better: false\n"
      "  max_length: {batches: 16}\n" +
      searcher + extra + "reproducibility: {experiment_seed: 3}\n");
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : ExperimentConfig{};
}

TEST(ReplayTable, ParsesHyperparameterColumnsAndKeys) {
  Table t = MustParse(kTable);
  EXPECT_EQ(t.names, std::vector<std::string>{"x"});
  ASSERT_EQ(t.runs.size(), 2u);
  const RecordedRun& r = t.runs.at(Canon(Value(int64_t{2})));
  EXPECT_DOUBLE_EQ(r.accuracy.at(16), 0.40);
  EXPECT_DOUBLE_EQ(r.wall_s.at(8), 3.0);
  EXPECT_EQ(Canon(std::string("16")), Canon(Value(16.0)));
}

TEST(ReplayTable, NamesAMissingColumn) {
  std::istringstream in("config,x,batches,accuracy,loss,val_s\n");
  absl::StatusOr<Table> t = ParseTable(in, "t.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("'wall_s'"));
}

TEST(ReplayTable, NamesTheLineOfABadNumber) {
  std::istringstream in(
      "config,x,batches,accuracy,loss,wall_s,val_s\n0,1,8,zero,2,3,0.5\n");
  absl::StatusOr<Table> t = ParseTable(in, "t.csv");
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(t.status().message(), HasSubstr("t.csv:2"));
}

const std::string kRandomTwo =
    "  name: random\n  max_trials: 2\n  max_concurrent_trials: 2\n";

TEST(Replay, OneSlotRunsTrialsOneAfterTheOther) {
  Table t = MustParse(kTable);
  // Only the final validation: 5 s less the 0.5 s one at 8 not made.
  absl::StatusOr<SeedResult> r =
      ReplaySearch(t, MustConfig(kRandomTwo), /*workers=*/1, 100);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->trials, 2);
  EXPECT_EQ(r->validations, 2);
  EXPECT_DOUBLE_EQ(r->end_s, 9.0);
  ASSERT_FALSE(r->curve.empty());
  EXPECT_DOUBLE_EQ(r->curve.front().first, 4.5);
}

TEST(Replay, TwoSlotsRunThemTogether) {
  Table t = MustParse(kTable);
  absl::StatusOr<SeedResult> r =
      ReplaySearch(t, MustConfig(kRandomTwo), /*workers=*/2, 100);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_DOUBLE_EQ(r->end_s, 4.5);
}

TEST(Replay, MinValidationPeriodAddsValidationsAndTheirTime) {
  Table t = MustParse(kTable);
  absl::StatusOr<SeedResult> r = ReplaySearch(
      t, MustConfig(kRandomTwo, "min_validation_period: {batches: 8}\n"),
      /*workers=*/1, 100);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->validations, 4);
  EXPECT_DOUBLE_EQ(r->end_s, 10.0);
  EXPECT_DOUBLE_EQ(r->curve.front().first, 3.0);
}

TEST(Replay, TheBudgetCutsTheSearch) {
  Table t = MustParse(kTable);
  absl::StatusOr<SeedResult> r =
      ReplaySearch(t, MustConfig(kRandomTwo), /*workers=*/1, 6.0);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->validations, 1);
  EXPECT_LT(r->end_s, 0);  // ran to the budget
}

TEST(Replay, AshaStopsTrialsAndFreesTheirSlots) {
  Table t = MustParse(kTable);
  // One bracket, rungs 8 and 16 (divisor 2), one slot.
  absl::StatusOr<SeedResult> r = ReplaySearch(
      t,
      MustConfig("  name: adaptive_asha\n  max_trials: 2\n"
                 "  max_concurrent_trials: 1\n  divisor: 2\n  max_rungs: 2\n"
                 "  mode: aggressive\n"),
      /*workers=*/1, 100);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->trials, 2);
  // Trial 1 reaches both rungs (5 s); trial 2 (seed 3 draws the worse x)
  // is stopped at its first (3 s, its validation at 8 counted) and its slot
  // is free at once: the search ends at 8 s with 3 validations.
  EXPECT_EQ(r->validations, 3);
  EXPECT_DOUBLE_EQ(r->end_s, 8.0);
}

TEST(Replay, RefusesAPointTheTableLacks) {
  Table t = MustParse(
      "config,x,batches,accuracy,loss,wall_s,val_s\n0,1,16,0.2,2,5,0.5\n");
  absl::StatusOr<SeedResult> r =
      ReplaySearch(t, MustConfig(kRandomTwo), /*workers=*/1, 100);
  // The table has only x = 1; some seed's two trials sample x = 2, which
  // must be refused by name, not replayed.
  bool refused = !r.ok();
  for (int seed = 1; seed < 20 && !refused; ++seed) {
    ExperimentConfig c = MustConfig(kRandomTwo);
    c.experiment_seed = seed;
    r = ReplaySearch(t, c, 1, 100);
    refused = !r.ok();
  }
  ASSERT_TRUE(refused);
  EXPECT_THAT(r.status().message(), HasSubstr("not in the table"));
}

}  // namespace
}  // namespace det::bench
