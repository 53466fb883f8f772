// Population-based training: the config, the rounds (who is replaced, who
// continues, warm starts from closed parents), explore, trials that fail,
// cancel, Progress, snapshot/restore at any event, and reproducibility.
#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "master/searcher/hparam_sampler.h"
#include "master/searcher/pbt_search.h"
#include "master/searcher/preview.h"
#include "tests/searcher/search_driver.h"

namespace det::searcher {
namespace {

using testing::HasShutdown;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using testing::MustCreate;
using testing::MustParse;
using testing::Random;

std::string PbtYaml(int64_t population, int64_t rounds, double truncate,
                    const std::string& extra_searcher = "",
                    bool smaller_is_better = true) {
  return absl::StrCat(
      "searcher:\n  name: pbt\n  metric: validation_loss\n",
      "  smaller_is_better: ", smaller_is_better ? "true" : "false", "\n",
      "  population_size: ", population, "\n  num_rounds: ", rounds,
      "\n  length_per_round: {batches: 100}\n",
      "  replace_function: {truncate_fraction: ", truncate, "}\n",
      "  explore_function: {resample_probability: 0.2, perturb_factor: 0.2}\n",
      extra_searcher,
      "reproducibility: {experiment_seed: 5}\n"
      "entrypoint: ./my_trial\n"
      "hyperparameters:\n"
      "  lr: {type: log, minval: -4, maxval: -1}\n"
      "  units: {type: int, minval: 4, maxval: 64}\n"
      "  drop: {type: double, minval: 0.1, maxval: 0.5}\n"
      "  opt: {type: categorical, vals: [sgd, adam]}\n"
      "  fixed: 3\n"
      "  group:\n    inner: {type: double, minval: 1, maxval: 2}\n");
}

std::vector<Create> Creates(const Operations& ops) {
  std::vector<Create> out;
  for (const Operation& op : ops) {
    if (auto* c = std::get_if<Create>(&op)) out.push_back(*c);
  }
  return out;
}

std::vector<ValidateAfter> Validates(const Operations& ops) {
  std::vector<ValidateAfter> out;
  for (const Operation& op : ops) {
    if (auto* v = std::get_if<ValidateAfter>(&op)) out.push_back(*v);
  }
  return out;
}

// ---------------------------------------------------------------- config

TEST(PbtConfigTest, ParsesDeterminedsFields) {
  ExperimentConfig cfg = MustParse(PbtYaml(8, 3, 0.25));
  EXPECT_EQ(cfg.searcher.name, SearcherName::kPbt);
  EXPECT_EQ(cfg.searcher.pbt.population_size, 8);
  EXPECT_EQ(cfg.searcher.pbt.num_rounds, 3);
  EXPECT_EQ(cfg.searcher.pbt.truncate_fraction, 0.25);
  EXPECT_EQ(cfg.searcher.pbt.resample_probability, 0.2);
  EXPECT_EQ(cfg.searcher.pbt.perturb_factor, 0.2);
  // length_per_round is the length of each trial.
  EXPECT_EQ(cfg.searcher.max_length.value, 100);
  EXPECT_EQ(cfg.searcher.max_length.unit, Unit::kBatches);
  EXPECT_THAT(cfg.warnings, IsEmpty());
  // Determined's unitless form counts batches.
  std::string yaml = PbtYaml(8, 3, 0.25);
  yaml.replace(yaml.find("{batches: 100}"), 14, "250");
  EXPECT_EQ(MustParse(yaml).searcher.max_length.value, 250);
}

// The one error (or warning) parsing `yaml` gives, as "path: message".
std::string OnlyProblem(const std::string& yaml, bool warning = false) {
  auto cfg = ParseExperimentConfig(yaml);
  if (warning) {
    if (!cfg.ok()) return absl::StrCat("error: ", cfg.status().message());
    if (cfg->warnings.size() != 1) return "not one warning";
    return absl::StrCat(cfg->warnings[0].path, ": ", cfg->warnings[0].message);
  }
  if (cfg.ok()) return "no error";
  return std::string(cfg.status().message());
}

TEST(PbtConfigTest, BadFieldsNameTheirPath) {
  EXPECT_THAT(OnlyProblem(PbtYaml(8, 3, 0.6)),
              HasSubstr("searcher.replace_function.truncate_fraction: must be "
                        "in [0, 0.5], found 0.6"));
  EXPECT_THAT(OnlyProblem(PbtYaml(0, 3, 0.2)),
              HasSubstr("searcher.population_size"));
  EXPECT_THAT(OnlyProblem(PbtYaml(4, 0, 0.2)),
              HasSubstr("searcher.num_rounds"));
  std::string yaml = PbtYaml(8, 3, 0.25);
  yaml.replace(yaml.find("perturb_factor: 0.2"), 19, "perturb_factor: 1.5");
  EXPECT_THAT(OnlyProblem(yaml),
              HasSubstr("searcher.explore_function.perturb_factor: must be "
                        "in [0, 1], found 1.5"));
  yaml = PbtYaml(8, 3, 0.25);
  yaml.replace(yaml.find("resample_probability: 0.2, "), 27, "");
  EXPECT_THAT(OnlyProblem(yaml),
              HasSubstr("searcher.explore_function.resample_probability: "
                        "missing"));
  yaml = PbtYaml(8, 3, 0.25);
  yaml.replace(yaml.find("truncate_fraction"), 17, "truncate_fractoin");
  EXPECT_THAT(OnlyProblem(yaml),
              HasSubstr("did you mean 'truncate_fraction'?"));
  yaml = PbtYaml(8, 3, 0.25);
  yaml.replace(yaml.find("  length_per_round: {batches: 100}\n"), 35, "");
  EXPECT_THAT(OnlyProblem(yaml), HasSubstr("searcher.length_per_round: "
                                           "missing"));
  // Fields of other searchers do not apply.
  EXPECT_THAT(OnlyProblem(PbtYaml(8, 3, 0.25, "  max_length: {batches: 5}\n")),
              HasSubstr("searcher.max_length: 'max_length' does not apply to "
                        "the pbt searcher"));
  EXPECT_THAT(OnlyProblem(PbtYaml(8, 3, 0.25, "  max_trials: 5\n")),
              HasSubstr("does not apply to the pbt searcher"));
  // And PBT's do not apply to others.
  EXPECT_THAT(OnlyProblem("searcher:\n  name: random\n  metric: m\n"
                          "  max_length: {batches: 5}\n  max_trials: 2\n"
                          "  population_size: 4\n"
                          "hyperparameters: {x: 1}\n"),
              HasSubstr("searcher.population_size: 'population_size' does "
                        "not apply to the random searcher"));
}

TEST(PbtConfigTest, ParentsCheckpointsMustBeKept) {
  EXPECT_THAT(OnlyProblem(absl::StrCat(
                  PbtYaml(4, 2, 0.5),
                  "checkpoint_storage: {type: shared_fs, save_trial_latest: "
                  "0}\n")),
              HasSubstr("checkpoint_storage.save_trial_latest: must be at "
                        "least 1 with the pbt searcher"));
}

TEST(PbtConfigTest, NothingReplacedIsAWarning) {
  EXPECT_THAT(OnlyProblem(PbtYaml(3, 2, 0.2), /*warning=*/true),
              HasSubstr("searcher.replace_function.truncate_fraction: "
                        "truncate_fraction x population_size (0.2 x 3) "
                        "rounds down to 0"));
}

// ---------------------------------------------------------------- explore

HParamSpecs Specs() { return MustParse(PbtYaml(4, 2, 0.5)).hyperparameters; }

TEST(PbtExploreTest, PerturbsNumbersWithinTheirRangesAndKeepsTheRest) {
  HParamSpecs specs = Specs();
  ValueMap parent = {{"lr", Value(0.01)},
                     {"units", Value(int64_t{10})},
                     {"drop", Value(0.45)},
                     {"opt", Value("adam")},
                     {"fixed", Value(int64_t{3})},
                     {"group", Value(ValueMap{{"inner", Value(1.5)}})}};
  std::set<int64_t> units;
  std::set<double> drops, lrs, inners;
  for (int64_t id = 1; id <= 200; ++id) {
    ValueMap v = ExploreHParams(specs, parent, /*resample_probability=*/0,
                                /*perturb_factor=*/0.2, 5, id);
    ASSERT_TRUE(v.at("units").is_int());
    units.insert(v.at("units").as_int());
    drops.insert(v.at("drop").as_number());
    lrs.insert(v.at("lr").as_number());
    inners.insert(v.at("group")["inner"].as_number());
    EXPECT_EQ(v.at("opt"), Value("adam")) << "categorical: kept";
    EXPECT_EQ(v.at("fixed"), Value(int64_t{3})) << "const: kept";
  }
  // int: floor(10 x 0.8), ceil(10 x 1.2).
  EXPECT_EQ(units, (std::set<int64_t>{8, 12}));
  // double: 0.45 x 0.8 = 0.36, 0.45 x 1.2 clamped to maxval 0.5.
  EXPECT_THAT(drops, ::testing::ElementsAre(::testing::DoubleEq(0.36),
                                            ::testing::DoubleEq(0.5)));
  EXPECT_THAT(lrs, ::testing::ElementsAre(::testing::DoubleEq(0.008),
                                          ::testing::DoubleEq(0.012)));
  // Nested: 1.5 x 0.8 = 1.2, 1.5 x 1.2 = 1.8.
  EXPECT_THAT(inners, ::testing::ElementsAre(::testing::DoubleEq(1.2),
                                             ::testing::DoubleEq(1.8)));
  // Log values clamp to base^minval..base^maxval; ints to their range.
  parent["lr"] = Value(0.1);
  parent["units"] = Value(int64_t{60});
  for (int64_t id = 1; id <= 50; ++id) {
    ValueMap v = ExploreHParams(specs, parent, 0, 0.5, 5, id);
    EXPECT_LE(v.at("lr").as_number(), 0.1);
    EXPECT_LE(v.at("units").as_int(), 64);
  }
}

TEST(PbtExploreTest, ResamplesWithItsProbability) {
  HParamSpecs specs = Specs();
  ValueMap parent = SampleHParams(specs, 5, 1);
  int changed_opt = 0;
  for (int64_t id = 1; id <= 400; ++id) {
    ValueMap v = ExploreHParams(specs, parent, 1.0, 0.2, 5, id);
    EXPECT_GE(v.at("units").as_int(), 4);
    EXPECT_LE(v.at("units").as_int(), 64);
    EXPECT_GE(v.at("lr").as_number(), 1e-4);
    EXPECT_LE(v.at("lr").as_number(), 1e-1);
    if (v.at("opt") != parent.at("opt")) ++changed_opt;
    EXPECT_EQ(v.at("fixed"), Value(int64_t{3}));
  }
  // Resampled categoricals change about half the time.
  EXPECT_GT(changed_opt, 120);
  EXPECT_LT(changed_opt, 280);
  // The same seed and request id give the same values; others differ.
  EXPECT_EQ(ExploreHParams(specs, parent, 0.3, 0.2, 5, 9),
            ExploreHParams(specs, parent, 0.3, 0.2, 5, 9));
  EXPECT_NE(ExploreHParams(specs, parent, 1.0, 0.2, 5, 9),
            ExploreHParams(specs, parent, 1.0, 0.2, 6, 9));
}

// ---------------------------------------------------------------- rounds

// Plays a whole round: every live trial in `ids` validates with metric[id]
// (default: its id) and closes; returns the operations of the last close.
Operations PlayRound(SearchMethod& s, const std::vector<RequestId>& ids,
                     const std::map<RequestId, double>& metric = {}) {
  Operations last;
  for (RequestId id : ids) {
    auto it = metric.find(id);
    EXPECT_THAT(
        s.ValidationCompleted(
            id, it == metric.end() ? static_cast<double>(id) : it->second, 100),
        IsEmpty());
    last = s.TrialClosed(id);
  }
  return last;
}

std::vector<RequestId> Ids(const std::vector<Create>& creates) {
  std::vector<RequestId> ids;
  for (const Create& c : creates) ids.push_back(c.request_id);
  return ids;
}

TEST(PbtSearchTest, ReplacesTheWorstWithCopiesOfTheBest) {
  auto s = MustCreate(MustParse(PbtYaml(4, 3, 0.5)));
  Operations ops = s->InitialOperations();
  std::vector<Create> first = Creates(ops);
  ASSERT_EQ(first.size(), 4u);
  for (const Create& c : first) EXPECT_EQ(c.warm_start_from, 0);
  for (const ValidateAfter& v : Validates(ops)) {
    EXPECT_EQ(v.length, 100);
    EXPECT_THAT(v.validation_points, IsEmpty());
  }
  // Smaller is better: 3 and 1 are best, then 4, then 2.
  std::map<RequestId, double> metric = {{1, 0.2}, {2, 0.9}, {3, 0.1}, {4, 0.5}};
  // Nothing until the last member has closed (its checkpoint exists).
  EXPECT_THAT(PlayRound(*s, {1, 2, 3}, metric), IsEmpty());
  EXPECT_THAT(s->ValidationCompleted(4, 0.5, 100), IsEmpty());
  ops = s->TrialClosed(4);
  std::vector<Create> second = Creates(ops);
  ASSERT_EQ(second.size(), 4u);
  EXPECT_EQ(Validates(ops).size(), 4u);
  for (const ValidateAfter& v : Validates(ops)) EXPECT_EQ(v.length, 100);
  // Copies first (explored, from 3 then 1), then the survivors continue
  // with their own hyperparameters (3 then 1).
  EXPECT_EQ(Ids(second), (std::vector<RequestId>{5, 6, 7, 8}));
  std::vector<RequestId> from;
  for (const Create& c : second) from.push_back(c.warm_start_from);
  EXPECT_EQ(from, (std::vector<RequestId>{3, 1, 3, 1}));
  EXPECT_EQ(second[2].hparams, first[2].hparams) << "continuation of 3";
  EXPECT_EQ(second[3].hparams, first[0].hparams) << "continuation of 1";
  EXPECT_NE(second[0].hparams, first[2].hparams) << "explored copy of 3";
  EXPECT_NE(second[1].hparams, first[0].hparams) << "explored copy of 1";
  EXPECT_EQ(second[0].hparams.at("fixed"), Value(int64_t{3}));
  // Round 2: larger ids are worse; 5 and 6 are best.
  ops = PlayRound(*s, {5, 6, 7, 8});
  std::vector<RequestId> third_from;
  for (const Create& c : Creates(ops)) third_from.push_back(c.warm_start_from);
  EXPECT_EQ(third_from, (std::vector<RequestId>{5, 6, 5, 6}));
  // The last round ends the search: no more trials.
  ops = PlayRound(*s, Ids(Creates(ops)));
  bool failure = true;
  EXPECT_TRUE(HasShutdown(ops, &failure));
  EXPECT_FALSE(failure);
  EXPECT_THAT(Creates(ops), IsEmpty());
  EXPECT_EQ(s->Progress(), 1.0);
}

// Determined's PBT tests count the rounds each Determined trial trains. A
// Determined trial is, in det, a chain: a first-round trial or a copy, then
// the continuations that go on from it (same hyperparameters). Plays a whole
// search where every trial validates metric(its chain's number, in creation
// order from 1) and returns each chain's rounds, sorted.
std::vector<int> ChainRounds(const std::string& yaml,
                             const std::function<double(int chain)>& metric) {
  auto s = MustCreate(MustParse(yaml));
  Operations ops = s->InitialOperations();
  std::map<RequestId, int> chain_of;
  std::map<RequestId, ValueMap> hparams;
  std::vector<int> rounds;  // by chain - 1
  while (!HasShutdown(ops)) {
    std::vector<Create> creates = Creates(ops);
    if (creates.empty()) {
      ADD_FAILURE() << "a round ended without new trials or a Shutdown";
      break;
    }
    for (const Create& c : creates) {
      hparams[c.request_id] = c.hparams;
      const bool continues =
          c.warm_start_from != 0 && hparams[c.warm_start_from] == c.hparams;
      if (continues) {
        chain_of[c.request_id] = chain_of[c.warm_start_from];
        ++rounds[static_cast<size_t>(chain_of[c.request_id] - 1)];
      } else {
        rounds.push_back(1);
        chain_of[c.request_id] = static_cast<int>(rounds.size());
      }
    }
    for (const Create& c : creates) {
      s->ValidationCompleted(c.request_id, metric(chain_of[c.request_id]), 100);
      ops = s->TrialClosed(c.request_id);
    }
  }
  std::sort(rounds.begin(), rounds.end());
  return rounds;
}

TEST(PbtSearchTest, TrialsTrainAsManyRoundsAsInDeterminedsTests) {
  auto larger = [](int64_t pop, int64_t rounds, double truncate) {
    return PbtYaml(pop, rounds, truncate, "", /*smaller_is_better=*/false);
  };
  auto id = [](int chain) { return static_cast<double>(chain); };
  // Each round the two newest (the copies) are the best.
  std::vector<int> want(14, 2);
  want.insert(want.begin(), 4, 1);
  EXPECT_EQ(ChainRounds(larger(4, 8, 0.5), id), want);
  // Smaller is better: the two oldest survive every round.
  want.assign(16, 1);
  want.push_back(8);
  want.push_back(8);
  EXPECT_EQ(ChainRounds(PbtYaml(4, 8, 0.5), id), want);
  // Nothing replaced: the first population trains every round.
  EXPECT_EQ(ChainRounds(larger(3, 4, 0), id), (std::vector<int>{4, 4, 4}));
  // Even chains lose, odd ones win.
  EXPECT_EQ(ChainRounds(larger(2, 3, 0.5),
                        [](int chain) {
                          return chain % 2 == 0 ? -static_cast<double>(chain)
                                                : static_cast<double>(chain);
                        }),
            (std::vector<int>{1, 1, 2, 2}));
  EXPECT_EQ(ChainRounds(larger(2, 2, 0.5), id), (std::vector<int>{1, 1, 2}));
}

TEST(PbtSearchTest, LargerIsBetterAndTiesGoToTheOlderTrial) {
  auto s = MustCreate(
      MustParse(PbtYaml(4, 2, 0.25, "", /*smaller_is_better=*/false)));
  s->InitialOperations();
  // 4 is the best; 1 and 2 tie for worst: the newer (2) is replaced.
  Operations ops =
      PlayRound(*s, {1, 2, 3, 4}, {{1, 0.1}, {2, 0.1}, {3, 0.5}, {4, 0.9}});
  std::vector<RequestId> from;
  for (const Create& c : Creates(ops)) from.push_back(c.warm_start_from);
  EXPECT_EQ(from, (std::vector<RequestId>{4, 4, 3, 1}));
}

TEST(PbtSearchTest, NaNRanksWorstAndTheLatestValidationCounts) {
  auto s = MustCreate(MustParse(PbtYaml(2, 2, 0.5)));
  s->InitialOperations();
  s->ValidationCompleted(1, 0.9, 100);
  s->ValidationCompleted(2, 0.1, 50);
  s->ValidationCompleted(2, std::nan(""), 100);  // the latest: NaN
  s->ValidationCompleted(2, 0.0, 60);            // older than 100: ignored
  s->TrialClosed(1);
  Operations ops = s->TrialClosed(2);
  ASSERT_EQ(Creates(ops).size(), 2u);
  EXPECT_EQ(Creates(ops)[0].warm_start_from, 1);
  EXPECT_EQ(Creates(ops)[1].warm_start_from, 1);
}

TEST(PbtSearchTest, NoTruncationContinuesEveryMember) {
  auto s = MustCreate(MustParse(PbtYaml(3, 3, 0.2)));  // floor(0.6) = 0
  s->InitialOperations();
  Operations ops = PlayRound(*s, {1, 2, 3});
  std::vector<RequestId> from;
  for (const Create& c : Creates(ops)) from.push_back(c.warm_start_from);
  EXPECT_EQ(from, (std::vector<RequestId>{1, 2, 3}));
}

TEST(PbtSearchTest, FailedMembersRankLastAndAreReplaced) {
  auto s = MustCreate(MustParse(PbtYaml(4, 3, 0.5)));
  s->InitialOperations();
  EXPECT_THAT(s->TrialExitedEarly(1, ExitedReason::kErrored), IsEmpty());
  // 1 errored, 2 rejected its hyperparameters: both dead; 3 and 4 live.
  EXPECT_THAT(s->TrialExitedEarly(2, ExitedReason::kInvalidHP), IsEmpty());
  Operations ops = PlayRound(*s, {3, 4}, {{3, 0.9}, {4, 0.8}});
  std::vector<RequestId> from;
  for (const Create& c : Creates(ops)) from.push_back(c.warm_start_from);
  EXPECT_EQ(from, (std::vector<RequestId>{4, 3, 4, 3}));
}

TEST(PbtSearchTest, DeadMembersThatSurviveTheCutStayDead) {
  auto s = MustCreate(MustParse(PbtYaml(4, 3, 0.5)));
  s->InitialOperations();
  for (RequestId id : {1, 2, 3})
    s->TrialExitedEarly(id, ExitedReason::kErrored);
  // Ranked 4, then the dead 1, 2, 3: a copy of 4 replaces one; the copy of
  // 1 is not made; 4 continues and 1 stays dead.
  Operations ops = PlayRound(*s, {4});
  std::vector<Create> next = Creates(ops);
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[0].warm_start_from, 4);
  EXPECT_EQ(next[1].warm_start_from, 4);
  EXPECT_EQ(next[0].request_id, 5);
  EXPECT_EQ(next[1].request_id, 6);
  // Round 2: the two live trials; the dead ones are ranked last again and
  // replaced by copies of 5 and 6.
  ops = PlayRound(*s, {5, 6});
  std::vector<RequestId> from;
  for (const Create& c : Creates(ops)) from.push_back(c.warm_start_from);
  EXPECT_EQ(from, (std::vector<RequestId>{5, 6, 5, 6}));
}

TEST(PbtSearchTest, APopulationThatDiesEndsAsAFailure) {
  auto s = MustCreate(MustParse(PbtYaml(2, 3, 0.5)));
  s->InitialOperations();
  EXPECT_THAT(s->TrialExitedEarly(1, ExitedReason::kErrored), IsEmpty());
  bool failure = false;
  EXPECT_TRUE(
      HasShutdown(s->TrialExitedEarly(2, ExitedReason::kErrored), &failure));
  EXPECT_TRUE(failure);
  EXPECT_EQ(s->Progress(), 1.0);
  EXPECT_THAT(s->TrialClosed(1), IsEmpty());
}

TEST(PbtSearchTest, CancelCreatesNothingMoreAndShutsDownWhenNoneRuns) {
  auto s = MustCreate(MustParse(PbtYaml(3, 3, 0.34)));
  s->InitialOperations();
  s->ValidationCompleted(1, 0.5, 100);
  EXPECT_THAT(s->TrialClosed(1), IsEmpty());
  EXPECT_THAT(s->TrialExitedEarly(2, ExitedReason::kUserCanceled), IsEmpty());
  Operations ops = s->TrialExitedEarly(3, ExitedReason::kUserCanceled);
  bool failure = true;
  EXPECT_TRUE(HasShutdown(ops, &failure));
  EXPECT_FALSE(failure);
  EXPECT_THAT(Creates(ops), IsEmpty());
}

TEST(PbtSearchTest, ProgressCountsUnitsOverAllRounds) {
  auto s = MustCreate(MustParse(PbtYaml(2, 2, 0.5)));
  EXPECT_EQ(s->Progress(), 0);
  s->InitialOperations();
  s->ValidationCompleted(1, 0.5, 50);  // half of one of four
  EXPECT_DOUBLE_EQ(s->Progress(), 0.5 / 4);
  s->TrialClosed(1);  // one of four
  EXPECT_DOUBLE_EQ(s->Progress(), 1.0 / 4);
  s->TrialExitedEarly(2, ExitedReason::kErrored);  // ended: counts whole
  EXPECT_DOUBLE_EQ(s->Progress(), 2.0 / 4);
  s->ValidationCompleted(3, 0.5, 250);  // capped at the round
  EXPECT_DOUBLE_EQ(s->Progress(), 3.0 / 4);
}

TEST(PbtSearchTest, StaleAndUnknownEventsAreHarmless) {
  auto s = MustCreate(MustParse(PbtYaml(2, 2, 0.5)));
  s->InitialOperations();
  EXPECT_THAT(s->TrialClosed(99), IsEmpty());
  EXPECT_THAT(s->ValidationCompleted(99, 0.1, 100), IsEmpty());
  s->TrialClosed(1);
  EXPECT_THAT(s->TrialClosed(1), IsEmpty());
  EXPECT_THAT(s->TrialExitedEarly(1, ExitedReason::kErrored), IsEmpty());
  EXPECT_THAT(s->InitialOperations(), IsEmpty());
  Operations ops = s->TrialClosed(2);
  EXPECT_EQ(Creates(ops).size(), 2u);
  // Events about the previous round's trials change nothing.
  std::string before = s->Snapshot();
  EXPECT_THAT(s->ValidationCompleted(1, 0.0, 100), IsEmpty());
  EXPECT_THAT(s->TrialExitedEarly(2, ExitedReason::kErrored), IsEmpty());
  EXPECT_EQ(s->Snapshot(), before);
}

TEST(PbtSearchTest, RestoreRefusesAnotherSearch) {
  auto s = MustCreate(MustParse(PbtYaml(4, 3, 0.5)));
  s->InitialOperations();
  auto other = MustCreate(MustParse(PbtYaml(5, 3, 0.5)));
  absl::Status st = other->Restore(s->Snapshot());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("population of 4 in 3 rounds"));
  auto random = MustCreate(MustParse(
      "searcher:\n  name: random\n  metric: m\n  max_length: {batches: 5}\n"
      "  max_trials: 2\nhyperparameters: {x: 1}\n"));
  EXPECT_THAT(random->Restore(s->Snapshot()).message(),
              HasSubstr("of a 'pbt' search"));
  EXPECT_FALSE(other->Restore("{").ok());
  auto fresh = MustCreate(MustParse(PbtYaml(4, 3, 0.5)));
  std::string snap = s->Snapshot();
  snap.replace(snap.find("\"lineage\":[[1,0,0]"), 18, "\"lineage\":[[1,7,0]");
  EXPECT_THAT(fresh->Restore(snap).message(), HasSubstr("lineage entry"));
}

