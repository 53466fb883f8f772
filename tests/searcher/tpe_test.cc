// The TPE sampler: the estimator's numerics and rules (tpe.h), the config
// fields, and searches with `sampler: tpe` fed by hand: reproducible, carried
// through snapshots at every event, and better than random on a synthetic
// objective.
#include "master/searcher/tpe.h"

#include <cmath>
#include <functional>
#include <random>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "master/searcher/hparam_sampler.h"
#include "master/searcher/searcher.h"
#include "tests/searcher/search_driver.h"

namespace det::searcher {
namespace {

using ::testing::HasSubstr;
using testing::MustCreate;
using testing::MustParse;
using tpe::Dimension;
using tpe::Observation;

// ---- truncated normal ----------------------------------------------------

double Phi(double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); }

TEST(TruncNormTest, LogNdtrMatchesTheCdfAndItsTails) {
  for (double a : {-15.0, -5.0, -1.0, 0.0, 0.5, 3.0, 5.9}) {
    EXPECT_NEAR(tpe::internal::LogNdtr(a), std::log(Phi(a)), 1e-12) << a;
  }
  // Past the series switch it keeps agreeing with erfc (still accurate at
  // -25) and stays finite far beyond.
  EXPECT_NEAR(tpe::internal::LogNdtr(-25), std::log(Phi(-25)), 1e-9);
  EXPECT_TRUE(std::isfinite(tpe::internal::LogNdtr(-200)));
  EXPECT_NEAR(tpe::internal::LogNdtr(-200), -0.5 * 200 * 200, 10);
  EXPECT_NEAR(tpe::internal::LogNdtr(8), -Phi(-8), 1e-20);
}

TEST(TruncNormTest, MassOfAnIntervalInEveryRegion) {
  EXPECT_NEAR(std::exp(tpe::internal::LogGaussMass(-1, 1)), Phi(1) - Phi(-1),
              1e-14);
  EXPECT_NEAR(std::exp(tpe::internal::LogGaussMass(-3, -2)), Phi(-2) - Phi(-3),
              1e-14);
  EXPECT_NEAR(std::exp(tpe::internal::LogGaussMass(2, 3)), Phi(-2) - Phi(-3),
              1e-14);
  // Far out in a tail, where 1 - Phi would round to 0.
  double far = tpe::internal::LogGaussMass(40, 41);
  EXPECT_TRUE(std::isfinite(far));
  EXPECT_NEAR(far, tpe::internal::LogGaussMass(-41, -40), 1e-12);
  EXPECT_EQ(tpe::internal::LogGaussMass(1, 1), -INFINITY);
}

TEST(TruncNormTest, PpfInvertsTheTruncatedCdf) {
  const std::vector<std::pair<double, double>> bounds = {
      {-1, 1}, {-3, 100}, {-100, 2}, {0.5, 4}, {30, 31}, {-31, -30}, {-0.1, 0}};
  for (auto [a, b] : bounds) {
    const double mass = std::exp(tpe::internal::LogGaussMass(a, b));
    double previous = a;
    for (double q : {1e-9, 0.01, 0.2, 0.5, 0.8, 0.99, 1 - 1e-9}) {
      double x = tpe::internal::TruncNormPpf(q, a, b);
      SCOPED_TRACE(absl::StrCat("a=", a, " b=", b, " q=", q, " x=", x));
      ASSERT_GE(x, a);
      ASSERT_LE(x, b);
      EXPECT_GE(x, previous);  // monotone
      previous = x;
      // The mass in [a, x] relative to [a, b], computed the stable way.
      double got = std::exp(tpe::internal::LogGaussMass(a, x)) / mass;
      EXPECT_NEAR(got, q, 1e-6 * std::max(1.0, q / (1 - q)));
    }
    EXPECT_EQ(tpe::internal::TruncNormPpf(0, a, b), a);
    EXPECT_EQ(tpe::internal::TruncNormPpf(1, a, b), b);
  }
}

// ---- Optuna's rules ------------------------------------------------------

TEST(TpeRulesTest, GammaAsOptunasDefault) {
  TpeConfig c;
  EXPECT_EQ(tpe::NumBelow(c, 0), 0);
  EXPECT_EQ(tpe::NumBelow(c, 1), 1);
  EXPECT_EQ(tpe::NumBelow(c, 10), 1);
  EXPECT_EQ(tpe::NumBelow(c, 11), 2);
  EXPECT_EQ(tpe::NumBelow(c, 30), 3);
  EXPECT_EQ(tpe::NumBelow(c, 240), 24);
  EXPECT_EQ(tpe::NumBelow(c, 10000), 25);
  c.gamma = 0.25;
  c.gamma_max = 3;
  EXPECT_EQ(tpe::NumBelow(c, 8), 2);
  EXPECT_EQ(tpe::NumBelow(c, 100), 3);
}

TEST(TpeRulesTest, DefaultWeightsRampTheOldest) {
  EXPECT_TRUE(tpe::DefaultWeights(0).empty());
  EXPECT_THAT(tpe::DefaultWeights(3), ::testing::ElementsAre(1, 1, 1));
  EXPECT_EQ(tpe::DefaultWeights(25), std::vector<double>(25, 1.0));
  std::vector<double> w = tpe::DefaultWeights(30);
  ASSERT_EQ(w.size(), 30u);
  EXPECT_DOUBLE_EQ(w[0], 1.0 / 30);  // linspace(1/30, 1, 5)
  EXPECT_DOUBLE_EQ(w[4], 1.0);
  EXPECT_DOUBLE_EQ(w[2], (1.0 / 30 + 1.0) / 2);
  for (size_t i = 5; i < 30; ++i) EXPECT_EQ(w[i], 1.0);
  EXPECT_EQ(tpe::DefaultWeights(26)[0], 1.0 / 26);
}

// The estimators, computed here from Optuna's rules by hand.
double TruncatedDensity(double x, double mu, double sigma, double lo,
                        double hi) {
  double z = (x - mu) / sigma;
  double mass = Phi((hi - mu) / sigma) - Phi((lo - mu) / sigma);
  return std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI) / sigma / mass;
}

