// ConnectionGate against a recording backend: which database steps each
// path takes, which calls are timed, and that other threads wait for a
// transaction to end. The SQL stores' own suites run the real databases.
#include "master/store/connection_gate.h"

#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace det::store {
namespace {

using ::testing::ElementsAre;

class RecordingBackend : public ConnectionGate::Backend {
 public:
  absl::Status Ready() override { return Step("ready", ready_); }
  absl::Status Begin() override { return Step("begin", absl::OkStatus()); }
  absl::Status Commit() override { return Step("commit", commit_); }
  void Rollback() override { steps.push_back("rollback"); }
  absl::Status Savepoint() override {
    return Step("savepoint", absl::OkStatus());
  }
  absl::Status ReleaseSavepoint() override {
    return Step("release", absl::OkStatus());
  }
  void RollbackToSavepoint() override { steps.push_back("rollback-to"); }

  std::vector<std::string> steps;
  absl::Status ready_;
  absl::Status commit_;

 private:
  absl::Status Step(const char* name, const absl::Status& result) {
    steps.push_back(name);
    return result;
  }
};

class ConnectionGateTest : public ::testing::Test {
 protected:
  ConnectionGateTest() {
    gate_.SetWriteObserver([this](absl::Duration) { ++timed_; });
  }

  RecordingBackend backend_;
  ConnectionGate gate_{&backend_};
  int timed_ = 0;
};

TEST_F(ConnectionGateTest, AWriteAloneIsReadiedAndTimedAReadOnlyReadied) {
  EXPECT_TRUE(gate_.Write([] { return absl::OkStatus(); }).ok());
  EXPECT_TRUE(gate_.Read([] { return absl::OkStatus(); }).ok());
  EXPECT_THAT(backend_.steps, ElementsAre("ready", "ready"));
  EXPECT_EQ(timed_, 1);
}

TEST_F(ConnectionGateTest, ACallIsNotRunWhenTheConnectionCannotBeReadied) {
  backend_.ready_ = absl::UnavailableError("server gone");
  bool ran = false;
  absl::Status s = gate_.Write([&] {
    ran = true;
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(ran);
  s = gate_.RunInTransaction([&] {
    ran = true;
    return absl::OkStatus();
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(ran);
  EXPECT_THAT(backend_.steps, ElementsAre("ready", "ready"));
}

TEST_F(ConnectionGateTest, CallsInsideATransactionJoinIt) {
  absl::Status s = gate_.RunInTransaction([&] {
    EXPECT_TRUE(gate_.InOwnTransaction());
    EXPECT_TRUE(gate_.Write([] { return absl::OkStatus(); }).ok());
    EXPECT_TRUE(gate_.Read([] { return absl::OkStatus(); }).ok());
    return absl::OkStatus();
  });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_FALSE(gate_.InOwnTransaction());
  EXPECT_THAT(backend_.steps, ElementsAre("ready", "begin", "commit"));
  EXPECT_EQ(timed_, 1) << "the transaction is one write";
}

TEST_F(ConnectionGateTest, AFailedNestedTransactionUndoesOnlyItsSavepoint) {
  absl::Status s = gate_.RunInTransaction([&] {
    absl::Status inner = gate_.RunInTransaction(
        [] { return absl::AbortedError("inner fails"); });
    EXPECT_EQ(inner.code(), absl::StatusCode::kAborted);
    return gate_.RunInTransaction([] { return absl::OkStatus(); });
  });
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_THAT(backend_.steps,
              ElementsAre("ready", "begin", "savepoint", "rollback-to",
                          "savepoint", "release", "commit"));
}

TEST_F(ConnectionGateTest, AFailedCommitIsRolledBackAndReported) {
  backend_.commit_ = absl::AbortedError("a statement failed");
  absl::Status s = gate_.RunInTransaction([] { return absl::OkStatus(); });
  EXPECT_EQ(s.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(backend_.steps,
              ElementsAre("ready", "begin", "commit", "rollback"));
  EXPECT_FALSE(gate_.InOwnTransaction());
}

TEST_F(ConnectionGateTest, AnExceptionRollsBackAndFreesTheGate) {
  EXPECT_THROW(gate_.RunInTransaction(
                   []() -> absl::Status { throw std::runtime_error("boom"); }),
               std::runtime_error);
  EXPECT_THAT(backend_.steps, ElementsAre("ready", "begin", "rollback"));
  EXPECT_FALSE(gate_.InOwnTransaction());
  // The gate is free again: this would deadlock otherwise.
  EXPECT_TRUE(gate_.Write([] { return absl::OkStatus(); }).ok());
}

TEST_F(ConnectionGateTest, AnotherThreadWaitsForTheTransactionToEnd) {
  absl::Notification inside, other_started;
  std::vector<std::string> order;
  std::thread other;
  absl::Status s = gate_.RunInTransaction([&] {
    other = std::thread([&] {
      other_started.Notify();
      EXPECT_FALSE(gate_.InOwnTransaction());
      EXPECT_TRUE(gate_
                      .Write([&] {
                        order.push_back("other thread's write");
                        return absl::OkStatus();
                      })
                      .ok());
    });
    other_started.WaitForNotification();
    absl::SleepFor(absl::Milliseconds(50));
    order.push_back("transaction's end");
    return absl::OkStatus();
  });
  other.join();
  EXPECT_TRUE(s.ok()) << s;
  EXPECT_THAT(order, ElementsAre("transaction's end", "other thread's write"));
}

}  // namespace
}  // namespace det::store