// ---------------------------------------------------------------- property

// One event for a live trial: a validation, a close, or an early exit.
struct Event {
  enum Kind { kValidate, kClose, kError, kInvalid, kCancel } kind;
  RequestId id = 0;
  double metric = 0;
  int64_t length = 0;
};

Operations Feed(SearchMethod& s, const Event& e) {
  switch (e.kind) {
    case Event::kValidate:
      return s.ValidationCompleted(e.id, e.metric, e.length);
    case Event::kClose:
      return s.TrialClosed(e.id);
    case Event::kError:
      return s.TrialExitedEarly(e.id, ExitedReason::kErrored);
    case Event::kInvalid:
      return s.TrialExitedEarly(e.id, ExitedReason::kInvalidHP);
    case Event::kCancel:
      return s.TrialExitedEarly(e.id, ExitedReason::kUserCanceled);
  }
  return {};
}

struct RunResult {
  std::vector<Create> creates;
  bool shut_down = false;
  int steps = 0;
};

// Drives a random PBT search to its end. At every event a fresh searcher
// restored from a snapshot must answer exactly as the original does; each
// Create after round 1 must start from a trial already reported closed; at
// most population_size trials run at once; Progress never goes down.
RunResult RunRandomly(const ExperimentConfig& cfg, uint64_t seed,
                      bool allow_cancel, bool swap_in_restored) {
  Random r(seed);
  Random swaps(seed + 1);  // apart, so swapping leaves the events alone
  testing::Driver d(MustCreate(cfg), cfg.searcher.pbt.population_size);
  RunResult result;
  std::set<RequestId> closed;
  auto check_creates = [&](const Operations& ops) {
    for (const Create& c : Creates(ops)) {
      result.creates.push_back(c);
      if (c.warm_start_from != 0) {
        EXPECT_TRUE(closed.count(c.warm_start_from))
            << "warm start from " << c.warm_start_from
            << ", not reported closed";
      }
    }
  };
  check_creates(d.Start());
  std::map<RequestId, int64_t> lengths;
  const int64_t round_length = cfg.searcher.max_length.value;
  double progress = d.method().Progress();
  for (; !d.shut_down() && result.steps < 20000; ++result.steps) {
    std::vector<RequestId> live = d.Live();
    if (live.empty()) {
      ADD_FAILURE() << "no live trial and no Shutdown";
      break;
    }
    Event e;
    e.id = live[static_cast<size_t>(
        r.Int(0, static_cast<int64_t>(live.size()) - 1))];
    double p = r.Uniform();
    if (p < 0.6) {
      e.kind = Event::kValidate;
      int64_t& len = lengths[e.id];
      len = std::min(round_length, len + r.Int(1, round_length));
      e.length = len;
      e.metric = r.Chance(0.05) ? std::nan("") : r.Uniform();
    } else if (p < 0.92) {
      e.kind = Event::kClose;
    } else if (p < 0.96) {
      e.kind = Event::kError;
    } else if (p < 0.99 || !allow_cancel) {
      e.kind = Event::kInvalid;
    } else {
      e.kind = Event::kCancel;
    }
    // The same event on a restored copy gives the same operations.
    std::string snap = d.method().Snapshot();
    std::unique_ptr<SearchMethod> restored = MustCreate(cfg);
    EXPECT_TRUE(restored->Restore(snap).ok());
    EXPECT_EQ(restored->Snapshot(), snap);
    EXPECT_EQ(restored->Progress(), d.method().Progress());
    Operations expected = Feed(*restored, e);
    if (e.kind == Event::kClose) closed.insert(e.id);
    Operations ops;
    switch (e.kind) {
      case Event::kValidate:
        ops = d.Validate(e.id, e.metric, e.length);
        break;
      case Event::kClose:
        ops = d.Closed(e.id);
        break;
      case Event::kError:
        ops = d.Exited(e.id, ExitedReason::kErrored);
        break;
      case Event::kInvalid:
        ops = d.Exited(e.id, ExitedReason::kInvalidHP);
        break;
      case Event::kCancel:
        ops = d.Exited(e.id, ExitedReason::kUserCanceled);
        break;
    }
    EXPECT_EQ(ops, expected) << "step " << result.steps;
    EXPECT_EQ(restored->Snapshot(), d.method().Snapshot());
    check_creates(ops);
    EXPECT_GE(d.method().Progress(), progress);
    progress = d.method().Progress();
    if (swap_in_restored && swaps.Chance(0.1)) d.Replace(std::move(restored));
  }
  EXPECT_TRUE(d.shut_down()) << "the search did not finish";
  EXPECT_EQ(d.method().Progress(), 1.0);
  EXPECT_LE(d.created(),
            cfg.searcher.pbt.population_size * cfg.searcher.pbt.num_rounds);
  result.shut_down = d.shut_down();
  return result;
}