TEST(TpeRulesTest, ContinuousEstimatorAsOptunaBuildsIt) {
  Dimension d{Dimension::Kind::kContinuous, 0, 1, 0, 0};
  TpeConfig c;
  // Two results, 0.2 and 0.5: sorted with the ends [0, .2, .5, 1]; the
  // outer kernels take their inner gap (consider_endpoints false): 0.3 and
  // 0.3, above the magic clip 1/min(100, 2+2) = 0.25. The prior: centre
  // 0.5, bandwidth 1. Weights 1, 1 and prior_weight 1, normalised.
  for (double x : {0.0, 0.1, 0.35, 0.9}) {
    double want = (TruncatedDensity(x, 0.2, 0.3, 0, 1) +
                   TruncatedDensity(x, 0.5, 0.3, 0, 1) +
                   TruncatedDensity(x, 0.5, 1.0, 0, 1)) /
                  3;
    EXPECT_NEAR(tpe::internal::ParzenLogPdf(d, {0.2, 0.5}, c, x),
                std::log(want), 1e-12)
        << x;
  }
  // The magic clip: 0.5 and 0.52 would get 0.02; clipped to 0.25.
  double want = (TruncatedDensity(0.3, 0.5, 0.25, 0, 1) +
                 TruncatedDensity(0.3, 0.52, 0.25, 0, 1) +
                 TruncatedDensity(0.3, 0.5, 1.0, 0, 1)) /
                3;
  EXPECT_NEAR(tpe::internal::ParzenLogPdf(d, {0.5, 0.52}, c, 0.3),
              std::log(want), 1e-12);
  // One result: the larger gap to the ends; prior_weight 2 weighs the
  // prior double.
  c.prior_weight = 2;
  want = (TruncatedDensity(0.7, 0.3, 0.7, 0, 1) +
          2 * TruncatedDensity(0.7, 0.5, 1.0, 0, 1)) /
         3;
  EXPECT_NEAR(tpe::internal::ParzenLogPdf(d, {0.3}, c, 0.7), std::log(want),
              1e-12);
  // No result: the prior alone.
  EXPECT_NEAR(tpe::internal::ParzenLogPdf(d, {}, c, 0.7),
              std::log(TruncatedDensity(0.7, 0.5, 1.0, 0, 1)), 1e-12);
}

TEST(TpeRulesTest, IntegerAndCategoricalEstimatorsAsOptunaBuildsThem) {
  // Integers 1..4 on [0.5, 4.5]: results 2 and 3, sorted with the ends
  // [.5, 2, 3, 4.5]: inner gaps 1 and 1, clip 4/4 = 1. A value's
  // probability is its kernel's mass on [v - .5, v + .5].
  Dimension ints{Dimension::Kind::kInteger, 1, 4, 0, 0};
  auto mass = [](double v, double mu, double sigma) {
    return (Phi((v + 0.5 - mu) / sigma) - Phi((v - 0.5 - mu) / sigma)) /
           (Phi((4.5 - mu) / sigma) - Phi((0.5 - mu) / sigma));
  };
  for (double v : {1.0, 2.0, 4.0}) {
    double want = (mass(v, 2, 1) + mass(v, 3, 1) + mass(v, 2.5, 4)) / 3;
    EXPECT_NEAR(tpe::internal::ParzenLogPdf(ints, {2, 3}, TpeConfig{}, v),
                std::log(want), 1e-12)
        << v;
  }
  // Categorical, 3 choices, results 0, 0, 2: each result's row is 1 on its
  // choice plus 1/4 (prior_weight / (n + 1)) everywhere, normalised; the
  // prior's row uniform; the four rows weigh alike.
  Dimension cat{Dimension::Kind::kCategorical, 0, 0, 3, 0};
  const double hit = 1.25 / 1.75, miss = 0.25 / 1.75;
  EXPECT_NEAR(tpe::internal::ParzenLogPdf(cat, {0, 0, 2}, TpeConfig{}, 0),
              std::log((2 * hit + miss + 1.0 / 3) / 4), 1e-12);
  EXPECT_NEAR(tpe::internal::ParzenLogPdf(cat, {0, 0, 2}, TpeConfig{}, 1),
              std::log((3 * miss + 1.0 / 3) / 4), 1e-12);
}

