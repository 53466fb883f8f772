// SlotScheduler: the placement rules one by one.
#include "master/scheduler/slot_scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace det::scheduler {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

using SlotMap = std::map<std::string, std::vector<int32_t>>;

Request Req(int64_t trial, int32_t slots = 1, int32_t priority = 42,
            int64_t order = 0, int64_t experiment = 1,
            std::optional<int32_t> max_slots = std::nullopt) {
  Request r;
  r.trial_id = trial;
  r.experiment_id = experiment;
  r.slots = slots;
  r.priority = priority;
  r.order = order == 0 ? trial : order;
  r.experiment_max_slots = max_slots;
  return r;
}

std::vector<int64_t> TrialsOf(const std::vector<Placement>& placements) {
  std::vector<int64_t> out;
  for (const Placement& p : placements) out.push_back(p.trial_id);
  return out;
}

TEST(SlotSchedulerTest, LowerPriorityValueRunsFirst) {
  SlotScheduler s;
  s.AddWorker("w", 1);
  s.Enqueue(Req(1, 1, /*priority=*/50, /*order=*/1));
  s.Enqueue(Req(2, 1, /*priority=*/10, /*order=*/2));
  std::vector<Placement> p = s.Schedule();
  EXPECT_THAT(TrialsOf(p), ElementsAre(2));
  EXPECT_TRUE(s.IsQueued(1));
  s.Release(2);
  EXPECT_THAT(TrialsOf(s.Schedule()), ElementsAre(1));
}

TEST(SlotSchedulerTest, SubmissionOrderWithinAPriority) {
  SlotScheduler s;
  s.AddWorker("w", 2);
  s.Enqueue(Req(7, 1, 42, /*order=*/30));
  s.Enqueue(Req(8, 1, 42, /*order=*/10));
  s.Enqueue(Req(9, 1, 42, /*order=*/20));
  EXPECT_THAT(TrialsOf(s.Schedule()), ElementsAre(8, 9));
  EXPECT_THAT(s.SlotsOf(8), ElementsAre(Pair("w", ElementsAre(0))));
  EXPECT_THAT(s.SlotsOf(9), ElementsAre(Pair("w", ElementsAre(1))));
  EXPECT_EQ(s.QueueLength(), 1u);
}

TEST(SlotSchedulerTest, BestFitPicksTheFullestWorkerThatFits) {
  SlotScheduler s;
  s.AddWorker("big", 8);
  s.AddWorker("medium", 4);
  s.AddWorker("small", 2);
  s.Enqueue(Req(1, 2));
  s.Enqueue(Req(2, 3));
  s.Enqueue(Req(3, 1));
  std::vector<Placement> p = s.Schedule();
  ASSERT_EQ(p.size(), 3u);
  // 2 slots: "small" has exactly 2 free.
  EXPECT_THAT(p[0].slots, ElementsAre(Pair("small", ElementsAre(0, 1))));
  // 3 slots: "medium" (4 free) rather than "big" (8 free).
  EXPECT_THAT(p[1].slots, ElementsAre(Pair("medium", ElementsAre(0, 1, 2))));
  // 1 slot: "medium" has 1 left, the fewest that fit.
  EXPECT_THAT(p[2].slots, ElementsAre(Pair("medium", ElementsAre(3))));
  EXPECT_EQ(s.UsedSlots(), 6);
  EXPECT_EQ(s.TotalSlots(), 14);
}

TEST(SlotSchedulerTest, BigTrialSpansWholeIdleWorkers) {
  SlotScheduler s;
  s.AddWorker("a", 2);
  s.AddWorker("b", 2);
  s.AddWorker("c", 2);
  s.Enqueue(Req(1, 1));
  EXPECT_THAT(TrialsOf(s.Schedule()), ElementsAre(1));  // on "a"
  s.Enqueue(Req(2, 4));
  std::vector<Placement> p = s.Schedule();
  ASSERT_EQ(p.size(), 1u);
  // "a" is busy; the two idle workers give all their slots.
  EXPECT_THAT(p[0].slots, ElementsAre(Pair("b", ElementsAre(0, 1)),
                                      Pair("c", ElementsAre(0, 1))));
  EXPECT_EQ(s.UsedSlots(), 5);
}

