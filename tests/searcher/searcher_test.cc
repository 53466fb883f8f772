// Each search method fed by hand: the operations it must produce.
#include "master/searcher/searcher.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "master/searcher/asha_brackets.h"
#include "master/searcher/hparam_sampler.h"
#include "tests/searcher/search_driver.h"

namespace det::searcher {
namespace {

using testing::ClosedIds;
using testing::CreatedIds;
using testing::Driver;
using ::testing::ElementsAre;
using testing::HasShutdown;
using ::testing::IsEmpty;
using testing::MustCreate;
using testing::MustParse;

std::string Searcher(const std::string& body) {
  return absl::StrCat("searcher:\n  metric: validation_loss\n", body);
}

// ---- single -------------------------------------------------------------

TEST(SingleSearchTest, OneTrialWithTheConstValues) {
  ExperimentConfig cfg = MustParse(
      Searcher("  name: single\n  max_length: {batches: 300}\n"
               "reproducibility: {experiment_seed: 9}\n"
               "hyperparameters:\n  lr: 0.1\n  opt: {type: const, val: adam}\n"
               "  group: {layers: 3}\n"));
  Driver d(MustCreate(cfg), 1);
  Operations ops = d.Start();
  ASSERT_EQ(ops.size(), 2u);
  const Create& c = std::get<Create>(ops[0]);
  EXPECT_EQ(c.request_id, 1);
  EXPECT_EQ(c.seed, TrialSeed(9, 1));
  EXPECT_EQ(Value(c.hparams),
            Value(ValueMap{{"lr", Value(0.1)},
                           {"opt", Value("adam")},
                           {"group", Value(ValueMap{{"layers", Value(3)}})}}));
  EXPECT_EQ(std::get<ValidateAfter>(ops[1]), (ValidateAfter{1, 300, {}}));
  EXPECT_EQ(d.method().Progress(), 0);
  EXPECT_THAT(d.Validate(1, 0.5, 150), IsEmpty());
  EXPECT_DOUBLE_EQ(d.method().Progress(), 0.5);
  bool failure = true;
  EXPECT_TRUE(HasShutdown(d.Closed(1), &failure));
  EXPECT_FALSE(failure);
  EXPECT_EQ(d.method().Progress(), 1);
  // A second InitialOperations call creates nothing.
  EXPECT_THAT(d.method().InitialOperations(), IsEmpty());
}

TEST(SingleSearchTest, InvalidHyperparametersEndTheSearchAsAFailure) {
  // Const values: a new trial would be rejected the same way.
  Driver d(MustCreate(MustParse(
               Searcher("  name: single\n  max_length: {batches: 3}\n"))),
           1);
  d.Start();
  bool failure = false;
  EXPECT_TRUE(HasShutdown(d.Exited(1, ExitedReason::kInvalidHP), &failure));
  EXPECT_TRUE(failure);
  EXPECT_EQ(d.created(), 1);
}

// ---- grid ---------------------------------------------------------------

std::vector<ValueMap> AllGridPoints(const std::string& yaml) {
  Driver d(MustCreate(MustParse(yaml)), 1000000);
  std::vector<ValueMap> points;
  Operations ops = d.Start();
  while (!d.shut_down()) {
    for (RequestId id : CreatedIds(ops)) {
      points.push_back(d.trials().at(id).create.hparams);
    }
    std::vector<RequestId> live = d.Live();
    if (live.empty()) break;
    ops = d.Closed(live.front());
  }
  return points;
}

TEST(GridSearchTest, CartesianProductInSortedNameOrder) {
  std::vector<ValueMap> points = AllGridPoints(Searcher(R"(  name: grid
  max_length: {batches: 10}
hyperparameters:
  b_cat: {type: categorical, vals: [x, y]}
  a_int: {type: int, minval: 1, maxval: 3, count: 3}
  c_const: 7
  g:
    d: {type: double, minval: 0, maxval: 1, count: 2}
)"));
  ASSERT_EQ(points.size(), 3u * 2 * 2);
  // a_int varies slowest, then b_cat, then g.d ("c_const" is one value).
  auto point = [](int a, const char* b, double d) {
    return Value(ValueMap{{"a_int", Value(a)},
                          {"b_cat", Value(b)},
                          {"c_const", Value(7)},
                          {"g", Value(ValueMap{{"d", Value(d)}})}});
  };
  std::vector<Value> expected;
  for (int a : {1, 2, 3}) {
    for (const char* b : {"x", "y"}) {
      for (double d : {0.0, 1.0}) expected.push_back(point(a, b, d));
    }
  }
  for (size_t i = 0; i < points.size(); ++i) {
    EXPECT_EQ(Value(points[i]), expected[i]) << "point " << i;
  }
}

std::vector<Value> Axis(const std::string& spec) {
  std::vector<Value> values;
  for (const ValueMap& p : AllGridPoints(
           Searcher(absl::StrCat("  name: grid\n  max_length: {batches: 1}\n"
                                 "hyperparameters:\n  x: ",
                                 spec, "\n")))) {
    values.push_back(p.at("x"));
  }
  return values;
}

TEST(GridSearchTest, AxisValuesFollowDetermined) {
  // int: count clamped to the range; values rounded.
  EXPECT_THAT(Axis("{type: int, minval: 1, maxval: 3, count: 10}"),
              ElementsAre(Value(1), Value(2), Value(3)));
  EXPECT_THAT(Axis("{type: int, minval: 0, maxval: 10, count: 4}"),
              ElementsAre(Value(0), Value(3), Value(7), Value(10)));
  // count 1 gives the midpoint.
  EXPECT_THAT(Axis("{type: int, minval: 1, maxval: 4, count: 1}"),
              ElementsAre(Value(3)));
  EXPECT_THAT(Axis("{type: double, minval: 0, maxval: 1, count: 1}"),
              ElementsAre(Value(0.5)));
  EXPECT_THAT(Axis("{type: double, minval: 0, maxval: 1, count: 3}"),
              ElementsAre(Value(0.0), Value(0.5), Value(1.0)));
  std::vector<Value> log =
      Axis("{type: log, minval: -3, maxval: -1, count: 3}");
  ASSERT_EQ(log.size(), 3u);
  EXPECT_DOUBLE_EQ(log[0].as_number(), 1e-3);
  EXPECT_DOUBLE_EQ(log[1].as_number(), 1e-2);
  EXPECT_DOUBLE_EQ(log[2].as_number(), 1e-1);
  std::vector<Value> mid =
      Axis("{type: log, minval: 1, maxval: 3, base: 2, count: 1}");
  ASSERT_EQ(mid.size(), 1u);
  EXPECT_DOUBLE_EQ(mid[0].as_number(), 4);
  EXPECT_THAT(Axis("{type: categorical, vals: [a, 2, true]}"),
              ElementsAre(Value("a"), Value(2), Value(true)));
  EXPECT_THAT(Axis("[1, 2]"),
              ElementsAre(Value(ValueList{Value(1), Value(2)})));
}

TEST(GridSearchTest, ConcurrencyAndInvalidPoints) {
  ExperimentConfig cfg = MustParse(Searcher(R"(  name: grid
  max_length: {batches: 10}
  max_concurrent_trials: 2
hyperparameters:
  x: {type: int, minval: 1, maxval: 5, count: 5}
)"));
  Driver d(MustCreate(cfg), 2);
  EXPECT_THAT(CreatedIds(d.Start()), ElementsAre(1, 2));
  // An invalid point is dropped, not replaced: the next point comes instead.
  EXPECT_THAT(CreatedIds(d.Exited(1, ExitedReason::kInvalidHP)),
              ElementsAre(3));
  EXPECT_THAT(CreatedIds(d.Closed(2)), ElementsAre(4));
  EXPECT_THAT(CreatedIds(d.Exited(3, ExitedReason::kErrored)), ElementsAre(5));
  EXPECT_THAT(CreatedIds(d.Closed(4)), IsEmpty());
  bool failure = true;
  EXPECT_TRUE(HasShutdown(d.Closed(5), &failure));
  EXPECT_FALSE(failure);
  std::vector<Value> xs;
  for (const auto& [id, t] : d.trials()) xs.push_back(t.create.hparams.at("x"));
  EXPECT_THAT(xs,
              ElementsAre(Value(1), Value(2), Value(3), Value(4), Value(5)));
}

// ---- random -------------------------------------------------------------

const char kRandom[] = R"(searcher:
  name: random
  metric: validation_loss
  max_length: {epochs: 2}
  max_trials: 40
  max_concurrent_trials: 3
reproducibility: {experiment_seed: 1234}
hyperparameters:
  n: {type: int, minval: -2, maxval: 2}
  x: {type: double, minval: 0.25, maxval: 0.75}
  lr: {type: log, minval: -4, maxval: -2}
  opt: {type: categorical, vals: [sgd, adam, rmsprop]}
  fixed: 5
  nested: {m: {type: double, minval: 0.8, maxval: 0.99}}
)";

std::vector<Create> RunRandom(const std::string& yaml) {
  Driver d(MustCreate(MustParse(yaml)), 3);
  std::vector<Create> creates;
  Operations ops = d.Start();
  EXPECT_EQ(CreatedIds(ops).size(), 3u);
  while (!d.shut_down()) {
    std::vector<RequestId> live = d.Live();
    if (live.empty()) break;
    ops = d.Closed(live.front());
    EXPECT_LE(CreatedIds(ops).size(), 1u) << "one new trial per ended trial";
  }
  EXPECT_TRUE(d.shut_down());
  for (const auto& [id, t] : d.trials()) creates.push_back(t.create);
  return creates;
}

TEST(RandomSearchTest, SamplesWithinTheSpaceAndReproducibly) {
  std::vector<Create> a = RunRandom(kRandom);
  ASSERT_EQ(a.size(), 40u);
  std::set<int64_t> ns;
  std::set<std::string> opts;
  std::set<uint64_t> seeds;
  for (const Create& c : a) {
    const ValueMap& h = c.hparams;
    ASSERT_TRUE(h.at("n").is_int());
    ns.insert(h.at("n").as_int());
    EXPECT_GE(h.at("x").as_number(), 0.25);
    EXPECT_LT(h.at("x").as_number(), 0.75);
    EXPECT_GE(h.at("lr").as_number(), 1e-4 * (1 - 1e-12));
    EXPECT_LE(h.at("lr").as_number(), 1e-2 * (1 + 1e-12));
    opts.insert(h.at("opt").as_string());
    EXPECT_EQ(h.at("fixed"), Value(5));
    double m = h.at("nested")["m"].as_number();
    EXPECT_GE(m, 0.8);
    EXPECT_LT(m, 0.99);
    EXPECT_EQ(c.seed, TrialSeed(1234, c.request_id));
    EXPECT_LT(c.seed, uint64_t{1} << 32);
    seeds.insert(c.seed);
  }
  // Inclusive int bounds and every category are reached in 40 draws.
  EXPECT_EQ(ns, (std::set<int64_t>{-2, -1, 0, 1, 2}));
  EXPECT_EQ(opts, (std::set<std::string>{"sgd", "adam", "rmsprop"}));
  EXPECT_EQ(seeds.size(), 40u);

  // Same seed: same trials. Another seed: other trials.
  EXPECT_EQ(RunRandom(kRandom), a);
  std::string other = kRandom;
  other.replace(other.find("1234"), 4, "4321");
  std::vector<Create> b = RunRandom(other);
  EXPECT_NE(b[0].hparams, a[0].hparams);
}

TEST(RandomSearchTest, InvalidTrialsAreReplacedAndNotCounted) {
  ExperimentConfig cfg = MustParse(Searcher(R"(  name: random
  max_length: {batches: 10}
  max_trials: 3
  max_concurrent_trials: 0
hyperparameters:
  x: {type: double, minval: 0, maxval: 1}
)"));
  Driver d(MustCreate(cfg), 3);
  EXPECT_THAT(CreatedIds(d.Start()), ElementsAre(1, 2, 3));
  EXPECT_THAT(CreatedIds(d.Exited(2, ExitedReason::kInvalidHP)),
              ElementsAre(4));
  EXPECT_THAT(CreatedIds(d.Exited(1, ExitedReason::kErrored)), IsEmpty());
  EXPECT_THAT(CreatedIds(d.Closed(3)), IsEmpty());
  bool failure = true;
  EXPECT_TRUE(HasShutdown(d.Closed(4), &failure));
  EXPECT_FALSE(failure);
}

TEST(RandomSearchTest, AllConstSpaceDoesNotRetryInvalidValues) {
  ExperimentConfig cfg = MustParse(
      Searcher("  name: random\n  max_length: {batches: 10}\n  max_trials: 3\n"
               "  max_concurrent_trials: 1\nhyperparameters: {lr: 5}\n"));
  Driver d(MustCreate(cfg), 1);
  d.Start();
  EXPECT_THAT(CreatedIds(d.Exited(1, ExitedReason::kInvalidHP)),
              ElementsAre(2));
  EXPECT_THAT(CreatedIds(d.Exited(2, ExitedReason::kInvalidHP)),
              ElementsAre(3));
  EXPECT_TRUE(HasShutdown(d.Exited(3, ExitedReason::kInvalidHP)));
  EXPECT_EQ(d.created(), 3);
}

TEST(RandomSearchTest, EveryTrialFailingIsAFailure) {
  ExperimentConfig cfg = MustParse(Searcher(
      "  name: random\n  max_length: {batches: 10}\n  max_trials: 2\n"));
  Driver d(MustCreate(cfg), 2);
  d.Start();
  d.Exited(1, ExitedReason::kErrored);
  bool failure = false;
  EXPECT_TRUE(HasShutdown(d.Exited(2, ExitedReason::kErrored), &failure));
  EXPECT_TRUE(failure);
}

TEST(RandomSearchTest, AlwaysInvalidSpaceGivesUpInsteadOfLoopingForever) {
  ExperimentConfig cfg = MustParse(
      Searcher("  name: random\n  max_length: {batches: 10}\n  max_trials: 2\n"
               "hyperparameters: {x: {type: int, minval: 0, maxval: 9}}\n"));
  Driver d(MustCreate(cfg), 2);
  d.Start();
  for (int step = 0; step < 1000 && !d.shut_down(); ++step) {
    d.Exited(d.Live().front(), ExitedReason::kInvalidHP);
  }
  EXPECT_TRUE(d.shut_down());
  EXPECT_TRUE(d.failure());
  EXPECT_EQ(d.created(), 10 * 2 + 10 + 1);  // the cap, plus the last live one
}

// det trial kill: the killed trial counts as one of max_trials, is no
// failure, and the search goes on (as Determined's random search).
TEST(RandomSearchTest, UserCanceledTrialEndsAndTheSearchGoesOn) {
  ExperimentConfig cfg = MustParse(
      Searcher("  name: random\n  max_length: {batches: 10}\n  max_trials: 3\n"
               "  max_concurrent_trials: 2\n"));
  Driver d(MustCreate(cfg), 2);
  d.Start();
  EXPECT_THAT(CreatedIds(d.Exited(1, ExitedReason::kUserCanceled)),
              ElementsAre(3));
  EXPECT_THAT(CreatedIds(d.Exited(2, ExitedReason::kUserCanceled)), IsEmpty());
  bool failure = true;
  EXPECT_TRUE(HasShutdown(d.Exited(3, ExitedReason::kUserCanceled), &failure));
  EXPECT_FALSE(failure);
  EXPECT_EQ(d.created(), 3);
}

TEST(RandomSearchTest, DuplicateAndLateEventsAreIgnored) {
  ExperimentConfig cfg = MustParse(
      Searcher("  name: random\n  max_length: {batches: 10}\n  max_trials: 2\n"
               "  max_concurrent_trials: 1\n"));
  auto m = MustCreate(cfg);
  m->InitialOperations();
  EXPECT_THAT(CreatedIds(m->TrialClosed(1)), ElementsAre(2));
  EXPECT_THAT(m->TrialClosed(1), IsEmpty());
  EXPECT_THAT(m->TrialExitedEarly(1, ExitedReason::kErrored), IsEmpty());
  EXPECT_THAT(m->ValidationCompleted(1, 0.1, 10), IsEmpty());
  EXPECT_THAT(m->ValidationCompleted(99, 0.1, 10), IsEmpty());
  EXPECT_THAT(m->TrialClosed(99), IsEmpty());
  EXPECT_TRUE(HasShutdown(m->TrialClosed(2)));
  EXPECT_THAT(m->TrialClosed(2), IsEmpty());
}

// ---- adaptive ASHA ------------------------------------------------------

TEST(AshaBracketsTest, WorkedExampleFromTheDesign) {
  ExperimentConfig cfg =
      MustParse(Searcher("  name: adaptive_asha\n  max_length: {batches: 937}\n"
                         "  max_trials: 16\n"));
  std::vector<AshaBracket> b = PlanAshaBrackets(cfg.searcher);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].num_rungs, 3);
  EXPECT_EQ(b[1].num_rungs, 2);
  EXPECT_EQ(b[0].max_trials, 12);
  EXPECT_EQ(b[1].max_trials, 4);
  EXPECT_EQ(b[0].max_concurrent_trials, 8);
  EXPECT_EQ(b[1].max_concurrent_trials, 8);
  EXPECT_THAT(b[0].rung_lengths, ElementsAre(58, 234, 937));
  EXPECT_THAT(b[1].rung_lengths, ElementsAre(234, 937));

  // The searcher starts min(concurrency, trials) per bracket, each told to
  // validate at its bracket's lower rungs.
  Driver d(MustCreate(cfg), 16);
  Operations ops = d.Start();
  std::vector<RequestId> ids = CreatedIds(ops);
  ASSERT_EQ(ids.size(), 12u);  // 8 + min(8, 4)
  for (RequestId id : ids) {
    const ValidateAfter& v = d.trials().at(id).validate;
    EXPECT_EQ(v.length, 937);
    if (id <= 8) {
      EXPECT_THAT(v.validation_points, ElementsAre(58, 234)) << id;
    } else {
      EXPECT_THAT(v.validation_points, ElementsAre(234)) << id;
    }
  }
}

SearcherConfig Asha(int64_t max_trials, int64_t max_length, double divisor,
                    AshaMode mode, int64_t max_concurrent = 16) {
  SearcherConfig s;
  s.name = SearcherName::kAdaptiveAsha;
  s.max_trials = max_trials;
  s.max_length = Length{Unit::kBatches, max_length};
  s.divisor = divisor;
  s.mode = mode;
  s.max_concurrent_trials = max_concurrent;
  return s;
}

std::vector<int> RungCounts(const SearcherConfig& s) {
  std::vector<int> n;
  for (const AshaBracket& b : PlanAshaBrackets(s)) n.push_back(b.num_rungs);
  return n;
}

TEST(AshaBracketsTest, ModesAndOverrides) {
  // maxRungs = min(5, floor(log4 10000)+1 = 7, floor(log4 1000)+1 = 5) = 5.
  EXPECT_THAT(RungCounts(Asha(1000, 10000, 4, AshaMode::kStandard)),
              ElementsAre(5, 4, 3));
  EXPECT_THAT(RungCounts(Asha(1000, 10000, 4, AshaMode::kAggressive)),
              ElementsAre(5));
  EXPECT_THAT(RungCounts(Asha(1000, 10000, 4, AshaMode::kConservative)),
              ElementsAre(5, 4, 3, 2, 1));
  // Limited by max_length: floor(log4 15)+1 = 2.
  EXPECT_THAT(RungCounts(Asha(1000, 15, 4, AshaMode::kConservative)),
              ElementsAre(2, 1));
  // Exact integer powers: log10(1000) is 3, not 2.9999999999999996.
  EXPECT_EQ(FloorLog(10, 1000, 10), 3);
  EXPECT_EQ(FloorLog(4, 16, 10), 2);
  EXPECT_EQ(FloorLog(4, 15, 10), 1);
  EXPECT_EQ(FloorLog(2, 1, 10), 0);
  SearcherConfig s = Asha(100, 1000, 3, AshaMode::kStandard);
  s.bracket_rungs = {2, 4};
  EXPECT_THAT(RungCounts(s), ElementsAre(4, 2));
  // Rung lengths never drop below 1 unit.
  EXPECT_THAT(
      PlanAshaBrackets(Asha(16, 2, 4, AshaMode::kAggressive))[0].rung_lengths,
      ElementsAre(2));
  s = Asha(64, 10, 2, AshaMode::kAggressive);
  EXPECT_THAT(PlanAshaBrackets(s)[0].rung_lengths, ElementsAre(1, 2, 5, 10));
}

TEST(AshaBracketsTest, TrialsAndConcurrencySplit) {
  std::vector<AshaBracket> b =
      PlanAshaBrackets(Asha(1000, 10000, 4, AshaMode::kStandard, 10));
  // Weights 4^4/5 = 51.2, 4^3/4 = 16, 4^2/3 = 5.33: 705, 220, 73, and the
  // 2 left over to the first.
  ASSERT_EQ(b.size(), 3u);
  EXPECT_EQ(b[0].max_trials, 707);
  EXPECT_EQ(b[1].max_trials, 220);
  EXPECT_EQ(b[2].max_trials, 73);
  EXPECT_EQ(b[0].max_concurrent_trials, 4);
  EXPECT_EQ(b[1].max_concurrent_trials, 3);
  EXPECT_EQ(b[2].max_concurrent_trials, 3);
  // Fewer than the brackets: one each, and a note.
  std::vector<std::string> notes;
  b = PlanAshaBrackets(Asha(1000, 10000, 4, AshaMode::kStandard, 2), &notes);
  EXPECT_EQ(b[2].max_concurrent_trials, 1);
  EXPECT_EQ(notes.size(), 1u);
  // 0: Determined's default, max(trials of the last bracket, divisor).
  b = PlanAshaBrackets(Asha(1000, 10000, 4, AshaMode::kStandard, 0));
  EXPECT_EQ(b[0].max_concurrent_trials, 73);
  // More brackets than trials: the least aggressive are dropped.
  notes.clear();
  SearcherConfig s = Asha(2, 100, 4, AshaMode::kStandard);
  s.bracket_rungs = {1, 2, 3};
  b = PlanAshaBrackets(s, &notes);
  ASSERT_EQ(b.size(), 2u);
  EXPECT_EQ(b[0].num_rungs, 3);
  EXPECT_EQ(b[0].max_trials + b[1].max_trials, 2);
  EXPECT_EQ(notes.size(), 1u);
}

// aggressive, divisor 2, max_length 4, 4 trials: one bracket, rungs 1, 2, 4.
ExperimentConfig SmallAsha(bool smaller_is_better = true) {
  return MustParse(absl::StrCat(R"(searcher:
  name: adaptive_asha
  metric: validation_loss
  smaller_is_better: )",
                                smaller_is_better ? "true" : "false", R"(
  max_length: {batches: 4}
  max_trials: 4
  divisor: 2
  mode: aggressive
  max_concurrent_trials: 4
hyperparameters:
  lr: {type: log, minval: -4, maxval: -1}
)"));
}

TEST(AshaSearchTest, TopFractionContinuesOthersStop) {
  Driver d(MustCreate(SmallAsha()), 4);
  Operations ops = d.Start();
  ASSERT_THAT(CreatedIds(ops), ElementsAre(1, 2, 3, 4));
  EXPECT_THAT(d.trials().at(1).validate.validation_points, ElementsAre(1, 2));
  // Rung 0 (length 1): k=1 keeps 1.
  EXPECT_THAT(d.Validate(1, 0.5, 1), IsEmpty());
  // k=2 keeps 1: 0.7 ranks second.
  EXPECT_THAT(ClosedIds(d.Validate(2, 0.7, 1)), ElementsAre(2));
  // k=3 keeps 1: 0.3 is the best.
  EXPECT_THAT(d.Validate(3, 0.3, 1), IsEmpty());
  // k=4 keeps 2: 0.6 ranks third.
  EXPECT_THAT(ClosedIds(d.Validate(4, 0.6, 1)), ElementsAre(4));
  // Ended trials make no new ones: max_trials (4) were created.
  EXPECT_THAT(CreatedIds(d.Closed(2)), IsEmpty());
  EXPECT_THAT(CreatedIds(d.Closed(4)), IsEmpty());
  // Rung 1 (length 2): trial 1 first, continues; trial 3 better, continues.
  EXPECT_THAT(d.Validate(1, 0.4, 2), IsEmpty());
  EXPECT_THAT(d.Validate(3, 0.2, 2), IsEmpty());
  // A validation between rungs changes nothing.
  EXPECT_THAT(d.Validate(3, 0.1, 3), IsEmpty());
  // Top rung: done, no Close (the trial finishes its length by itself).
  EXPECT_THAT(d.Validate(3, 0.1, 4), IsEmpty());
  EXPECT_THAT(d.Validate(1, 0.9, 4), IsEmpty());
  EXPECT_FALSE(HasShutdown(d.Closed(3)));
  EXPECT_TRUE(HasShutdown(d.Closed(1)));
}

TEST(AshaSearchTest, LargerIsBetterFlipsTheRanking) {
  Driver d(MustCreate(SmallAsha(/*smaller_is_better=*/false)), 4);
  d.Start();
  EXPECT_THAT(d.Validate(1, 0.5, 1), IsEmpty());
  EXPECT_THAT(d.Validate(2, 0.7, 1), IsEmpty()) << "0.7 > 0.5 is better";
  EXPECT_THAT(ClosedIds(d.Validate(3, 0.1, 1)), ElementsAre(3));
}

TEST(AshaSearchTest, OneValidationCanCoverSeveralRungs) {
  Driver d(MustCreate(SmallAsha()), 4);
  d.Start();
  d.Validate(1, 0.1, 1);
  d.Validate(1, 0.1, 2);
  // Trial 2 validates first at length 2: it enters rung 0 (k=2, rank 1:
  // stopped) and goes no further.
  EXPECT_THAT(ClosedIds(d.Validate(2, 0.5, 2)), ElementsAre(2));
  // Trial 3 jumps to the top at once, best everywhere: done.
  EXPECT_THAT(d.Validate(3, 0.01, 4), IsEmpty());
}

TEST(AshaSearchTest, ErroredTrialCountsAsTheWorstInItsRung) {
  Driver d(MustCreate(SmallAsha()), 4);
  d.Start();
  d.Validate(1, 0.5, 1);                // rung 0: [0.5]
  d.Exited(2, ExitedReason::kErrored);  // rung 0: [0.5, worst]
  // k=3 keeps 1: 0.6 ranks second.
  EXPECT_THAT(ClosedIds(d.Validate(3, 0.6, 1)), ElementsAre(3));
  // k=4 keeps 2: 0.55 ranks second of [0.5, 0.55, 0.6, worst].
  EXPECT_THAT(d.Validate(4, 0.55, 1), IsEmpty());
}

TEST(AshaSearchTest, ErroredEntriesRaiseTheNumberThatContinues) {
  // divisor 2: with two failures in rung 0, k=3 keeps 1, k=4 keeps 2.
  Driver d(MustCreate(SmallAsha()), 4);
  d.Start();
  d.Exited(1, ExitedReason::kErrored);
  d.Exited(2, ExitedReason::kErrored);
  EXPECT_THAT(d.Validate(3, 0.9, 1), IsEmpty()) << "rank 0 of 3";
  EXPECT_THAT(d.Validate(4, 0.95, 1), IsEmpty()) << "rank 1 of 4 keeps 2";
}

TEST(AshaSearchTest, InvalidTrialIsForgottenAndReplaced) {
  Driver d(MustCreate(SmallAsha()), 4);
  d.Start();
  d.Validate(1, 0.1, 1);
  EXPECT_THAT(CreatedIds(d.Exited(1, ExitedReason::kInvalidHP)),
              ElementsAre(5));
  // Rung 0 is empty again: 0.5 is first.
  EXPECT_THAT(d.Validate(2, 0.5, 1), IsEmpty());
}

TEST(AshaSearchTest, ReplacementsKeepMaxTrialsPerBracket) {
  ExperimentConfig cfg = MustParse(Searcher(R"(  name: adaptive_asha
  max_length: {batches: 16}
  max_trials: 6
  divisor: 2
  mode: aggressive
  max_concurrent_trials: 2
)"));
  Driver d(MustCreate(cfg), 2);
  EXPECT_THAT(CreatedIds(d.Start()), ElementsAre(1, 2));
  // Rungs 4, 8, 16.
  EXPECT_THAT(d.Validate(1, 0.1, 4), IsEmpty());
  EXPECT_THAT(ClosedIds(d.Validate(2, 0.2, 4)), ElementsAre(2));
  // The stopped trial's slot goes to a new trial once it has closed.
  EXPECT_THAT(CreatedIds(d.Closed(2)), ElementsAre(3));
}

}  // namespace
}  // namespace det::searcher