std::vector<Dimension> MixedDims() {
  Dimension cont{Dimension::Kind::kContinuous, -4, -1, 0, 11};
  Dimension integer{Dimension::Kind::kInteger, 1, 6, 0, 22};
  Dimension cat{Dimension::Kind::kCategorical, 0, 0, 3, 33};
  return {cont, integer, cat};
}

double MixedObjective(const std::vector<double>& x) {
  return std::pow(x[0] + 3, 2) + 0.1 * std::fabs(x[1] - 2) +
         (x[2] == 1 ? 0 : 1);
}

// Random results of MixedObjective.
std::vector<Observation> MixedResults(int n, uint64_t seed) {
  std::vector<Observation> out;
  SplitMix64 rng(seed);
  for (int i = 0; i < n; ++i) {
    Observation o;
    o.x = std::vector<double>{-4 + 3 * rng.Uniform(),
                              static_cast<double>(1 + rng.Below(6)),
                              static_cast<double>(rng.Below(3))};
    o.value = MixedObjective(o.x);
    o.order = i + 1;
    out.push_back(o);
  }
  return out;
}

TEST(TpeSuggestTest, PointsHaveTheDimensionsTypesAndRanges) {
  std::vector<Dimension> dims = MixedDims();
  for (bool multivariate : {false, true}) {
    TpeConfig c;
    c.multivariate = multivariate;
    for (int n : {0, 1, 2, 5, 40}) {
      std::vector<Observation> obs = MixedResults(n, 5);
      for (uint64_t seed = 0; seed < 30; ++seed) {
        std::vector<double> p = tpe::Suggest(dims, obs, {}, c, seed);
        ASSERT_EQ(p.size(), 3u);
        EXPECT_GE(p[0], -4);
        EXPECT_LE(p[0], -1);
        EXPECT_EQ(p[1], std::round(p[1]));
        EXPECT_GE(p[1], 1);
        EXPECT_LE(p[1], 6);
        EXPECT_EQ(p[2], std::round(p[2]));
        EXPECT_GE(p[2], 0);
        EXPECT_LE(p[2], 2);
      }
    }
  }
}

TEST(TpeSuggestTest, SameInputsSameSuggestionOtherSeedsOtherOnes) {
  std::vector<Dimension> dims = MixedDims();
  std::vector<Observation> obs = MixedResults(20, 9);
  TpeConfig c;
  std::set<double> firsts;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::vector<double> a = tpe::Suggest(dims, obs, {}, c, seed);
    EXPECT_EQ(a, tpe::Suggest(dims, obs, {}, c, seed));
    firsts.insert(a[0]);
  }
  EXPECT_GT(firsts.size(), 15u);
}

TEST(TpeSuggestTest, SuggestionsScoreBetterThanUniformDraws) {
  // 40 results of an objective with its minimum at (-3, 2, category 1):
  // suggestions must score far better on it than uniform draws.
  std::vector<Dimension> dims = MixedDims();
  std::vector<Observation> obs = MixedResults(40, 3);
  SplitMix64 uniform(77);
  double uniform_sum = 0;
  const int kDraws = 200;
  for (int i = 0; i < kDraws; ++i) {
    uniform_sum += MixedObjective({-4 + 3 * uniform.Uniform(),
                                   static_cast<double>(1 + uniform.Below(6)),
                                   static_cast<double>(uniform.Below(3))});
  }
  for (bool multivariate : {false, true}) {
    TpeConfig c;
    c.multivariate = multivariate;
    double sum = 0;
    for (int seed = 0; seed < kDraws; ++seed) {
      sum += MixedObjective(tpe::Suggest(dims, obs, {}, c, seed));
    }
    EXPECT_LT(sum, 0.5 * uniform_sum) << multivariate;
  }
}

TEST(TpeSuggestTest, ConstantLiarSteersAwayFromRunningTrials) {
  // One dimension; good results on both sides; a crowd of running trials
  // at the right one: with constant_liar the left side wins more often.
  std::vector<Dimension> dims = {{Dimension::Kind::kContinuous, 0, 1, 0, 1}};
  std::vector<Observation> obs;
  for (int i = 0; i < 20; ++i) {
    double x = (i + 0.5) / 20;
    obs.push_back({{x}, std::min(std::fabs(x - 0.2), std::fabs(x - 0.8)), i});
  }
  std::vector<Observation> running;
  for (int i = 0; i < 15; ++i)
    running.push_back({{0.8 + 0.001 * i}, 0, 100 + i});
  auto left_share = [&](bool liar) {
    TpeConfig c;
    c.constant_liar = liar;
    int left = 0;
    for (int seed = 0; seed < 200; ++seed) {
      if (tpe::Suggest(dims, obs, running, c, seed)[0] < 0.5) ++left;
    }
    return left;
  };
  EXPECT_GT(left_share(true), left_share(false) + 40);
}

