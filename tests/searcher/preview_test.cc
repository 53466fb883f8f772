// PlanSearch and FormatPlan: what `det preview-search` shows.
#include "master/searcher/preview.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/searcher/search_driver.h"

namespace det::searcher {
namespace {

using ::testing::HasSubstr;
using testing::MustParse;

TEST(PreviewTest, WorkedAshaExample) {
  auto plan = PlanSearch(MustParse(R"(searcher:
  name: adaptive_asha
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 937}
  max_trials: 16
)"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->searcher, "adaptive_asha");
  EXPECT_EQ(plan->unit, Unit::kBatches);
  EXPECT_EQ(plan->max_length, 937);
  EXPECT_EQ(plan->num_trials, 16);
  EXPECT_EQ(plan->max_concurrent_trials, 8 + 4);
  ASSERT_EQ(plan->brackets.size(), 2u);
  const PlanBracket& b0 = plan->brackets[0];
  EXPECT_EQ(b0.num_rungs, 3);
  EXPECT_EQ(b0.trials, 12);
  EXPECT_EQ(b0.max_concurrent_trials, 8);
  ASSERT_EQ(b0.rungs.size(), 3u);
  EXPECT_EQ(b0.rungs[0].length, 58);
  EXPECT_EQ(b0.rungs[0].trials, 12);
  EXPECT_EQ(b0.rungs[1].length, 234);
  EXPECT_EQ(b0.rungs[1].trials, 3);
  EXPECT_EQ(b0.rungs[2].length, 937);
  EXPECT_EQ(b0.rungs[2].trials, 1);
  const PlanBracket& b1 = plan->brackets[1];
  EXPECT_EQ(b1.trials, 4);
  EXPECT_EQ(b1.max_concurrent_trials, 4) << "at most its trials";
  ASSERT_EQ(b1.rungs.size(), 2u);
  EXPECT_EQ(b1.rungs[0].length, 234);
  EXPECT_EQ(b1.rungs[0].trials, 4);
  EXPECT_EQ(b1.rungs[1].trials, 1);
  EXPECT_EQ(plan->total_length, 16 * 937);
  // 12*58 + 3*(234-58) + 1*(937-234) + 4*234 + 1*(937-234)
  EXPECT_EQ(plan->expected_length, 696 + 528 + 703 + 936 + 703);

  std::string text = FormatPlan(*plan);
  EXPECT_THAT(text, HasSubstr("Trials: 16"));
  EXPECT_THAT(text, HasSubstr("58 (12), 234 (3), 937 (1)"));
  EXPECT_THAT(text, HasSubstr("234 (4), 937 (1)"));
  EXPECT_THAT(text, HasSubstr("about 3566 batches"));
}

TEST(PreviewTest, GridRandomSingle) {
  auto grid = PlanSearch(MustParse(R"(searcher:
  name: grid
  metric: validation_loss
  max_length: {epochs: 3}
  max_concurrent_trials: 4
hyperparameters:
  lr: {type: log, minval: -4, maxval: -2, count: 3}
  layers: {type: int, minval: 1, maxval: 2, count: 5}
  opt: {optimizer: {type: categorical, vals: [a, b]}}
  fixed: 1
)"));
  ASSERT_TRUE(grid.ok()) << grid.status();
  EXPECT_EQ(grid->num_trials, 3 * 2 * 2);
  EXPECT_EQ(grid->total_length, 12 * 3);
  EXPECT_EQ(grid->unit, Unit::kEpochs);
  EXPECT_EQ(grid->max_concurrent_trials, 4);
  EXPECT_EQ(grid->grid_axes,
            (std::map<std::string, int64_t>{
                {"fixed", 1}, {"layers", 2}, {"lr", 3}, {"opt.optimizer", 2}}));
  std::string text = FormatPlan(*grid);
  EXPECT_THAT(text, HasSubstr("opt.optimizer"));
  EXPECT_THAT(text, HasSubstr("36 epochs in total"));

  auto random = PlanSearch(MustParse(R"(searcher:
  name: random
  metric: validation_loss
  max_length: {records: 1000}
  max_trials: 9
  max_concurrent_trials: 0
)"));
  ASSERT_TRUE(random.ok());
  EXPECT_EQ(random->num_trials, 9);
  EXPECT_EQ(random->max_concurrent_trials, 9);
  EXPECT_EQ(random->total_length, 9000);
  EXPECT_TRUE(random->brackets.empty());

  auto single = PlanSearch(MustParse(R"(searcher:
  name: single
  metric: validation_loss
  max_length: {batches: 5}
)"));
  ASSERT_TRUE(single.ok());
  EXPECT_EQ(single->num_trials, 1);
  EXPECT_EQ(single->total_length, 5);
  EXPECT_THAT(FormatPlan(*single), HasSubstr("Searcher: single"));
}

TEST(PreviewTest, NotesAdjustments) {
  auto plan = PlanSearch(MustParse(R"(searcher:
  name: adaptive_asha
  metric: validation_loss
  max_length: {batches: 10000}
  max_trials: 1000
  max_concurrent_trials: 2
)"));
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->brackets.size(), 3u);
  EXPECT_EQ(plan->max_concurrent_trials, 3);
  ASSERT_EQ(plan->notes.size(), 1u);
  EXPECT_THAT(FormatPlan(*plan), HasSubstr("Note: max_concurrent_trials (2)"));
}

TEST(PreviewTest, RejectsConfigsThatCannotSearch) {
  ExperimentConfig cfg;  // not from the parser: max_length 0
  EXPECT_EQ(PlanSearch(cfg).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(NewSearchMethod(cfg).ok());
}

TEST(PreviewTest, TpeShowsWhenTheEstimatorTakesOver) {
  auto plan = PlanSearch(MustParse(R"(searcher:
  name: adaptive_asha
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 937}
  max_trials: 16
  max_concurrent_trials: 4
  sampler: tpe
  tpe: {n_startup_trials: 6}
)"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->sampler, "tpe");
  EXPECT_EQ(plan->num_trials, 16);
  EXPECT_EQ(plan->max_concurrent_trials, 4);
  EXPECT_EQ(plan->tpe_random_trials, 6 - 1 + 4);
  EXPECT_EQ(plan->tpe_first_rung, 58);
  std::string text = FormatPlan(*plan);
  EXPECT_THAT(text, HasSubstr("Sampler: tpe (univariate; n_startup_trials 6, "
                              "n_ei_candidates 24, gamma 0.1 up to 25)"));
  EXPECT_THAT(text, HasSubstr("random draws until 6 trials have a result (the "
                              "first at 58 batches): up to 9 of the 16 "
                              "trials;\n  the others (at least 7)"));
  // The same search with the random sampler says nothing of it.
  auto random = PlanSearch(MustParse(R"(searcher:
  name: random
  metric: loss
  max_length: {batches: 10}
  max_trials: 8
  sampler: random
)"));
  ASSERT_TRUE(random.ok());
  EXPECT_EQ(random->sampler, "random");
  EXPECT_THAT(FormatPlan(*random), ::testing::Not(HasSubstr("Sampler")));
  // Too few trials for the estimator: a note says so.
  auto few = PlanSearch(MustParse(R"(searcher:
  name: random
  metric: loss
  max_length: {batches: 10}
  max_trials: 8
  sampler: tpe
)"));
  ASSERT_TRUE(few.ok());
  EXPECT_EQ(few->tpe_random_trials, 8);
  EXPECT_THAT(FormatPlan(*few),
              HasSubstr("Note: searcher.tpe.n_startup_trials (10) is not "
                        "below the number of trials (8): every trial is a "
                        "random draw"));
}

}  // namespace
}  // namespace det::searcher
