// The checkpoint retention rule (master/checkpoints/retention.h):
// Determined's save_trial_latest / save_trial_best / save_experiment_best,
// plus the restore candidates of live trials, ties and unvalidated trials.
#include "master/checkpoints/retention.h"

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace det::master::checkpoints {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

CheckpointInfo Ckpt(int64_t trial, int64_t steps, std::optional<double> m) {
  CheckpointInfo c;
  c.uuid = absl::StrCat("t", trial, "s", steps);
  c.trial_id = trial;
  c.steps_completed = steps;
  c.metric = m;
  return c;
}

TEST(Retention, DefaultsKeepLatestAndBestOfEachTrial) {
  RetentionPolicy p;  // 1, 1, 0, smaller is better
  std::vector<CheckpointInfo> cs = {Ckpt(1, 100, 0.5), Ckpt(1, 200, 0.2),
                                    Ckpt(1, 300, 0.4), Ckpt(1, 400, 0.3)};
  EXPECT_THAT(CheckpointsToDelete(p, cs, {}), ElementsAre("t1s100", "t1s300"));
}

TEST(Retention, BestThatIsAlsoLatestKeepsOne) {
  RetentionPolicy p;
  std::vector<CheckpointInfo> cs = {Ckpt(1, 100, 0.5), Ckpt(1, 200, 0.4),
                                    Ckpt(1, 300, 0.1)};
  EXPECT_THAT(CheckpointsToDelete(p, cs, {}), ElementsAre("t1s100", "t1s200"));
}

TEST(Retention, LargerIsBetterFlipsTheBest) {
  RetentionPolicy p;
  p.smaller_is_better = false;
  std::vector<CheckpointInfo> cs = {Ckpt(1, 100, 0.9), Ckpt(1, 200, 0.2),
                                    Ckpt(1, 300, 0.4)};
  EXPECT_THAT(CheckpointsToDelete(p, cs, {}), ElementsAre("t1s200"));
}

TEST(Retention, EachTrialIsRankedOnItsOwn) {
  RetentionPolicy p;
  std::vector<CheckpointInfo> cs = {Ckpt(1, 100, 0.1), Ckpt(1, 200, 0.3),
                                    Ckpt(1, 300, 0.2), Ckpt(2, 100, 0.9),
                                    Ckpt(2, 200, 0.8)};
  // Trial 2's best (0.8) is worse than all of trial 1's: still kept.
  EXPECT_THAT(CheckpointsToDelete(p, cs, {}),
              UnorderedElementsAre("t1s200", "t2s100"));
}

TEST(Retention, ExperimentBestKeepsTheBestOverAllTrials) {
  RetentionPolicy p;
  p.save_trial_latest = 0;
  p.save_trial_best = 0;
  p.save_experiment_best = 2;
  std::vector<CheckpointInfo> cs = {Ckpt(1, 100, 0.5), Ckpt(1, 200, 0.1),
                                    Ckpt(2, 100, 0.3), Ckpt(2, 200, 0.2),
                                    Ckpt(3, 100, std::nullopt)};
  EXPECT_THAT(CheckpointsToDelete(p, cs, {}),
              UnorderedElementsAre("t1s100", "t2s100", "t3s100"));
}

TEST(Retention, AllZeroDeletesEverythingOfFinishedTrials) {
  RetentionPolicy p;
  p.save_trial_latest = 0;
  p.save_trial_best = 0;
  p.save_experiment_best = 0;
  std::vector<CheckpointInfo> cs = {Ckpt(1, 100, 0.5), Ckpt(2, 100, 0.1)};
  EXPECT_THAT(CheckpointsToDelete(p, cs, {}), ElementsAre("t1s100", "t2s100"));
}

TEST(Retention, NegativeCountsActAsZero) {
  RetentionPolicy p;
  p.save_trial_latest = -1;
  p.save_trial_best = -3;
  std::vector<CheckpointInfo> cs = {Ckpt(1, 100, 0.5)};
  EXPECT_THAT(CheckpointsToDelete(p, cs, {}), ElementsAre("t1s100"));
}

TEST(Retention, TiesKeepExactlyNAndPreferTheLaterCheckpoint) {
  RetentionPolicy p;
  p.save_trial_latest = 0;
  p.save_trial_best = 1;
  std::vector<CheckpointInfo> cs = {Ckpt(1, 100, 0.2), Ckpt(1, 300, 0.2),
                                    Ckpt(1, 200, 0.2)};
  EXPECT_THAT(CheckpointsToDelete(p, cs, {}), ElementsAre("t1s100", "t1s200"));
  // The same answer whatever the input order.
  std::vector<CheckpointInfo> reversed(cs.rbegin(), cs.rend());
  EXPECT_THAT(CheckpointsToDelete(p, reversed, {}),
              ElementsAre("t1s200", "t1s100"));
}

// A restarted run that redoes steps writes a second checkpoint at the same
// steps; the later report is the trial's latest (the one it names and
// restores from), so it is the one kept, whatever the uuids.
TEST(Retention, SameStepsTheLaterReportIsTheLatest) {
  RetentionPolicy p;
  CheckpointInfo first = Ckpt(1, 600, 0.3);
  first.uuid = "b-first";
  first.time_us = 1000;
  CheckpointInfo redo = Ckpt(1, 600, 0.3);
  redo.uuid = "z-redo";  // sorts after "b-first"
  redo.time_us = 2000;
  EXPECT_TRUE(Newer(redo, first));
  EXPECT_FALSE(Newer(first, redo));
  EXPECT_THAT(CheckpointsToDelete(p, {first, redo}, {}),
              ElementsAre("b-first"));
  EXPECT_THAT(RankedByMetric({first, redo}, true),
              ElementsAre("z-redo", "b-first"));
}

TEST(Retention, TiesAcrossTrialsForExperimentBest) {
  RetentionPolicy p;
  p.save_trial_latest = 0;
  p.save_trial_best = 0;
  p.save_experiment_best = 1;
  std::vector<CheckpointInfo> cs = {Ckpt(1, 100, 0.2), Ckpt(2, 100, 0.2)};
  // Same metric, same steps: the uuid decides, t1s100 < t2s100.
  EXPECT_THAT(CheckpointsToDelete(p, cs, {}), ElementsAre("t2s100"));
}

TEST(Retention, TrialThatNeverValidatedKeepsOnlyItsLatest) {
  RetentionPolicy p;
  p.save_trial_best = 3;
  p.save_experiment_best = 3;
  std::vector<CheckpointInfo> cs = {Ckpt(1, 100, std::nullopt),
                                    Ckpt(1, 200, std::nullopt),
                                    Ckpt(1, 300, std::nullopt)};
  EXPECT_THAT(CheckpointsToDelete(p, cs, {}), ElementsAre("t1s100", "t1s200"));
}

TEST(Retention, NanMetricNeverCountsAsBest) {
  RetentionPolicy p;
  p.save_trial_latest = 0;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<CheckpointInfo> cs = {Ckpt(1, 100, 0.9), Ckpt(1, 200, nan)};
  EXPECT_THAT(CheckpointsToDelete(p, cs, {}), ElementsAre("t1s200"));
}

TEST(Retention, LiveTrialKeepsItsRestoreCandidates) {
  RetentionPolicy p;  // restore_candidates = 5
  std::vector<CheckpointInfo> cs;
  for (int64_t s = 1; s <= 8; ++s) cs.push_back(Ckpt(1, s * 100, 1.0 / s));
  // Queued or running: the 5 newest may be offered for a restore.
  EXPECT_THAT(CheckpointsToDelete(p, cs, {1}),
              ElementsAre("t1s100", "t1s200", "t1s300"));
  // Once the trial is finished only latest (= best here) stays.
  EXPECT_THAT(CheckpointsToDelete(p, cs, {}).size(), 7u);
}

TEST(Retention, LiveProtectionHoldsEvenWithAllCountsZero) {
  RetentionPolicy p;
  p.save_trial_latest = 0;
  p.save_trial_best = 0;
  p.restore_candidates = 2;
  std::vector<CheckpointInfo> cs = {Ckpt(1, 100, 0.1), Ckpt(1, 200, 0.2),
                                    Ckpt(1, 300, 0.3), Ckpt(2, 100, 0.1)};
  EXPECT_THAT(CheckpointsToDelete(p, cs, {1}),
              UnorderedElementsAre("t1s100", "t2s100"));
}

TEST(Retention, NoCheckpointsNothingToDelete) {
  EXPECT_THAT(CheckpointsToDelete(RetentionPolicy{}, {}, {1, 2}), IsEmpty());
}

TEST(Retention, RankedByMetricIsTheRulesOwnRanking) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<CheckpointInfo> cs = {Ckpt(1, 100, 0.3), Ckpt(2, 100, nan),
                                    Ckpt(1, 200, 0.1), Ckpt(2, 300, 0.3),
                                    Ckpt(3, 50, std::nullopt)};
  // No metric or NaN: left out; ties: the later checkpoint first.
  EXPECT_THAT(RankedByMetric(cs, /*smaller_is_better=*/true),
              ElementsAre("t1s200", "t2s300", "t1s100"));
  EXPECT_THAT(RankedByMetric(cs, /*smaller_is_better=*/false),
              ElementsAre("t2s300", "t1s100", "t1s200"));
  // The experiment's best kept by the rule is the first of the ranking.
  RetentionPolicy p;
  p.save_trial_latest = 0;
  p.save_trial_best = 0;
  p.save_experiment_best = 1;
  EXPECT_THAT(CheckpointsToDelete(p, cs, {}),
              UnorderedElementsAre("t1s100", "t2s100", "t2s300", "t3s50"));
}

TEST(Retention, AttachMetricsMatchesTrialAndSteps) {
  std::vector<CheckpointInfo> cs = {Ckpt(1, 100, std::nullopt),
                                    Ckpt(1, 200, 7.0), Ckpt(2, 100, 0.0)};
  AttachMetrics({{1, 100, 0.5}, {2, 200, 0.1}, {3, 100, 0.2}}, &cs);
  ASSERT_TRUE(cs[0].metric.has_value());
  EXPECT_EQ(*cs[0].metric, 0.5);
  // No validation at trial 1 step 200: a stale value is cleared.
  EXPECT_FALSE(cs[1].metric.has_value());
  // Trial 2 validated at 200, not at 100.
  EXPECT_FALSE(cs[2].metric.has_value());
}

}  // namespace
}  // namespace det::master::checkpoints