TEST(TpeSuggestTest, DegenerateDimensionsTakeTheirOnlyValue) {
  std::vector<Dimension> dims = {{Dimension::Kind::kContinuous, 2, 2, 0, 1},
                                 {Dimension::Kind::kInteger, 5, 5, 0, 2},
                                 {Dimension::Kind::kCategorical, 0, 0, 1, 3}};
  std::vector<Observation> obs = {{{2, 5, 0}, 1, 1}, {{2, 5, 0}, 0, 2}};
  EXPECT_EQ(tpe::Suggest(dims, obs, {}, TpeConfig{}, 1),
            (std::vector<double>{2, 5, 0}));
}

// ---- duplicate avoidance -------------------------------------------------

// 3 x 3 x 2 = 18 points: two categorical dimensions and an integer one.
std::vector<Dimension> DiscreteDims() {
  return {{Dimension::Kind::kCategorical, 0, 0, 3, 11},
          {Dimension::Kind::kCategorical, 0, 0, 3, 12},
          {Dimension::Kind::kInteger, 1, 2, 0, 13}};
}

double DiscreteObjective(const std::vector<double>& x) {
  return (x[0] == 1 ? 0 : 1) + 0.5 * (x[1] == 2 ? 0 : 1) + 0.1 * x[2];
}

// Suggests `n` points in a row, each joining the tried points and the
// results (its objective), as a search would; the first 4 are given.
std::vector<std::vector<double>> SuggestInARow(const TpeConfig& c, int n,
                                               uint64_t seed) {
  std::vector<std::vector<double>> tried = {
      {0, 0, 1}, {1, 1, 2}, {2, 2, 1}, {0, 2, 2}};
  std::vector<Observation> obs;
  for (size_t i = 0; i < tried.size(); ++i) {
    obs.push_back(
        {tried[i], DiscreteObjective(tried[i]), static_cast<int64_t>(i + 1)});
  }
  for (int i = 0; i < n; ++i) {
    std::vector<double> p =
        tpe::Suggest(DiscreteDims(), obs, {}, tried, c, seed + i);
    obs.push_back({p, DiscreteObjective(p), static_cast<int64_t>(obs.size())});
    tried.push_back(p);
  }
  return tried;
}

TEST(TpeDuplicatesTest, NoRepeatUntilTheSpaceIsExhausted) {
  for (bool multivariate : {false, true}) {
    TpeConfig c;
    c.multivariate = multivariate;
    for (uint64_t seed : {1, 2, 3}) {
      std::vector<std::vector<double>> tried = SuggestInARow(c, 14, seed);
      std::set<std::vector<double>> distinct(tried.begin(), tried.end());
      EXPECT_EQ(distinct.size(), 18u) << multivariate << " " << seed;
      // Exhausted: the next one repeats, but is still a valid point.
      std::vector<double> p = tpe::Suggest(DiscreteDims(), {}, {}, tried, c, 9);
      EXPECT_EQ(distinct.count(p), 1u);
      // Deterministic: the same inputs, the same points.
      EXPECT_EQ(tried, SuggestInARow(c, 14, seed));
    }
  }
}

TEST(TpeDuplicatesTest, TheClassicSuggestionWhenItIsNew) {
  std::vector<Dimension> dims = DiscreteDims();
  std::vector<std::vector<double>> tried = {{0, 0, 1}, {1, 1, 2}, {2, 2, 1},
                                            {0, 2, 2}, {1, 0, 1}, {2, 1, 2}};
  std::vector<Observation> obs;
  for (size_t i = 0; i < tried.size(); ++i) {
    obs.push_back(
        {tried[i], DiscreteObjective(tried[i]), static_cast<int64_t>(i + 1)});
  }
  TpeConfig c;
  int replaced = 0;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    std::vector<double> classic = tpe::Suggest(dims, obs, {}, c, seed);
    std::vector<double> p = tpe::Suggest(dims, obs, {}, tried, c, seed);
    EXPECT_EQ(std::count(tried.begin(), tried.end(), p), 0) << seed;
    if (std::count(tried.begin(), tried.end(), classic) == 0) {
      EXPECT_EQ(p, classic) << seed;
    } else {
      ++replaced;
    }
    // Only the set of tried points matters, not its order.
    std::vector<std::vector<double>> reversed(tried.rbegin(), tried.rend());
    EXPECT_EQ(p, tpe::Suggest(dims, obs, {}, reversed, c, seed));
  }
  EXPECT_GT(replaced, 0);  // the estimator does pick tried points
}

TEST(TpeDuplicatesTest, RandomNewFindsTheLastPointOrNone) {
  std::vector<Dimension> dims = DiscreteDims();
  std::vector<std::vector<double>> all;
  for (double a = 0; a < 3; ++a)
    for (double b = 0; b < 3; ++b)
      for (double i = 1; i <= 2; ++i) all.push_back({a, b, i});
  std::vector<double> p;
  EXPECT_FALSE(tpe::RandomNew(dims, all, 5, &p));
  std::vector<std::vector<double>> but_one = all;
  but_one.erase(but_one.begin() + 7);
  for (uint64_t seed = 0; seed < 5; ++seed) {
    ASSERT_TRUE(tpe::RandomNew(dims, but_one, seed, &p));
    EXPECT_EQ(p, all[7]);
  }
  // A continuous dimension: always something new, in range.
  std::vector<Dimension> mixed = MixedDims();
  ASSERT_TRUE(tpe::RandomNew(mixed, {}, 3, &p));
  EXPECT_GE(p[0], -4);
  EXPECT_LE(p[0], -1);
}