TEST(SlotSchedulerTest, SpanningUsesFewestWorkersAndTheSmallestLastOne) {
  SlotScheduler s;
  s.AddWorker("w8", 8);
  s.AddWorker("w4", 4);
  s.AddWorker("w2", 2);
  s.Enqueue(Req(1, 10));
  std::vector<Placement> p = s.Schedule();
  ASSERT_EQ(p.size(), 1u);
  // Two workers: the largest, then the smallest that covers the other 2.
  EXPECT_THAT(p[0].slots,
              ElementsAre(Pair("w2", ElementsAre(0, 1)),
                          Pair("w8", ElementsAre(0, 1, 2, 3, 4, 5, 6, 7))));
  s.Release(1);
  // 11 = 8 + 3: the last worker gives only 3 of its 4; the spare slot stays
  // free for others, and the trial holds exactly what it asked for.
  s.Enqueue(Req(2, 11));
  s.Enqueue(Req(3, 1));
  p = s.Schedule();
  ASSERT_EQ(p.size(), 2u);
  EXPECT_THAT(p[0].slots,
              ElementsAre(Pair("w4", ElementsAre(0, 1, 2)),
                          Pair("w8", ElementsAre(0, 1, 2, 3, 4, 5, 6, 7))));
  EXPECT_THAT(p[1].slots, ElementsAre(Pair("w4", ElementsAre(3))));
}

TEST(SlotSchedulerTest, SpanningNeedsIdleWorkers) {
  SlotScheduler s;
  s.AddWorker("a", 2);
  s.AddWorker("b", 2);
  s.Enqueue(Req(1, 1));
  s.Schedule();
  // 3 slots are free in total, but only "b" is idle.
  s.Enqueue(Req(2, 3));
  EXPECT_THAT(s.Schedule(), IsEmpty());
  EXPECT_TRUE(s.IsQueued(2));
  EXPECT_THAT(s.Unschedulable(), IsEmpty());  // it fits once "a" is idle
  s.Release(1);
  std::vector<Placement> p = s.Schedule();
  ASSERT_EQ(p.size(), 1u);
  EXPECT_THAT(p[0].slots, ElementsAre(Pair("a", ElementsAre(0)),
                                      Pair("b", ElementsAre(0, 1))));
}

TEST(SlotSchedulerTest, MaxSlotsCapsAnExperiment) {
  SlotScheduler s;
  s.AddWorker("w", 8);
  for (int64_t t = 1; t <= 4; ++t) {
    s.Enqueue(Req(t, 1, 42, t, /*experiment=*/1, /*max_slots=*/2));
  }
  s.Enqueue(Req(5, 1, 42, 5, /*experiment=*/2));
  EXPECT_THAT(TrialsOf(s.Schedule()), ElementsAre(1, 2, 5));
  EXPECT_THAT(s.Schedule(), IsEmpty());
  s.Release(1);
  EXPECT_THAT(TrialsOf(s.Schedule()), ElementsAre(3));
  EXPECT_TRUE(s.IsQueued(4));
}

TEST(SlotSchedulerTest, MaxSlotsCountsSlotsNotTrials) {
  SlotScheduler s;
  s.AddWorker("w", 8);
  s.Enqueue(Req(1, 2, 42, 1, 1, /*max_slots=*/3));
  s.Enqueue(Req(2, 2, 42, 2, 1, /*max_slots=*/3));
  s.Enqueue(Req(3, 1, 42, 3, 1, /*max_slots=*/3));
  EXPECT_THAT(TrialsOf(s.Schedule()), ElementsAre(1, 3));
}

TEST(SlotSchedulerTest, NeverFitsIsReported) {
  SlotScheduler s;
  s.AddWorker("a", 2);
  s.AddWorker("b", 2);
  s.Enqueue(Req(1, 5));                             // more than the cluster
  s.Enqueue(Req(2, 4));                             // fits: all of both
  s.Enqueue(Req(3, 3, 42, 3, 1, /*max_slots=*/2));  // more than its cap
  s.Enqueue(Req(4, 0));                             // no slots at all
  EXPECT_THAT(s.Unschedulable(), ElementsAre(1, 3, 4));
  EXPECT_THAT(TrialsOf(s.Schedule()), ElementsAre(2));
  // Still queued; a new worker can make it fit.
  EXPECT_TRUE(s.IsQueued(1));
  s.AddWorker("c", 1);
  EXPECT_THAT(s.Unschedulable(), ElementsAre(3, 4));
}

