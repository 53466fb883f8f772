#include "worker/daemon/outbox.h"

#include <thread>

#include "gtest/gtest.h"

namespace det::worker {
namespace {

v1::WorkerMessage Event(int64_t trial_id) {
  v1::WorkerMessage m;
  m.mutable_trial_event()->set_trial_id(trial_id);
  return m;
}

v1::WorkerMessage Heartbeat() {
  v1::WorkerMessage m;
  m.mutable_heartbeat()->set_time_us(1);
  return m;
}

TEST(OutboxTest, NumbersAndSendsInOrder) {
  Outbox box;
  EXPECT_EQ(*box.Add(Event(1)), 1);
  EXPECT_EQ(box.AddEphemeral(Heartbeat()), 2);
  EXPECT_EQ(*box.Add(Event(2)), 3);
  for (int64_t want : {1, 2, 3}) {
    auto m = box.Next(absl::ZeroDuration());
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->seq(), want);
  }
  EXPECT_FALSE(box.Next(absl::Milliseconds(1)).has_value());
  EXPECT_EQ(box.pending_messages(), 2);  // heartbeats are not counted
}

// The Hello after a reconnect lists runs whose exit report is still
// waiting for an ack, so the master does not count them lost.
TEST(OutboxTest, UnackedExitsAreTheExitReportsNotYetAcknowledged) {
  Outbox box;
  auto exit_of = [](int64_t trial, int32_t run) {
    v1::WorkerMessage m = Event(trial);
    m.mutable_trial_event()->set_run_id(run);
    m.mutable_trial_event()->mutable_exited()->set_reason(
        v1::EXIT_REASON_COMPLETED);
    return m;
  };
  ASSERT_TRUE(box.Add(exit_of(1, 1)).ok());  // seq 1
  ASSERT_TRUE(box.Add(Event(2)).ok());       // seq 2: not an exit
  ASSERT_TRUE(box.Add(exit_of(3, 2)).ok());  // seq 3
  using Runs = std::vector<std::pair<int64_t, int32_t>>;
  EXPECT_EQ(box.UnackedExits(), (Runs{{1, 1}, {3, 2}}));
  box.Ack(1);
  EXPECT_EQ(box.UnackedExits(), (Runs{{3, 2}}));
  box.Ack(3);
  EXPECT_TRUE(box.UnackedExits().empty());
}

TEST(OutboxTest, AckDropsEverythingUpToTheSeq) {
  Outbox box;
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(box.Add(Event(i)).ok());
  box.Ack(3);
  EXPECT_EQ(box.pending_messages(), 2);
  box.Ack(2);  // stale acks change nothing
  EXPECT_EQ(box.pending_messages(), 2);
  box.Ack(5);
  EXPECT_EQ(box.pending_messages(), 0);
  EXPECT_EQ(box.pending_bytes(), 0);
  EXPECT_TRUE(box.WaitAllAcked(absl::ZeroDuration()));
}

TEST(OutboxTest, RestartResendsAfterLastSeqWithoutHeartbeats) {
  Outbox box;
  ASSERT_TRUE(box.Add(Event(1)).ok());  // 1
  box.AddEphemeral(Heartbeat());        // 2
  ASSERT_TRUE(box.Add(Event(2)).ok());  // 3
  box.AddEphemeral(Heartbeat());        // 4
  ASSERT_TRUE(box.Add(Event(3)).ok());  // 5
  while (box.Next(absl::ZeroDuration()).has_value()) {
  }
  // The stream broke; the new one says seq 1 is stored.
  box.Restart(1);
  std::vector<int64_t> resent;
  while (auto m = box.Next(absl::ZeroDuration())) resent.push_back(m->seq());
  EXPECT_EQ(resent, (std::vector<int64_t>{3, 5}));
  // New messages continue the sequence.
  EXPECT_EQ(*box.Add(Event(4)), 6);
}

TEST(OutboxTest, RefusesWhenFullUnlessForced) {
  Outbox box(Outbox::Limits{/*max_messages=*/2, /*max_bytes=*/1 << 20});
  ASSERT_TRUE(box.Add(Event(1)).ok());
  ASSERT_TRUE(box.Add(Event(2)).ok());
  auto refused = box.Add(Event(3));
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(box.Add(Event(3), /*force=*/true).ok());
  box.Ack(3);
  EXPECT_TRUE(box.Add(Event(4)).ok());
}

TEST(OutboxTest, ByteLimitCountsToo) {
  Outbox box(Outbox::Limits{/*max_messages=*/100, /*max_bytes=*/64});
  v1::WorkerMessage big = Event(1);
  big.mutable_trial_event()->mutable_logs()->add_lines()->set_line(
      std::string(100, 'x'));
  EXPECT_EQ(box.Add(big).status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(box.Add(Event(1)).ok());
}

TEST(OutboxTest, InterruptWakesAWaitingNext) {
  Outbox box;
  std::thread t([&] {
    absl::SleepFor(absl::Milliseconds(20));
    box.Interrupt();
  });
  EXPECT_FALSE(box.Next(absl::Seconds(30)).has_value());
  t.join();
}

}  // namespace
}  // namespace det::worker