// ---- config --------------------------------------------------------------

std::string TpeYaml(const std::string& searcher_extra,
                    const std::string& name = "adaptive_asha") {
  return absl::StrCat(
      "searcher:\n  name: ", name,
      "\n  metric: validation_loss\n  max_length: {batches: 64}\n"
      "  max_trials: 40\n",
      searcher_extra,
      "hyperparameters:\n"
      "  lr: {type: log, minval: -4, maxval: -1}\n"
      "  layers: {type: int, minval: 1, maxval: 6}\n"
      "  opt: {type: categorical, vals: [sgd, adam, rmsprop]}\n"
      "  aug: {flip: {type: categorical, vals: [true, false]},\n"
      "        crop: {type: double, minval: 0, maxval: 0.5}}\n"
      "  batch: 32\n");
}

std::string Errors(const std::string& yaml) {
  auto cfg = ParseExperimentConfig(yaml);
  return cfg.ok() ? "" : std::string(cfg.status().message());
}

TEST(TpeConfigTest, DefaultsAreOptunas) {
  ExperimentConfig cfg = MustParse(TpeYaml("  sampler: tpe\n"));
  EXPECT_EQ(cfg.searcher.sampler, SamplerName::kTpe);
  EXPECT_EQ(cfg.searcher.tpe.n_startup_trials, 10);
  EXPECT_EQ(cfg.searcher.tpe.n_ei_candidates, 24);
  EXPECT_EQ(cfg.searcher.tpe.gamma, 0.1);
  EXPECT_EQ(cfg.searcher.tpe.gamma_max, 25);
  EXPECT_EQ(cfg.searcher.tpe.prior_weight, 1.0);
  EXPECT_TRUE(cfg.searcher.tpe.consider_magic_clip);
  EXPECT_FALSE(cfg.searcher.tpe.consider_endpoints);
  EXPECT_FALSE(cfg.searcher.tpe.multivariate);
  EXPECT_FALSE(cfg.searcher.tpe.constant_liar);
  EXPECT_TRUE(cfg.searcher.tpe.avoid_duplicates);
  EXPECT_FALSE(MustParse(TpeYaml("  sampler: tpe\n  tpe: {avoid_duplicates: "
                                 "false}\n"))
                   .searcher.tpe.avoid_duplicates);
  EXPECT_EQ(MustParse(TpeYaml("")).searcher.sampler, SamplerName::kRandom);
  EXPECT_EQ(MustParse(TpeYaml("  sampler: random\n")).searcher.sampler,
            SamplerName::kRandom);
}

TEST(TpeConfigTest, ParametersAreRead) {
  ExperimentConfig cfg = MustParse(
      TpeYaml("  sampler: tpe\n  tpe: {n_startup_trials: 3, n_ei_candidates: "
              "50, gamma: 0.25, gamma_max: 10, prior_weight: 0.5,\n"
              "    consider_magic_clip: false, consider_endpoints: true,\n"
              "    multivariate: true, constant_liar: true}\n",
              "random"));
  const TpeConfig& t = cfg.searcher.tpe;
  EXPECT_EQ(t.n_startup_trials, 3);
  EXPECT_EQ(t.n_ei_candidates, 50);
  EXPECT_EQ(t.gamma, 0.25);
  EXPECT_EQ(t.gamma_max, 10);
  EXPECT_EQ(t.prior_weight, 0.5);
  EXPECT_FALSE(t.consider_magic_clip);
  EXPECT_TRUE(t.consider_endpoints);
  EXPECT_TRUE(t.multivariate);
  EXPECT_TRUE(t.constant_liar);
}