std::string RandomPbtYaml(Random& r) {
  const double truncates[] = {0, 0.1, 0.2, 0.25, 0.34, 0.5};
  return PbtYaml(r.Int(1, 9), r.Int(1, 5), truncates[r.Int(0, 5)], "",
                 r.Chance(0.5));
}

TEST(PbtPropertyTest, RestoreAtAnyEventGivesTheSameNextOperations) {
  int64_t warm_starts = 0, steps = 0;
  for (uint64_t seed = 1; seed <= 40; ++seed) {
    Random r(seed * 7919);
    std::string yaml = RandomPbtYaml(r);
    SCOPED_TRACE(absl::StrCat("seed ", seed, "\n", yaml));
    auto cfg = ParseExperimentConfig(yaml);
    ASSERT_TRUE(cfg.ok()) << cfg.status();
    RunResult run = RunRandomly(*cfg, seed, /*allow_cancel=*/seed % 4 == 0,
                                /*swap_in_restored=*/seed % 2 == 0);
    for (const Create& c : run.creates) {
      if (c.warm_start_from != 0) ++warm_starts;
    }
    steps += run.steps;
  }
  // The runs got past their first rounds, and far.
  EXPECT_GT(warm_starts, 200);
  EXPECT_GT(steps, 1000);
}

