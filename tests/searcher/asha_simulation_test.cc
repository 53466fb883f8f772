// A simulated 1,000-trial adaptive ASHA search with random metrics, where
// every stop/continue decision is checked against an independent model of
// the rule: in a rung with k entries, the top max(floor(k/d), 1) continue.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "master/searcher/asha_brackets.h"
#include "tests/searcher/search_driver.h"

namespace det::searcher {
namespace {

using testing::ClosedIds;
using testing::CreatedIds;
using testing::Driver;
using testing::MustCreate;
using testing::MustParse;
using testing::TrialView;

struct ModelTrial {
  std::vector<int64_t> rungs;  // the bracket's rung lengths
  size_t next_rung = 0;
  int64_t length = 0;
  double quality = 0;
};

TEST(AshaSimulationTest, ThousandTrialsObeyTheTopFractionRule) {
  ExperimentConfig cfg = MustParse(R"(searcher:
  name: adaptive_asha
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 937}
  max_trials: 1000
  max_concurrent_trials: 24
reproducibility: {experiment_seed: 5}
hyperparameters:
  lr: {type: log, minval: -4, maxval: -1}
)");
  const double d = cfg.searcher.divisor;
  int64_t concurrency = 0;
  for (const AshaBracket& b : PlanAshaBrackets(cfg.searcher)) {
    concurrency += b.max_concurrent_trials;
  }
  Driver driver(MustCreate(cfg), concurrency);
  std::mt19937_64 rng(20240601);
  auto uniform = [&] { return (rng() >> 11) * 0x1.0p-53; };

  // The model: each bracket (identified by its rung lengths) and its rungs'
  // values in "smaller is better" form, kept independently of the searcher.
  std::map<std::vector<int64_t>, std::vector<std::vector<double>>> model;
  std::map<RequestId, ModelTrial> trials;
  auto track = [&](const Operations& ops) {
    for (RequestId id : CreatedIds(ops)) {
      const ValidateAfter& v = driver.trials().at(id).validate;
      ModelTrial t;
      t.rungs = v.validation_points;
      t.rungs.push_back(v.length);
      t.quality = uniform();
      model[t.rungs].resize(t.rungs.size());
      trials[id] = t;
    }
  };
  track(driver.Start());

  int64_t decisions = 0, stops = 0, steps = 0;
  while (!driver.shut_down() && steps++ < 200000) {
    std::vector<RequestId> live = driver.Live();
    ASSERT_FALSE(live.empty()) << "no live trial and no Shutdown";
    RequestId id = live[rng() % live.size()];
    ModelTrial& t = trials.at(id);
    const TrialView& view = driver.trials().at(id);
    if (view.closing) {
      // A stopping trial may still report a validation; it changes nothing.
      if (uniform() < 0.3) {
        EXPECT_THAT(driver.Validate(id, uniform(), t.length),
                    ::testing::IsEmpty());
      }
      track(driver.Closed(id));
      continue;
    }
    // Next validation: the next rung, sometimes a point in between
    // (min_validation_period), sometimes past several rungs at once.
    int64_t target = t.rungs[std::min(t.next_rung, t.rungs.size() - 1)];
    double r = uniform();
    if (r < 0.25 && target - t.length > 1) {
      target =
          t.length + 1 + static_cast<int64_t>(rng() % (target - t.length - 1));
    } else if (r < 0.35 && t.next_rung + 1 < t.rungs.size()) {
      target = t.rungs[t.next_rung + 1];
    }
    t.length = target;
    double accuracy = std::clamp(t.quality + 0.1 * (uniform() - 0.5) +
                                     0.2 * static_cast<double>(target) / 937,
                                 0.0, 1.0);

    // The expected decision, from the model.
    bool expect_stop = false;
    std::vector<std::vector<double>>& rungs = model[t.rungs];
    while (t.next_rung < t.rungs.size() && t.rungs[t.next_rung] <= target) {
      size_t rung = t.next_rung++;
      std::vector<double>& values = rungs[rung];
      double v = -accuracy;  // larger is better
      size_t better = static_cast<size_t>(std::count_if(
          values.begin(), values.end(), [v](double x) { return x < v; }));
      values.push_back(v);
      if (rung + 1 == t.rungs.size()) break;  // top rung: done
      ++decisions;
      size_t keep = std::max<size_t>(
          static_cast<size_t>(
              std::floor(static_cast<double>(values.size()) / d)),
          1);
      if (better >= keep) {
        expect_stop = true;
        break;
      }
    }
    Operations ops = driver.Validate(id, accuracy, target);
    std::vector<RequestId> closed = ClosedIds(ops);
    if (expect_stop) {
      ++stops;
      EXPECT_EQ(closed, std::vector<RequestId>{id})
          << "trial " << id << " at " << target;
    } else {
      EXPECT_TRUE(closed.empty()) << "trial " << id << " at " << target;
    }
    if (!expect_stop && target >= t.rungs.back()) {
      track(driver.Closed(id));  // trained to max_length
    }
  }
  EXPECT_TRUE(driver.shut_down());
  EXPECT_FALSE(driver.failure());
  EXPECT_EQ(driver.created(), 1000);
  EXPECT_LE(driver.max_live_seen(), concurrency);
  EXPECT_GT(decisions, 1000);
  // Successive halving with d=4 stops most trials at some rung.
  EXPECT_GT(stops, 500);
  EXPECT_DOUBLE_EQ(driver.method().Progress(), 1.0);
}

}  // namespace
}  // namespace det::searcher