TEST(TpeConfigTest, BadValuesNameTheirField) {
  EXPECT_THAT(Errors(TpeYaml("  sampler: tpee\n")),
              HasSubstr("searcher.sampler: expected random or tpe, found "
                        "'tpee'; did you mean 'tpe'?"));
  EXPECT_THAT(Errors(TpeYaml("  sampler: 3\n")), HasSubstr("searcher.sampler"));
  EXPECT_THAT(Errors(TpeYaml("  sampler: tpe\n  tpe: {gamma: 2}\n")),
              HasSubstr("searcher.tpe.gamma: must be in (0, 1]"));
  EXPECT_THAT(Errors(TpeYaml("  sampler: tpe\n  tpe: {n_ei_candidates: 0}\n")),
              HasSubstr("searcher.tpe.n_ei_candidates"));
  EXPECT_THAT(
      Errors(TpeYaml("  sampler: tpe\n  tpe: {n_startup_trials: -1}\n")),
      HasSubstr("searcher.tpe.n_startup_trials"));
  EXPECT_THAT(Errors(TpeYaml("  sampler: tpe\n  tpe: {prior_weight: 0}\n")),
              HasSubstr("searcher.tpe.prior_weight: must be positive"));
  EXPECT_THAT(Errors(TpeYaml("  sampler: tpe\n  tpe: {multivariate: 1}\n")),
              HasSubstr("searcher.tpe.multivariate"));
  EXPECT_THAT(Errors(TpeYaml("  sampler: tpe\n  tpe: {n_startup: 3}\n")),
              HasSubstr("n_startup_trials"));
  EXPECT_THAT(Errors(TpeYaml("  sampler: tpe\n  tpe: [1]\n")),
              HasSubstr("searcher.tpe"));
  EXPECT_THAT(Errors(TpeYaml("  tpe: {gamma: 0.2}\n")),
              HasSubstr("searcher.tpe: applies only with 'sampler: tpe'"));
  // Only random and adaptive_asha sample by results.
  std::string grid =
      "searcher:\n  name: grid\n  metric: m\n  max_length: {batches: 4}\n"
      "  sampler: tpe\nhyperparameters:\n  x: {type: int, minval: 0, "
      "maxval: 3, count: 2}\n";
  EXPECT_THAT(Errors(grid),
              HasSubstr("searcher.sampler: 'sampler' does not apply to the "
                        "grid searcher"));
}

TEST(TpeConfigTest, WarnsWhenTheEstimatorWouldNeverBeUsed) {
  auto warnings = [](const std::string& yaml) {
    std::string out;
    // The searcher's only (these names are not the built-in trainer's).
    for (const ConfigError& w : MustParse(yaml).warnings) {
      if (w.path.rfind("searcher", 0) == 0) out += w.ToString() + "\n";
    }
    return out;
  };
  EXPECT_EQ(warnings(TpeYaml("  sampler: tpe\n")), "");
  EXPECT_THAT(warnings(TpeYaml("  sampler: tpe\n  tpe: {n_startup_trials: "
                               "40}\n")),
              HasSubstr("searcher.tpe.n_startup_trials: 40 is not below "
                        "max_trials (40): every trial is a random draw"));
  EXPECT_THAT(warnings("searcher:\n  name: random\n  metric: m\n  max_length: "
                       "{batches: 4}\n  max_trials: 20\n  sampler: tpe\n"
                       "hyperparameters: {x: 1, y: {type: const, val: 2}}\n"),
              HasSubstr("searcher.sampler: tpe has nothing to model: every "
                        "hyperparameter is const"));
}

// ---- searches ------------------------------------------------------------

// A scripted experiment loop: trials report at their rungs (all of them up
// to max_length when nothing stops them) with metric `objective(hparams)`,
// in a fixed order derived from `seed`. `on_event` runs before each event.
struct Script {
  std::function<double(const ValueMap&)> objective;
  uint64_t seed = 1;
};

double Quadratic(const ValueMap& h) {
  // Minimum at lr = 10^-2.5, layers = 3, opt = adam, crop = 0.25.
  double lr = std::log10(h.at("lr").as_number());
  double v = std::pow(lr + 2.5, 2) +
             0.05 * std::pow(h.at("layers").as_number() - 3, 2);
  if (h.at("opt").as_string() != "adam") v += 0.3;
  v += std::pow(h.at("aug").as_map().at("crop").as_number() - 0.25, 2);
  return v;
}

// Runs the whole search; returns the best final metric (at max_length) and
// fills `log` with every operation, in order. With `restore_every_event`, a
// fresh searcher restored from a snapshot replaces the old one before each
// event, and must give the operations the old one would have.
double RunScript(const ExperimentConfig& cfg, const Script& script,
                 std::vector<std::string>* log = nullptr,
                 bool restore_every_event = false) {
  std::unique_ptr<SearchMethod> s = MustCreate(cfg);
  std::mt19937_64 order(script.seed);
  std::map<RequestId, ValueMap> hparams;
  std::map<RequestId, std::vector<int64_t>> todo;  // remaining lengths
  std::vector<RequestId> live;
  double best = INFINITY;
  bool done = false;
  auto apply = [&](const Operations& ops) {
    for (const Operation& op : ops) {
      if (log != nullptr) log->push_back(ToString(op));
      if (auto* c = std::get_if<Create>(&op)) {
        hparams[c->request_id] = c->hparams;
        live.push_back(c->request_id);
        s->TrialCreated(c->request_id);
      } else if (auto* v = std::get_if<ValidateAfter>(&op)) {
        todo[v->request_id] = v->validation_points;
        todo[v->request_id].push_back(v->length);
      } else if (auto* cl = std::get_if<Close>(&op)) {
        todo[cl->request_id].clear();
      } else if (std::holds_alternative<Shutdown>(op)) {
        done = true;
      }
    }
  };
  // Before each event: a copy restored from a snapshot must answer it
  // exactly as the searcher does, and then replaces it.
  auto event = [&](const std::function<Operations(SearchMethod&)>& call) {
    if (!restore_every_event) return call(*s);
    std::unique_ptr<SearchMethod> copy = MustCreate(cfg);
    EXPECT_TRUE(copy->Restore(s->Snapshot()).ok());
    Operations want = call(*s);
    Operations got = call(*copy);
    EXPECT_EQ(got, want);
    EXPECT_EQ(copy->Snapshot(), s->Snapshot());
    s = std::move(copy);  // the rest of the search runs on restored copies
    return got;
  };
  apply(s->InitialOperations());
  for (int steps = 0; !done && steps < 100000 && !live.empty(); ++steps) {
    size_t i = order() % live.size();
    RequestId id = live[i];
    std::vector<int64_t>& rest = todo[id];
    if (rest.empty()) {
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(i));
      apply(event([&](SearchMethod& m) { return m.TrialClosed(id); }));
      continue;
    }
    int64_t length = rest.front();
    rest.erase(rest.begin());
    double metric = script.objective(hparams[id]);
    if (length == cfg.searcher.max_length.value) best = std::min(best, metric);
    apply(event([&](SearchMethod& m) {
      return m.ValidationCompleted(id, metric, length);
    }));
  }
  EXPECT_TRUE(done);
  return best;
}