TEST(PbtPropertyTest, TheSameSeedAndResultsGiveTheSameTrials) {
  ExperimentConfig cfg = MustParse(PbtYaml(6, 4, 0.34));
  RunResult a = RunRandomly(cfg, 42, false, false);
  RunResult b = RunRandomly(cfg, 42, false, true);
  ASSERT_EQ(a.creates.size(), b.creates.size());
  for (size_t i = 0; i < a.creates.size(); ++i) {
    EXPECT_EQ(a.creates[i], b.creates[i]) << ToString(a.creates[i]);
  }
  // Another experiment seed samples other trials.
  ExperimentConfig other = cfg;
  other.experiment_seed = cfg.experiment_seed + 1;
  RunResult c = RunRandomly(other, 42, false, false);
  ASSERT_FALSE(c.creates.empty());
  EXPECT_NE(a.creates[0].hparams, c.creates[0].hparams);
}

// ---------------------------------------------------------------- preview

TEST(PbtPreviewTest, PlansRoundsAndTrials) {
  auto plan = PlanSearch(MustParse(PbtYaml(8, 3, 0.25)));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->searcher, "pbt");
  EXPECT_EQ(plan->num_trials, 24);
  EXPECT_EQ(plan->max_concurrent_trials, 8);
  EXPECT_EQ(plan->max_length, 100);
  EXPECT_EQ(plan->total_length, 2400);
  EXPECT_EQ(plan->population_size, 8);
  EXPECT_EQ(plan->num_rounds, 3);
  EXPECT_EQ(plan->replaced_per_round, 2);
  ASSERT_EQ(plan->rounds.size(), 2u);
  EXPECT_EQ(plan->rounds[1].continuing, 6);
  EXPECT_EQ(plan->rounds[1].copies, 2);
  EXPECT_EQ(plan->rounds[1].trained_length, 200);
  std::string text = FormatPlan(*plan);
  EXPECT_THAT(text, HasSubstr("Searcher: pbt"));
  EXPECT_THAT(text, HasSubstr("Trials: 24, at most 8 at a time"));
  EXPECT_THAT(text, HasSubstr("Population: 8 in 3 rounds of 100 batches"));
  EXPECT_THAT(text, HasSubstr("the worst 2 are replaced by copies of the "
                              "best 2"));
  EXPECT_THAT(text, HasSubstr("Training: 2400 batches in total"));
  EXPECT_THAT(text, HasSubstr("2..3   8 each"));
  // The plan matches what the searcher does.
  ExperimentConfig cfg = MustParse(PbtYaml(8, 3, 0.25));
  RunResult run = RunRandomly(cfg, 3, false, false);
  EXPECT_LE(static_cast<int64_t>(run.creates.size()), plan->num_trials);
  auto none = PlanSearch(MustParse(PbtYaml(3, 2, 0.2)));
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->replaced_per_round, 0);
  EXPECT_THAT(FormatPlan(*none), HasSubstr("Note: truncate_fraction"));
}

}  // namespace
}  // namespace det::searcher