TEST(SlotSchedulerTest, SmallTrialsBackfillBehindABigOne) {
  SlotScheduler s;
  s.AddWorker("a", 4);
  s.Enqueue(Req(1, 2, 42, 1));
  s.Schedule();
  s.Enqueue(Req(2, 4, 10, 2));  // first in line, does not fit now
  s.Enqueue(Req(3, 1, 42, 3));
  s.Enqueue(Req(4, 3, 42, 4));  // does not fit either
  s.Enqueue(Req(5, 1, 42, 5));
  EXPECT_THAT(TrialsOf(s.Schedule()), ElementsAre(3, 5));
  EXPECT_TRUE(s.IsQueued(2));
  EXPECT_TRUE(s.IsQueued(4));
}

TEST(SlotSchedulerTest, ReleaseThenReschedule) {
  SlotScheduler s;
  s.AddWorker("w", 2);
  s.Enqueue(Req(1, 2));
  s.Enqueue(Req(2, 2));
  EXPECT_THAT(TrialsOf(s.Schedule()), ElementsAre(1));
  EXPECT_EQ(s.UsedSlots(), 2);
  s.Release(1);
  EXPECT_EQ(s.UsedSlots(), 0);
  EXPECT_THAT(s.SlotsOf(1), IsEmpty());
  std::vector<Placement> p = s.Schedule();
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].trial_id, 2);
  EXPECT_THAT(p[0].slots, ElementsAre(Pair("w", ElementsAre(0, 1))));
  // A released trial may be queued again (a restart) and placed again.
  s.Release(2);
  s.Release(2);  // twice: no-op
  s.Enqueue(Req(1, 2));
  EXPECT_THAT(TrialsOf(s.Schedule()), ElementsAre(1));
}

TEST(SlotSchedulerTest, EnqueueAndDequeue) {
  SlotScheduler s;
  s.Enqueue(Req(1));
  s.Enqueue(Req(1, 3));  // already queued: no-op
  s.Enqueue(Req(2));
  s.Enqueue(Req(0));  // not a trial id
  EXPECT_EQ(s.QueueLength(), 2u);
  EXPECT_TRUE(s.IsQueued(1));
  s.Dequeue(1);
  s.Dequeue(99);
  EXPECT_FALSE(s.IsQueued(1));
  EXPECT_EQ(s.QueueLength(), 1u);
  // No workers: nothing placed, nothing lost.
  EXPECT_THAT(s.Schedule(), IsEmpty());
  s.AddWorker("w", 1);
  EXPECT_THAT(TrialsOf(s.Schedule()), ElementsAre(2));
  s.Enqueue(Req(2));  // holds slots: no-op
  EXPECT_FALSE(s.IsQueued(2));
}

TEST(SlotSchedulerTest, ReserveForAReconnectingWorker) {
  SlotScheduler s;
  s.AddWorker("a", 4);
  s.Enqueue(Req(5));  // the master had re-queued it while "a" was away
  EXPECT_TRUE(s.Reserve(5, 1, {{"a", {2, 3}}}));
  EXPECT_FALSE(s.IsQueued(5));
  EXPECT_EQ(s.UsedSlots(), 2);
  EXPECT_THAT(s.SlotsOf(5), ElementsAre(Pair("a", ElementsAre(2, 3))));

  EXPECT_FALSE(s.Reserve(6, 1, {{"a", {1, 2}}}));  // 2 is taken
  EXPECT_FALSE(s.Reserve(6, 1, {{"a", {4}}}));     // no slot 4
  EXPECT_FALSE(s.Reserve(6, 1, {{"b", {0}}}));     // no worker b
  EXPECT_FALSE(s.Reserve(6, 1, {}));               // nothing named
  EXPECT_THAT(s.SlotsOf(6), IsEmpty());            // failures change nothing
  EXPECT_EQ(s.UsedSlots(), 2);
  EXPECT_TRUE(s.Reserve(5, 1, {{"a", {2, 3}}}));  // again: its own slots

  // New requests go around the reserved slots.
  s.Enqueue(Req(7, 2));
  std::vector<Placement> p = s.Schedule();
  ASSERT_EQ(p.size(), 1u);
  EXPECT_THAT(p[0].slots, ElementsAre(Pair("a", ElementsAre(0, 1))));
  s.Release(5);
  EXPECT_EQ(s.UsedSlots(), 2);
}