TEST(TpeSearchTest, SameSeedAndResultsSameTrials) {
  ExperimentConfig cfg =
      MustParse(TpeYaml("  sampler: tpe\n  tpe: {n_startup_trials: 5}\n"
                        "reproducibility: {experiment_seed: 42}\n"));
  Script script{Quadratic, 3};
  std::vector<std::string> a, b;
  RunScript(cfg, script, &a);
  RunScript(cfg, script, &b);
  EXPECT_EQ(a, b);
  // Another experiment seed: other trials.
  cfg.experiment_seed = 43;
  std::vector<std::string> c;
  RunScript(cfg, script, &c);
  EXPECT_NE(a, c);
}

TEST(TpeSearchTest, RandomUntilEnoughResultsThenTpe) {
  // One trial at a time: trials 1-5 are the random sampler's draws, trial 6
  // on come from the estimator.
  std::string extra =
      "  max_concurrent_trials: 1\n  sampler: tpe\n  tpe: {n_startup_trials: "
      "5}\nreproducibility: {experiment_seed: 7}\n";
  ExperimentConfig tpe_cfg = MustParse(TpeYaml(extra, "random"));
  std::vector<std::string> log;
  RunScript(tpe_cfg, Script{Quadratic, 1}, &log);
  int creates = 0;
  for (const std::string& line : log) {
    if (line.rfind("Create{", 0) != 0) continue;
    ++creates;
    std::string random_draw = ToString(
        Create{creates, SampleHParams(tpe_cfg.hyperparameters, 7, creates),
               TrialSeed(7, creates)});
    if (creates <= 5) {
      EXPECT_EQ(line, random_draw) << creates;
    } else {
      EXPECT_NE(line, random_draw) << creates;
    }
  }
  EXPECT_EQ(creates, 40);
}

TEST(TpeSearchTest, RestoringAtEveryEventGivesTheSameNextOperations) {
  for (const char* name : {"random", "adaptive_asha"}) {
    for (const char* options :
         {"{n_startup_trials: 4}",
          "{n_startup_trials: 2, multivariate: true, constant_liar: true}"}) {
      SCOPED_TRACE(absl::StrCat(name, " ", options));
      ExperimentConfig cfg = MustParse(TpeYaml(
          absl::StrCat("  max_concurrent_trials: 3\n  sampler: tpe\n  tpe: ",
                       options, "\nreproducibility: {experiment_seed: 5}\n"),
          name));
      cfg.searcher.max_trials = 24;
      Script script{Quadratic, 11};
      std::vector<std::string> plain, restored;
      RunScript(cfg, script, &plain);
      RunScript(cfg, script, &restored, /*restore_every_event=*/true);
      EXPECT_EQ(plain, restored);
      EXPECT_GT(plain.size(), 48u);
    }
  }
}

TEST(TpeSearchTest, DiscreteSpaceNoRepeatUntilExhaustedAcrossRestores) {
  // 2 x 2 x 3 = 12 configurations, 12 trials, 3 at a time: every one is new
  // (running trials count as tried), restored at every event or not.
  const std::string yaml =
      "searcher:\n  name: NAME\n  metric: validation_loss\n"
      "  max_length: {batches: 64}\n  max_trials: 12\n"
      "  max_concurrent_trials: 3\n  sampler: tpe\n"
      "  tpe: {n_startup_trials: 3}\n"
      "reproducibility: {experiment_seed: 9}\n"
      "hyperparameters:\n"
      "  opt: {type: categorical, vals: [sgd, adam]}\n"
      "  flip: {type: categorical, vals: [true, false]}\n"
      "  layers: {type: int, minval: 1, maxval: 3}\n";
  auto objective = [](const ValueMap& h) {
    return (h.at("opt").as_string() == "adam" ? 0.0 : 1.0) +
           0.1 * h.at("layers").as_number();
  };
  for (const char* name : {"random", "adaptive_asha"}) {
    SCOPED_TRACE(name);
    std::string text = yaml;
    text.replace(text.find("NAME"), 4, name);
    ExperimentConfig cfg = MustParse(text);
    std::vector<std::string> plain, restored;
    RunScript(cfg, Script{objective, 4}, &plain);
    RunScript(cfg, Script{objective, 4}, &restored,
              /*restore_every_event=*/true);
    EXPECT_EQ(plain, restored);
    std::set<std::string> hparams;
    int creates = 0;
    for (const std::string& line : plain) {
      if (line.rfind("Create{", 0) != 0) continue;
      ++creates;
      size_t from = line.find("hparams=");
      ASSERT_NE(from, std::string::npos) << line;
      hparams.insert(line.substr(from));
    }
    EXPECT_EQ(creates, 12);
    EXPECT_EQ(hparams.size(), 12u);
  }
}

