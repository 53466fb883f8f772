// SlotScheduler under random operations, checked against a plain model of
// the cluster; and a measurement of Schedule() on a large queue.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "master/scheduler/slot_scheduler.h"

namespace det::scheduler {
namespace {

// What the test knows independently of the scheduler.
struct Model {
  std::map<std::string, int32_t> workers;  // id -> slots
  std::map<int64_t, Request> queued;
  std::map<int64_t, int32_t> placed;  // trial -> slots it must hold
  std::map<int64_t, int64_t> placed_experiment;
  std::map<int64_t, std::optional<int32_t>> caps;  // experiment -> max_slots
};

class RandomOps {
 public:
  RandomOps(uint32_t seed) : rng_(seed) {
    model_.caps[1] = 3;
    model_.caps[2] = std::nullopt;
    model_.caps[3] = 6;
  }

  void Run(int steps) {
    for (int i = 0; i < steps && !::testing::Test::HasFailure(); ++i) {
      int op = Uniform(0, 99);
      // Balanced so that the cluster stays at tens of workers and the
      // queue at tens of requests, with every kind of event frequent.
      if (op < 6)
        AddWorker();
      else if (op < 10)
        RemoveWorker();
      else if (op < 35)
        Enqueue();
      else if (op < 40)
        Dequeue();
      else if (op < 60)
        Release();
      else if (op < 65)
        Reserve();
      else
        Schedule();
      CheckInvariants();
    }
    // The run reached the interesting cases, so the checks above were not
    // vacuous.
    EXPECT_GT(stats_.placed, 100);
    EXPECT_GT(stats_.spanning, 5);
    EXPECT_GT(stats_.lost_to_removal, 5);
    EXPECT_GT(stats_.reserved, 5);
    EXPECT_GT(stats_.reserve_refused, 5);
  }

 private:
  int Uniform(int lo, int hi) {
    return std::uniform_int_distribution<int>(lo, hi)(rng_);
  }
  template <typename Map>
  typename Map::const_iterator Pick(const Map& m) {
    auto it = m.begin();
    std::advance(it, Uniform(0, static_cast<int>(m.size()) - 1));
    return it;
  }

  void AddWorker() {
    std::string id = "w" + std::to_string(next_worker_++);
    int32_t slots = Uniform(0, 8);
    s_.AddWorker(id, slots);
    model_.workers[id] = slots;
  }

  void RemoveWorker() {
    if (model_.workers.empty()) return;
    std::string id = Pick(model_.workers)->first;
    std::vector<int64_t> affected = s_.RemoveWorker(id);
    model_.workers.erase(id);
    std::set<int64_t> expected;
    for (const auto& [trial, slots] : holdings_before_remove_) {
      if (slots.count(id) > 0) expected.insert(trial);
    }
    EXPECT_EQ(std::set<int64_t>(affected.begin(), affected.end()), expected);
    EXPECT_TRUE(std::is_sorted(affected.begin(), affected.end()));
    // What the master does: stop the trial everywhere, release, requeue.
    stats_.lost_to_removal += static_cast<int>(affected.size());
    for (int64_t trial : affected) {
      s_.Release(trial);
      Request r = MakeRequest(trial, model_.placed.at(trial),
                              model_.placed_experiment.at(trial));
      model_.placed.erase(trial);
      model_.placed_experiment.erase(trial);
      s_.Enqueue(r);
      model_.queued[trial] = r;
    }
  }

  Request MakeRequest(int64_t trial, int32_t slots, int64_t experiment) {
    Request r;
    r.trial_id = trial;
    r.experiment_id = experiment;
    r.slots = slots;
    r.priority = std::vector<int32_t>{1, 42, 42, 99}[Uniform(0, 3)];
    r.order = next_order_++;
    r.experiment_max_slots = model_.caps.at(experiment);
    return r;
  }

  void Enqueue() {
    int64_t trial = next_trial_++;
    int32_t slots = Uniform(0, 9) < 8 ? Uniform(1, 3) : Uniform(4, 20);
    Request r = MakeRequest(trial, slots, Uniform(1, 3));
    s_.Enqueue(r);
    model_.queued[trial] = r;
  }

  void Dequeue() {
    if (model_.queued.empty()) return;
    int64_t trial = Pick(model_.queued)->first;
    s_.Dequeue(trial);
    model_.queued.erase(trial);
  }

  void Release() {
    if (model_.placed.empty()) return;
    int64_t trial = Pick(model_.placed)->first;
    s_.Release(trial);
    model_.placed.erase(trial);
    model_.placed_experiment.erase(trial);
  }