TEST(SlotSchedulerTest, ReserveMergesASpanningTrialsWorkers) {
  SlotScheduler s;
  s.AddWorker("a", 2);
  s.AddWorker("b", 2);
  EXPECT_TRUE(s.Reserve(3, 9, {{"a", {0, 1}}}));
  EXPECT_TRUE(s.Reserve(3, 9, {{"b", {0, 1}}}));
  EXPECT_THAT(s.SlotsOf(3), ElementsAre(Pair("a", ElementsAre(0, 1)),
                                        Pair("b", ElementsAre(0, 1))));
  EXPECT_FALSE(s.Reserve(3, 8, {{"a", {0}}}));  // same trial, other experiment
  s.Release(3);
  EXPECT_EQ(s.UsedSlots(), 0);
}

TEST(SlotSchedulerTest, RemoveWorkerReportsItsTrials) {
  SlotScheduler s;
  s.AddWorker("a", 2);
  s.AddWorker("b", 2);
  s.AddWorker("c", 1);
  s.Enqueue(Req(1, 1));
  s.Enqueue(Req(2, 1));
  s.Enqueue(Req(3, 1));
  s.Schedule();  // 1 on c (best fit), 2 and 3 on a
  s.Enqueue(Req(4, 2));
  s.Schedule();  // 4 on b
  EXPECT_THAT(s.SlotsOf(2), ElementsAre(Pair("a", ElementsAre(0))));
  EXPECT_THAT(s.RemoveWorker("a"), ElementsAre(2, 3));
  EXPECT_EQ(s.TotalSlots(), 3);
  EXPECT_EQ(s.UsedSlots(), 3);
  EXPECT_THAT(s.SlotsOf(2), IsEmpty());
  EXPECT_THAT(s.RemoveWorker("a"), IsEmpty());  // unknown now
  // The lost trials can be queued again and go where there is room.
  s.Enqueue(Req(2, 1));
  EXPECT_THAT(s.Schedule(), IsEmpty());
  s.AddWorker("d", 1);
  EXPECT_THAT(TrialsOf(s.Schedule()), ElementsAre(2));
}

TEST(SlotSchedulerTest, RemoveWorkerLeavesASpanningTrialsOtherSlots) {
  SlotScheduler s;
  s.AddWorker("a", 2);
  s.AddWorker("b", 2);
  s.Enqueue(Req(1, 4));
  s.Schedule();
  EXPECT_THAT(s.RemoveWorker("a"), ElementsAre(1));
  // Trial 1 still holds "b" until the caller stops it there and releases.
  EXPECT_THAT(s.SlotsOf(1), ElementsAre(Pair("b", ElementsAre(0, 1))));
  EXPECT_EQ(s.UsedSlots(), 2);
  s.Enqueue(Req(2, 1));
  EXPECT_THAT(s.Schedule(), IsEmpty());
  s.Release(1);
  EXPECT_EQ(s.UsedSlots(), 0);
  EXPECT_THAT(TrialsOf(s.Schedule()), ElementsAre(2));
}

TEST(SlotSchedulerTest, AddingAKnownWorkerKeepsItsState) {
  SlotScheduler s;
  s.AddWorker("a", 2);
  s.Enqueue(Req(1, 2));
  s.Schedule();
  s.AddWorker("a", 4);
  EXPECT_EQ(s.TotalSlots(), 2);
  EXPECT_EQ(s.UsedSlots(), 2);
  s.AddWorker("empty", 0);
  s.Enqueue(Req(2, 1));
  EXPECT_THAT(s.Schedule(), IsEmpty());
}

}  // namespace
}  // namespace det::scheduler