TEST(TpeSearchTest, SnapshotsOfAnotherSamplerAreRefused) {
  ExperimentConfig tpe_cfg = MustParse(TpeYaml("  sampler: tpe\n"));
  ExperimentConfig random_cfg = MustParse(TpeYaml(""));
  auto t = MustCreate(tpe_cfg);
  t->InitialOperations();
  auto r = MustCreate(random_cfg);
  r->InitialOperations();
  EXPECT_THAT(
      std::string(MustCreate(random_cfg)->Restore(t->Snapshot()).message()),
      HasSubstr("uses the tpe sampler, this config the random"));
  EXPECT_THAT(
      std::string(MustCreate(tpe_cfg)->Restore(r->Snapshot()).message()),
      HasSubstr("uses the random sampler, this config the tpe"));
  // A point out of its range is refused; the searcher is left as it was.
  std::string snap = t->Snapshot();
  size_t at = snap.find("\"tpe\":[[1,[\"");
  ASSERT_NE(at, std::string::npos);
  std::string bad = snap.substr(0, at) + "\"tpe\":[[1,[\"99\"" +
                    snap.substr(snap.find('"', at + 12) + 1);
  auto target = MustCreate(tpe_cfg);
  EXPECT_THAT(std::string(target->Restore(bad).message()),
              HasSubstr("out of its range"));
  EXPECT_EQ(target->Snapshot(), MustCreate(tpe_cfg)->Snapshot());
}

TEST(TpeSearchTest, TrialsThatDecideTheirLengthStillTeachTpe) {
  // No length: trials never reach the rung at max_length, their last
  // validation when they close is their result.
  ExperimentConfig cfg = MustParse(
      "entrypoint: python3 train.py\n"
      "searcher:\n  name: random\n  metric: loss\n  max_trials: 8\n"
      "  max_concurrent_trials: 1\n  sampler: tpe\n"
      "  tpe: {n_startup_trials: 2}\n"
      "reproducibility: {experiment_seed: 3}\n"
      "hyperparameters:\n  x: {type: double, minval: 0, maxval: 1}\n");
  ASSERT_TRUE(cfg.searcher.trial_decides_length);
  auto s = MustCreate(cfg);
  s->InitialOperations();
  for (RequestId id = 1; id <= 2; ++id) {
    EXPECT_TRUE(s->ValidationCompleted(id, 0.5 * id, 100).empty());
    Operations ops = s->TrialClosed(id);
    ASSERT_FALSE(ops.empty());
    const Create& c = std::get<Create>(ops[0]);
    ValueMap random_draw = SampleHParams(cfg.hyperparameters, 3, c.request_id);
    if (id == 1) {
      EXPECT_EQ(c.hparams, random_draw);  // one result: not enough
    } else {
      EXPECT_NE(c.hparams, random_draw);  // two: TPE
    }
  }
}

TEST(TpeSearchTest, FindsBetterValuesThanRandomOnAQuadratic) {
  // Same budget (40 trials, 4 at a time), same seeds, same objective: TPE's
  // best final metric beats random's in most seeds and on average.
  int wins = 0;
  double tpe_sum = 0, random_sum = 0;
  const int kSeeds = 12;
  for (const char* name : {"random", "adaptive_asha"}) {
    wins = 0;
    tpe_sum = random_sum = 0;
    for (int seed = 1; seed <= kSeeds; ++seed) {
      std::string seeding = absl::StrCat(
          "  max_concurrent_trials: 4\nreproducibility: {experiment_seed: ",
          seed, "}\n");
      ExperimentConfig random_cfg = MustParse(TpeYaml(seeding, name));
      ExperimentConfig tpe_cfg =
          MustParse(TpeYaml("  sampler: tpe\n" + seeding, name));
      Script script{Quadratic, static_cast<uint64_t>(seed)};
      double r = RunScript(random_cfg, script);
      double t = RunScript(tpe_cfg, script);
      if (t < r) ++wins;
      tpe_sum += t;
      random_sum += r;
    }
    SCOPED_TRACE(name);
    EXPECT_GE(wins, kSeeds * 2 / 3) << "tpe mean " << tpe_sum / kSeeds
                                    << ", random mean " << random_sum / kSeeds;
    EXPECT_LT(tpe_sum, 0.75 * random_sum);
  }
}

}  // namespace
}  // namespace det::searcher