  // A reconnecting worker claims 1-2 slots for a trial unknown so far.
  void Reserve() {
    if (model_.workers.empty()) return;
    auto [worker, size] = *Pick(model_.workers);
    if (size == 0) return;
    std::set<int32_t> want = {static_cast<int32_t>(Uniform(0, size - 1)),
                              static_cast<int32_t>(Uniform(0, size - 1))};
    bool all_free = true;
    for (const auto& [trial, slots] : Holdings()) {
      auto it = slots.find(worker);
      if (it == slots.end()) continue;
      for (int32_t s : it->second) all_free &= want.count(s) == 0;
    }
    int64_t trial = next_trial_++;
    bool ok = s_.Reserve(trial, 2, {{worker, {want.begin(), want.end()}}});
    EXPECT_EQ(ok, all_free);
    ++(ok ? stats_.reserved : stats_.reserve_refused);
    if (ok) {
      model_.placed[trial] = static_cast<int32_t>(want.size());
      model_.placed_experiment[trial] = 2;
    }
  }

  void Schedule() {
    std::vector<Placement> placements = s_.Schedule();
    for (const Placement& p : placements) {
      auto q = model_.queued.find(p.trial_id);
      ASSERT_NE(q, model_.queued.end()) << "placed a trial not queued";
      int32_t held = 0;
      for (const auto& [worker, slots] : p.slots) {
        ASSERT_TRUE(model_.workers.count(worker)) << worker;
        held += static_cast<int32_t>(slots.size());
      }
      EXPECT_EQ(held, q->second.slots) << "trial " << p.trial_id;
      ++stats_.placed;
      if (p.slots.size() > 1) ++stats_.spanning;
      EXPECT_EQ(s_.SlotsOf(p.trial_id), p.slots);
      EXPECT_FALSE(s_.IsQueued(p.trial_id));
      model_.placed[p.trial_id] = q->second.slots;
      model_.placed_experiment[p.trial_id] = q->second.experiment_id;
      model_.queued.erase(q);
    }
    CheckNothingElseFits();
  }

  std::map<int64_t, std::map<std::string, std::vector<int32_t>>> Holdings() {
    std::map<int64_t, std::map<std::string, std::vector<int32_t>>> out;
    for (const auto& [trial, n] : model_.placed) out[trial] = s_.SlotsOf(trial);
    return out;
  }

  // After Schedule(), every request left in the queue is blocked: by its
  // cap, or because no worker has room and the idle workers are too few.
  void CheckNothingElseFits() {
    std::map<std::string, int32_t> used;
    std::map<int64_t, int32_t> experiment_used;
    for (const auto& [trial, slots] : Holdings()) {
      for (const auto& [worker, ids] : slots) {
        used[worker] += static_cast<int32_t>(ids.size());
        experiment_used[model_.placed_experiment.at(trial)] +=
            static_cast<int32_t>(ids.size());
      }
    }
    int32_t max_free = 0;
    int32_t idle = 0;
    for (const auto& [worker, size] : model_.workers) {
      max_free = std::max(max_free, size - used[worker]);
      if (used[worker] == 0) idle += size;
    }
    for (const auto& [trial, r] : model_.queued) {
      bool capped =
          r.experiment_max_slots.has_value() &&
          experiment_used[r.experiment_id] + r.slots > *r.experiment_max_slots;
      bool fits = r.slots >= 1 && (r.slots <= max_free || r.slots <= idle);
      EXPECT_TRUE(capped || !fits) << "trial " << trial << " (" << r.slots
                                   << " slots) was left queued but fits";
    }
  }

  void CheckInvariants() {
    holdings_before_remove_ = Holdings();
    int32_t total = 0;
    for (const auto& [worker, size] : model_.workers) total += size;
    EXPECT_EQ(s_.TotalSlots(), total);
    std::set<std::pair<std::string, int32_t>> taken;
    std::map<int64_t, int32_t> experiment_used;
    int32_t used = 0;
    for (const auto& [trial, slots] : holdings_before_remove_) {
      int32_t held = 0;
      for (const auto& [worker, ids] : slots) {
        auto w = model_.workers.find(worker);
        ASSERT_NE(w, model_.workers.end());
        for (int32_t id : ids) {
          EXPECT_GE(id, 0);
          EXPECT_LT(id, w->second);
          EXPECT_TRUE(taken.emplace(worker, id).second)
              << worker << " slot " << id << " double-booked";
        }
        held += static_cast<int32_t>(ids.size());
      }
      EXPECT_EQ(held, model_.placed.at(trial)) << "trial " << trial;
      experiment_used[model_.placed_experiment.at(trial)] += held;
      used += held;
    }
    EXPECT_EQ(s_.UsedSlots(), used);
    EXPECT_LE(used, total);
    for (const auto& [experiment, n] : experiment_used) {
      std::optional<int32_t> cap = model_.caps.at(experiment);
      if (cap.has_value()) {
        EXPECT_LE(n, *cap) << "experiment " << experiment;
      }
    }
    EXPECT_EQ(s_.QueueLength(), model_.queued.size());
    for (const auto& [trial, r] : model_.queued)
      EXPECT_TRUE(s_.IsQueued(trial));
    std::vector<int64_t> never = s_.Unschedulable();
    for (int64_t trial : never) {
      const Request& r = model_.queued.at(trial);
      EXPECT_TRUE(
          r.slots < 1 || r.slots > total ||
          (r.experiment_max_slots && r.slots > *r.experiment_max_slots));
    }
  }

