// Properties every search method keeps under random event orders: no trial
// created or stopped twice, limits on trials and concurrency never exceeded,
// and the search always finishes; Progress(), kept incrementally, always
// equals the sum over the trials recomputed here from the events, also across
// snapshot -> restore. Also: snapshot -> restore gives the same future
// operations, and the same seed gives the same search.
#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/config_hparams.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "master/searcher/asha_brackets.h"
#include "tests/searcher/search_driver.h"

namespace det::searcher {
namespace {

using testing::Driver;
using testing::MustCreate;
using testing::MustParse;
using testing::Random;

// A random valid config for `param`: a searcher name, "+tpe" for the TPE
// sampler (with small n_startup_trials so that it is used, and every kind
// of hyperparameter).
std::string RandomConfig(const std::string& param, Random& r) {
  const bool tpe = absl::EndsWith(param, "+tpe");
  const std::string searcher = tpe ? param.substr(0, param.size() - 4) : param;
  std::string yaml = absl::StrCat(
      "searcher:\n  name: ", searcher, "\n  metric: validation_loss\n",
      "  smaller_is_better: ", r.Chance(0.5) ? "true" : "false", "\n",
      "  max_length: {batches: ", r.Int(1, 200), "}\n");
  if (searcher != "single") {
    absl::StrAppend(&yaml, "  max_concurrent_trials: ", r.Int(0, 6), "\n");
  }
  if (searcher == "random" || searcher == "adaptive_asha") {
    absl::StrAppend(&yaml, "  max_trials: ", r.Int(1, 60), "\n");
  }
  if (searcher == "adaptive_asha") {
    const char* modes[] = {"standard", "aggressive", "conservative"};
    absl::StrAppend(&yaml, "  divisor: ", r.Int(2, 5),
                    "\n  mode: ", modes[r.Int(0, 2)],
                    "\n  max_rungs: ", r.Int(1, 5), "\n");
  }
  if (tpe) {
    absl::StrAppend(
        &yaml, "  sampler: tpe\n  tpe: {n_startup_trials: ", r.Int(0, 4),
        ", multivariate: ", r.Chance(0.5) ? "true" : "false",
        ", constant_liar: ", r.Chance(0.5) ? "true" : "false", "}\n");
  }
  absl::StrAppend(&yaml, "reproducibility: {experiment_seed: ", r.Int(0, 1000),
                  "}\nhyperparameters:\n");
  if (searcher == "grid") {
    for (int i = 0, n = static_cast<int>(r.Int(1, 3)); i < n; ++i) {
      absl::StrAppend(&yaml, "  h", i, ": {type: int, minval: 0, maxval: 9, ",
                      "count: ", r.Int(1, 4), "}\n");
    }
  } else {
    absl::StrAppend(&yaml,
                    "  lr: {type: log, minval: -4, maxval: -1}\n"
                    "  opt: {type: categorical, vals: [sgd, adam]}\n");
    if (tpe) {
      absl::StrAppend(&yaml,
                      "  layers: {type: int, minval: 1, maxval: 5}\n"
                      "  aug: {crop: {type: double, minval: 0, maxval: 1}, "
                      "size: 32}\n");
    }
  }
  return yaml;
}

// The most trials the config allows at once and in total (not counting
// trials replaced after invalid hyperparameters).
void Limits(const ExperimentConfig& cfg, int64_t* concurrent, int64_t* trials) {
  const SearcherConfig& s = cfg.searcher;
  if (s.name == SearcherName::kAdaptiveAsha) {
    *concurrent = 0;
    *trials = 0;
    for (const AshaBracket& b : PlanAshaBrackets(s)) {
      *concurrent += std::min(b.max_concurrent_trials, b.max_trials);
      *trials += b.max_trials;
    }
    EXPECT_EQ(*trials, s.max_trials);
    return;
  }
  int64_t total = 1;
  if (s.name == SearcherName::kRandom) total = s.max_trials;
  if (s.name == SearcherName::kGrid) total = GridSize(cfg.hyperparameters);
  *trials = total;
  *concurrent = s.name == SearcherName::kSingle || s.max_concurrent_trials == 0
                    ? total
                    : std::min(s.max_concurrent_trials, total);
}

// Drives a search with random events until it shuts down. With
// `restore_sometimes`, now and then swaps in a fresh searcher restored from
// a snapshot. Returns the number of steps taken.
int RunRandomly(const ExperimentConfig& cfg, Random& r, bool allow_cancel,
                bool restore_sometimes) {
  int64_t concurrent, max_trials;
  Limits(cfg, &concurrent, &max_trials);
  Driver d(MustCreate(cfg), concurrent);
  d.Start();
  int64_t invalid = 0;
  std::map<RequestId, int64_t> lengths;
  // For the reference progress: the longest length validated while a trial
  // was running and not told to stop, and the trials that ended invalid.
  std::map<RequestId, int64_t> validated;
  std::set<RequestId> invalid_ids;
  // Progress recomputed from scratch: each trial counts 1 once told to stop
  // or ended, 0 once ended invalid (it is replaced), and its share of
  // max_length while it runs.
  auto reference_progress = [&]() {
    if (d.shut_down()) return 1.0;
    const double max_length = static_cast<double>(
        std::max<int64_t>(cfg.searcher.max_length.value, 1));
    double done = 0;
    for (const auto& [id, t] : d.trials()) {
      if (invalid_ids.count(id) > 0) continue;
      if (t.ended || t.closing) {
        done += 1;
      } else {
        auto v = validated.find(id);
        if (v != validated.end()) {
          done += std::min(1.0, static_cast<double>(v->second) / max_length);
        }
      }
    }
    return std::clamp(done / static_cast<double>(max_trials), 0.0, 1.0);
  };
  int steps = 0;
  for (; !d.shut_down() && steps < 100000; ++steps) {
    std::vector<RequestId> live = d.Live();
    if (live.empty()) {
      ADD_FAILURE() << "no live trial and no Shutdown\n" << cfg.searcher.metric;
      break;
    }
    RequestId id = live[r.Int(0, static_cast<int64_t>(live.size()) - 1)];
    double p = r.Uniform();
    int64_t max_length = cfg.searcher.max_length.value;
    if (p < 0.55) {
      // Lengths mostly grow, like a real trial's.
      int64_t& len = lengths[id];
      len = r.Chance(0.9) ? std::min(max_length, len + r.Int(1, max_length))
                          : r.Int(1, max_length);
      if (!d.trials().at(id).closing) {
        validated[id] = std::max(validated[id], len);
      }
      d.Validate(id, r.Uniform(), len);
    } else if (p < 0.8) {
      d.Closed(id);
    } else if (p < 0.9) {
      d.Exited(id, ExitedReason::kErrored);
    } else if (p < 0.98) {
      d.Exited(id, ExitedReason::kInvalidHP);
      invalid_ids.insert(id);
      ++invalid;
    } else if (allow_cancel && p < 0.985) {
      d.Exited(id, ExitedReason::kUserCanceled);
    } else {
      // Duplicate and stale events must be harmless.
      for (const auto& [old, t] : d.trials()) {
        if (t.ended) {
          EXPECT_THAT(d.method().TrialClosed(old), ::testing::IsEmpty());
          EXPECT_THAT(d.method().ValidationCompleted(old, 0.5, 1),
                      ::testing::IsEmpty());
          break;
        }
      }
    }
    double progress = d.method().Progress();
    EXPECT_GE(progress, 0);
    EXPECT_LE(progress, 1);
    EXPECT_NEAR(progress, reference_progress(), 1e-12) << "step " << steps;
    // Trials that were not replaced after invalid hyperparameters.
    EXPECT_LE(d.created() - invalid, max_trials);
    if (restore_sometimes && r.Chance(0.05)) {
      std::string snap = d.method().Snapshot();
      std::unique_ptr<SearchMethod> fresh = MustCreate(cfg);
      EXPECT_TRUE(fresh->Restore(snap).ok());
      EXPECT_EQ(fresh->Snapshot(), snap);
      // Progress is not in the snapshot: Restore rebuilds it.
      EXPECT_EQ(fresh->Progress(), d.method().Progress());
      d.Replace(std::move(fresh));
      EXPECT_NEAR(d.method().Progress(), reference_progress(), 1e-12);
    }
  }
  EXPECT_TRUE(d.shut_down()) << "the search did not finish";
  EXPECT_EQ(d.method().Progress(), 1);
  // After Shutdown, events produce nothing.
  for (RequestId id = 1; id <= d.created(); ++id) {
    EXPECT_THAT(d.method().TrialClosed(id), ::testing::IsEmpty());
  }
  EXPECT_THAT(d.method().InitialOperations(), ::testing::IsEmpty());
  return steps;
}

class SearcherPropertyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(SearcherPropertyTest, RandomEventOrdersKeepTheInvariants) {
  Random r(std::hash<std::string>{}(GetParam()));
  for (int run = 0; run < 60; ++run) {
    std::string yaml = RandomConfig(GetParam(), r);
    SCOPED_TRACE(yaml);
    ExperimentConfig cfg = MustParse(yaml);
    RunRandomly(cfg, r, /*allow_cancel=*/run % 3 == 0,
                /*restore_sometimes=*/run % 2 == 0);
  }
}

// Feeds two searchers the same random events and expects the same operations.
void ExpectSameFuture(SearchMethod& a, SearchMethod& b, uint64_t seed,
                      int steps, int64_t max_length, RequestId max_id) {
  Random r(seed);
  for (int i = 0; i < steps; ++i) {
    RequestId id = r.Int(1, max_id);
    double p = r.Uniform();
    Operations oa, ob;
    if (p < 0.6) {
      double metric = r.Uniform();
      int64_t length = r.Int(1, max_length);
      oa = a.ValidationCompleted(id, metric, length);
      ob = b.ValidationCompleted(id, metric, length);
    } else if (p < 0.85) {
      oa = a.TrialClosed(id);
      ob = b.TrialClosed(id);
    } else {
      ExitedReason reason =
          p < 0.95 ? ExitedReason::kErrored : ExitedReason::kInvalidHP;
      oa = a.TrialExitedEarly(id, reason);
      ob = b.TrialExitedEarly(id, reason);
    }
    ASSERT_EQ(oa, ob) << "step " << i;
    ASSERT_EQ(a.Progress(), b.Progress());
    for (const Operation& op : oa) {
      if (auto* c = std::get_if<Create>(&op)) max_id = c->request_id;
    }
  }
  EXPECT_EQ(a.Snapshot(), b.Snapshot());
}

TEST_P(SearcherPropertyTest, SnapshotRestoreGivesTheSameFuture) {
  Random r(7 + std::hash<std::string>{}(GetParam()));
  for (int run = 0; run < 20; ++run) {
    std::string yaml = RandomConfig(GetParam(), r);
    SCOPED_TRACE(yaml);
    ExperimentConfig cfg = MustParse(yaml);
    auto original = MustCreate(cfg);
    RequestId max_id = 0;
    for (const Operation& op : original->InitialOperations()) {
      if (auto* c = std::get_if<Create>(&op)) max_id = c->request_id;
    }
    // Some history first.
    auto scratch = MustCreate(cfg);
    ASSERT_TRUE(scratch->Restore(original->Snapshot()).ok());
    ExpectSameFuture(*original, *scratch, 100 + run, 50,
                     cfg.searcher.max_length.value, max_id);
    // Then snapshot mid-search into a fresh instance.
    auto restored = MustCreate(cfg);
    ASSERT_TRUE(restored->Restore(original->Snapshot()).ok());
    ExpectSameFuture(*original, *restored, 200 + run, 300,
                     cfg.searcher.max_length.value, 200);
  }
}

TEST_P(SearcherPropertyTest, SameSeedSameSearch) {
  Random r(11 + std::hash<std::string>{}(GetParam()));
  std::string yaml = RandomConfig(GetParam(), r);
  ExperimentConfig cfg = MustParse(yaml);
  auto a = MustCreate(cfg);
  auto b = MustCreate(cfg);
  EXPECT_EQ(a->InitialOperations(), b->InitialOperations());
  ExpectSameFuture(*a, *b, 99, 500, cfg.searcher.max_length.value, 100);
}

INSTANTIATE_TEST_SUITE_P(AllSearchers, SearcherPropertyTest,
                         ::testing::Values("single", "grid", "random",
                                           "adaptive_asha", "random+tpe",
                                           "adaptive_asha+tpe"),
                         [](const auto& info) {
                           std::string name = info.param;
                           absl::StrReplaceAll({{"+", "_"}}, &name);
                           return name;
                         });

TEST(SnapshotTest, RestoreRejectsBadSnapshots) {
  ExperimentConfig asha = MustParse(R"(searcher:
  name: adaptive_asha
  metric: validation_loss
  max_length: {batches: 937}
  max_trials: 16
)");
  auto s = MustCreate(asha);
  s->InitialOperations();
  std::string good = s->Snapshot();
  auto fresh = MustCreate(asha);
  EXPECT_TRUE(fresh->Restore(good).ok());

  for (const std::string& bad :
       {std::string("not json"), std::string("[]"), std::string("{}"),
        good.substr(0, good.size() / 2),
        absl::StrCat(good.substr(0, good.find("\"next_id\":")),
                     "\"next_id\":-3,",
                     good.substr(good.find(",\"started\"") + 1))}) {
    auto target = MustCreate(asha);
    absl::Status st = target->Restore(bad);
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << bad;
    // A failed restore leaves the searcher as it was.
    EXPECT_EQ(target->Snapshot(), MustCreate(asha)->Snapshot());
  }
  // A snapshot of another search is refused with a clear message.
  ExperimentConfig random = MustParse(R"(searcher:
  name: random
  metric: validation_loss
  max_length: {batches: 937}
  max_trials: 16
)");
  absl::Status st = MustCreate(random)->Restore(good);
  EXPECT_THAT(std::string(st.message()),
              ::testing::HasSubstr("'adaptive_asha' search, not 'random'"));
  ExperimentConfig other = asha;
  other.searcher.max_trials = 17;
  st = MustCreate(other)->Restore(good);
  EXPECT_THAT(std::string(st.message()),
              ::testing::HasSubstr("does not match this config"));
}

TEST(SnapshotTest, MetricsRoundTripExactly) {
  ExperimentConfig cfg = MustParse(R"(searcher:
  name: adaptive_asha
  metric: validation_loss
  max_length: {batches: 16}
  max_trials: 8
  divisor: 2
  mode: aggressive
hyperparameters: {x: {type: double, minval: 0, maxval: 1}}
)");
  auto a = MustCreate(cfg);
  a->InitialOperations();
  // Rungs 2, 4, 8, 16. Trial 1 enters rung 0.
  EXPECT_TRUE(a->ValidationCompleted(1, 0.1234567891, 2).empty());
  auto b = MustCreate(cfg);
  ASSERT_TRUE(b->Restore(a->Snapshot()).ok());
  // 0.1234567895 is worse than 0.1234567891 (six significant digits would
  // make them both 0.123457, and trial 2 would continue): stopped.
  Operations ops = b->ValidationCompleted(2, 0.1234567895, 2);
  EXPECT_EQ(ops, (Operations{Close{2}}));
  EXPECT_EQ(a->ValidationCompleted(2, 0.1234567895, 2), ops);
}

}  // namespace
}  // namespace det::searcher