  struct Stats {
    int placed = 0;
    int spanning = 0;
    int lost_to_removal = 0;
    int reserved = 0;
    int reserve_refused = 0;
  };

  std::mt19937 rng_;
  Stats stats_;
  SlotScheduler s_;
  Model model_;
  std::map<int64_t, std::map<std::string, std::vector<int32_t>>>
      holdings_before_remove_;
  int next_worker_ = 0;
  int64_t next_trial_ = 1;
  int64_t next_order_ = 1;
};

TEST(SlotSchedulerPropertyTest, RandomOperationsKeepTheBooksStraight) {
  for (uint32_t seed : {1u, 2u, 3u, 42u, 2024u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    RandomOps ops(seed);
    ops.Run(3000);
  }
}

// Not a pass/fail test of speed: prints what Schedule() costs with 20,000
// queued trials on 1,600 slots.
TEST(SlotSchedulerPropertyTest, LargeQueueMeasurement) {
  using Clock = std::chrono::steady_clock;
  auto micros = [](Clock::duration d) {
    return std::chrono::duration<double, std::micro>(d).count();
  };
  std::mt19937 rng(7);
  SlotScheduler s;
  for (int w = 0; w < 200; ++w) s.AddWorker("w" + std::to_string(w), 8);
  constexpr int kTrials = 20000;
  std::discrete_distribution<int> size_pick({70, 15, 10, 4, 1});
  const int32_t sizes[] = {1, 2, 4, 8, 16};
  for (int64_t t = 1; t <= kTrials; ++t) {
    Request r;
    r.trial_id = t;
    r.experiment_id = 1 + t % 50;
    r.slots = sizes[size_pick(rng)];
    r.priority = std::vector<int32_t>{10, 42, 42, 80}[rng() % 4];
    r.order = t;
    if (r.experiment_id % 5 == 0) r.experiment_max_slots = 64;
    s.Enqueue(r);
  }

  auto start = Clock::now();
  std::vector<Placement> first = s.Schedule();
  double first_us = micros(Clock::now() - start);
  EXPECT_EQ(s.UsedSlots(), s.TotalSlots());  // enough small ones to fill it
  std::vector<int64_t> running;
  for (const Placement& p : first) running.push_back(p.trial_id);

  // Steady state: a few trials end, the queue is rescheduled.
  constexpr int kRounds = 200;
  double rounds_us = 0;
  size_t placed = 0;
  for (int round = 0; round < kRounds; ++round) {
    for (int k = 0; k < 8 && !running.empty(); ++k) {
      size_t i = rng() % running.size();
      s.Release(running[i]);
      running[i] = running.back();
      running.pop_back();
    }
    start = Clock::now();
    std::vector<Placement> more = s.Schedule();
    rounds_us += micros(Clock::now() - start);
    placed += more.size();
    for (const Placement& p : more) running.push_back(p.trial_id);
    EXPECT_LE(s.UsedSlots(), s.TotalSlots());
  }

  // A full cluster: Schedule() must return at once.
  start = Clock::now();
  std::vector<Placement> none = s.Schedule();
  double full_us = micros(Clock::now() - start);
  EXPECT_TRUE(none.empty());

  std::printf(
      "[ measure  ] Schedule(), %d queued, %d slots: first pass %.0f us "
      "(%zu placed); after 8 releases %.1f us on average (%zu placed over "
      "%d rounds); full cluster %.1f us\n",
      kTrials, s.TotalSlots(), first_us, first.size(), rounds_us / kRounds,
      placed, kRounds, full_us);
}

// The case that walks the whole queue: free slots everywhere, but every
// queued trial belongs to an experiment at its max_slots.
TEST(SlotSchedulerPropertyTest, CappedQueueMeasurement) {
  using Clock = std::chrono::steady_clock;
  SlotScheduler s;
  for (int w = 0; w < 200; ++w) s.AddWorker("w" + std::to_string(w), 8);
  constexpr int kTrials = 20000;
  for (int64_t t = 1; t <= kTrials; ++t) {
    Request r;
    r.trial_id = t;
    r.experiment_id = 1;
    r.order = t;
    r.experiment_max_slots = 8;
    s.Enqueue(r);
  }
  EXPECT_EQ(s.Schedule().size(), 8u);
  constexpr int kRounds = 20;
  auto start = Clock::now();
  for (int i = 0; i < kRounds; ++i) EXPECT_TRUE(s.Schedule().empty());
  double us =
      std::chrono::duration<double, std::micro>(Clock::now() - start).count() /
      kRounds;
  EXPECT_EQ(s.UsedSlots(), 8);
  std::printf(
      "[ measure  ] Schedule(), %d queued all capped, %d free slots: %.0f us\n",
      kTrials, s.TotalSlots() - s.UsedSlots(), us);
}

}  // namespace
}  // namespace det::scheduler
