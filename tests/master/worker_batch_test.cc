// The master stores the messages of a worker stream in batches: everything
// received since the last batch goes into ONE transaction and is
// acknowledged with ONE ack (the highest seq stored). These tests would
// fail if a batch were split into a transaction per message, if a resent
// batch were stored twice, if a bad message lost the good ones before it,
// if an ack ran ahead of what was committed, if a message that can never
// be stored blocked the ones after it (the worker would resend it forever),
// or if a transient store failure dropped a message instead of leaving it
// to be resent.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/version.h"
#include "det/v1/worker.grpc.pb.h"
#include "gtest/gtest.h"
#include "master/api/worker_service.h"
#include "master/core/master.h"
#include "master/http/metrics_registry.h"
#include "master/store/sqlite_store.h"
#include "tests/master/forwarding_store.h"
#include "tests/master/worker_hello.h"
#include "tests/testing/temp_dir.h"

namespace det::master {
namespace {

using ::det::testing::MakeHello;

constexpr char kYaml[] = R"(name: batch
entrypoint: /bin/true
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0}
searcher:
  name: random
  metric: validation_accuracy
  smaller_is_better: false
  max_trials: 1
  max_length: {batches: 1000000}
max_restarts: 0
)";

v1::WorkerMessage Report(int64_t seq, int64_t trial_id, int32_t run_id,
                         int64_t steps,
                         v1::MetricGroup group = v1::METRIC_GROUP_TRAINING) {
  v1::WorkerMessage m;
  m.set_seq(seq);
  v1::TrialEvent* ev = m.mutable_trial_event();
  ev->set_trial_id(trial_id);
  ev->set_run_id(run_id);
  v1::MetricReport* r = ev->mutable_metrics();
  r->set_trial_id(trial_id);
  r->set_group(group);
  r->set_steps_completed(steps);
  r->set_time_us(absl::ToUnixMicros(absl::Now()));
  (*r->mutable_metrics())["loss"] = 1.0 / static_cast<double>(steps + 1);
  return m;
}

v1::WorkerMessage Heartbeat(int64_t seq) {
  v1::WorkerMessage m;
  m.set_seq(seq);
  m.mutable_heartbeat();
  return m;
}

// The SQLite store, with an injected transient failure: AddMetricReport
// fails like a disk I/O error for reports at `fail_steps`, `failures` times.
class FlakyStore : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;

  void FailReportsAt(int64_t steps, int times) {
    fail_steps_ = steps;
    failures_left_ = times;
  }
  int failures_left() const { return failures_left_; }

  absl::StatusOr<bool> AddMetricReport(const v1::MetricReport& r) override {
    if (failures_left_ > 0 && r.steps_completed() == fail_steps_) {
      --failures_left_;
      return absl::UnavailableError(
          "adding a metric report: disk I/O error (injected)");
    }
    return ForwardingStore::AddMetricReport(r);
  }

 private:
  int64_t fail_steps_ = -1;
  int failures_left_ = 0;
};

class WorkerBatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    OpenMaster();
    std::vector<std::string> warnings;
    auto x = master_->CreateExperiment(kYaml, "", /*activate=*/true,
                                       /*validate_only=*/false, &warnings);
    ASSERT_TRUE(x.ok()) << x.status();
    Connect();
    // The one trial is placed on the one slot at once.
    std::optional<v1::MasterMessage> m;
    while ((m = outbox_->Pop(absl::Seconds(5))) && !m->has_start_trial()) {
    }
    ASSERT_TRUE(m.has_value()) << "no StartTrial";
    trial_id_ = m->start_trial().spec().trial_id();
    run_id_ = m->start_trial().spec().run_id();
  }

  void TearDown() override {
    master_.reset();  // before dir_ goes
  }

  void OpenMaster() {
    auto store = store::SqliteStore::Open(dir_.File("master.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    (*store)->SetWriteObserver([this](absl::Duration) { writes_++; });
    auto flaky = std::make_unique<FlakyStore>(std::move(*store));
    flaky_ = flaky.get();
    metrics_ = std::make_unique<http::MetricsRegistry>();
    MasterOptions opts;
    opts.checkpoint_root = dir_.File("checkpoints");
    opts.metrics = metrics_.get();
    opts.snapshot_every = snapshot_every_;
    // After a failed transaction the first probe is due at once (Tick).
    opts.store_probe_initial = absl::ZeroDuration();
    auto m = Master::Create(std::move(flaky), opts);
    ASSERT_TRUE(m.ok()) << m.status();
    master_ = std::move(*m);
  }

  // (Re)connects worker w0; returns the seq the master says it stored.
  int64_t Connect() {
    outbox_ = std::make_shared<WorkerOutbox>();
    // Like a real worker, w0 says which run it still has.
    v1::Hello hello = MakeHello("w0");
    if (trial_id_ != 0) {
      v1::RunningTrial* r = hello.add_running();
      r->set_trial_id(trial_id_);
      r->set_run_id(run_id_);
      r->add_slot_ids(0);
    }
    auto welcome = master_->WorkerConnected(hello, "ipv4:127.0.0.1:1", outbox_);
    EXPECT_TRUE(welcome.ok()) << welcome.status();
    return welcome.ok() ? welcome->last_seq() : -1;
  }

  size_t Stored() {
    auto r = master_->GetTrialMetrics(trial_id_, v1::METRIC_GROUP_TRAINING);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->size() : 0;
  }

  std::vector<v1::WorkerMessage> Reports(int64_t first_seq, int n) {
    std::vector<v1::WorkerMessage> v;
    for (int i = 0; i < n; ++i) {
      v.push_back(Report(first_seq + i, trial_id_, run_id_, first_seq + i));
    }
    return v;
  }

  // Every log line of the trial, as text.
  std::string TrialLogs() {
    auto logs = master_->GetTrialLogs(trial_id_, 0, 1000);
    EXPECT_TRUE(logs.ok()) << logs.status();
    std::string out;
    if (!logs.ok()) return out;
    for (const v1::TrialLogLine& l : *logs) {
      absl::StrAppend(&out, l.source(), ": ", l.line(), "\n");
    }
    return out;
  }

  // The master's WorkerService on a free loopback port, and a stream to it
  // on which worker w0 has said hello (the in-process connection of w0 is
  // dropped first). The server shuts down with it.
  struct GrpcWorker {
    std::unique_ptr<WorkerService> service;
    std::unique_ptr<grpc::Server> server;
    std::unique_ptr<v1::WorkerService::Stub> stub;
    grpc::ClientContext ctx;
    std::unique_ptr<
        grpc::ClientReaderWriter<v1::WorkerMessage, v1::MasterMessage>>
        stream;
    int64_t base = 0;  // the seq the master said (Welcome) it had stored
    ~GrpcWorker() {
      // In-flight calls (a test that failed midway) are cancelled.
      if (server)
        server->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    }
  };
  void ConnectOverGrpc(GrpcWorker* w) {
    master_->WorkerDisconnected("w0", outbox_);
    w->service = std::make_unique<WorkerService>(master_.get(), "");
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(w->service.get());
    w->server = builder.BuildAndStart();
    ASSERT_NE(w->server, nullptr);
    ASSERT_GT(port, 0);
    w->stub = v1::WorkerService::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
    w->stream = w->stub->Connect(&w->ctx);
    v1::WorkerMessage hello;
    *hello.mutable_hello() = MakeHello("w0");
    ASSERT_TRUE(w->stream->Write(hello));
    v1::MasterMessage in;
    ASSERT_TRUE(w->stream->Read(&in));
    ASSERT_TRUE(in.has_welcome());
    w->base = in.welcome().last_seq();
  }

  det::test::TempDir dir_{"det-agent-batch"};  // removed last
  int64_t snapshot_every_ = 0;                 // MasterOptions::snapshot_every
  std::atomic<int> writes_{0};  // outermost transactions and lone writes
  std::unique_ptr<http::MetricsRegistry> metrics_;
  FlakyStore* flaky_ = nullptr;  // owned by master_
  std::unique_ptr<Master> master_;
  std::shared_ptr<WorkerOutbox> outbox_;
  int64_t trial_id_ = 0;
  int32_t run_id_ = 0;
};

TEST_F(WorkerBatchTest, BatchIsStoredInOneTransactionAndAckedOnce) {
  std::vector<v1::WorkerMessage> batch = Reports(1, 200);
  const int before = writes_.load();
  Master::WorkerBatchResult r = master_->WorkerMessages("w0", batch);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.ack_seq, 200);
  EXPECT_EQ(writes_.load() - before, 1) << "one transaction for the batch";
  EXPECT_EQ(Stored(), 200u);
}

TEST_F(WorkerBatchTest, HeartbeatsInABatchAreCoveredByTheAck) {
  std::vector<v1::WorkerMessage> batch = Reports(1, 3);
  batch.push_back(Heartbeat(4));
  batch.push_back(Report(5, trial_id_, run_id_, 5));
  batch.push_back(Heartbeat(6));
  const int before = writes_.load();
  Master::WorkerBatchResult r = master_->WorkerMessages("w0", batch);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.ack_seq, 6);
  EXPECT_EQ(writes_.load() - before, 1);
  EXPECT_EQ(Stored(), 4u);
  // Heartbeats alone need no transaction.
  Master::WorkerBatchResult h =
      master_->WorkerMessages("w0", std::vector{Heartbeat(7), Heartbeat(8)});
  EXPECT_TRUE(h.status.ok());
  EXPECT_EQ(h.ack_seq, 8);
  EXPECT_EQ(writes_.load() - before, 1);
}

TEST_F(WorkerBatchTest, UnackedBatchResentAfterReconnectIsStoredOnce) {
  std::vector<v1::WorkerMessage> batch = Reports(1, 50);
  ASSERT_TRUE(master_->WorkerMessages("w0", batch).status.ok());
  // The ack was lost with the stream: the worker reconnects, and resends
  // the batch (plus more) as its outbox still holds it.
  master_->WorkerDisconnected("w0", outbox_);
  EXPECT_EQ(Connect(), 50);
  std::vector<v1::WorkerMessage> again = Reports(1, 80);
  const int before = writes_.load();
  Master::WorkerBatchResult r = master_->WorkerMessages("w0", again);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.ack_seq, 80);
  EXPECT_EQ(writes_.load() - before, 1);
  EXPECT_EQ(Stored(), 80u);
  // All of it again: nothing new, no transaction, still acknowledged.
  r = master_->WorkerMessages("w0", again);
  EXPECT_TRUE(r.status.ok());
  EXPECT_EQ(r.ack_seq, 80);
  EXPECT_EQ(writes_.load() - before, 1);
  EXPECT_EQ(Stored(), 80u);
}

TEST_F(WorkerBatchTest, BatchSurvivesAMasterRestartAndIsNotStoredTwice) {
  ASSERT_TRUE(master_->WorkerMessages("w0", Reports(1, 100)).status.ok());
  master_.reset();  // the master dies after the commit, before the ack
  OpenMaster();
  EXPECT_EQ(Connect(), 100) << "the stored seq survives the restart";
  Master::WorkerBatchResult r = master_->WorkerMessages("w0", Reports(1, 120));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.ack_seq, 120);
  EXPECT_EQ(Stored(), 120u);
  auto all = master_->GetTrialMetrics(trial_id_, v1::METRIC_GROUP_TRAINING);
  ASSERT_TRUE(all.ok());
  for (size_t i = 0; i < all->size(); ++i) {
    EXPECT_EQ((*all)[i].steps_completed(), static_cast<int64_t>(i) + 1);
  }
}

TEST_F(WorkerBatchTest, PoisonMessageIsRejectedAndTheRestOfTheBatchStored) {
  // [good, poison, good]: the middle one reports no metric group, which the
  // store refuses however often it is sent (INVALID_ARGUMENT).
  std::vector<v1::WorkerMessage> batch = {
      Report(1, trial_id_, run_id_, 1),
      Report(2, trial_id_, run_id_, 2, v1::METRIC_GROUP_UNSPECIFIED),
      Report(3, trial_id_, run_id_, 3)};
  const int before = writes_.load();
  Master::WorkerBatchResult r = master_->WorkerMessages("w0", batch);
  EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.ack_seq, 3) << "the ack covers all three";
  EXPECT_EQ(r.rejected, 1);
  EXPECT_EQ(writes_.load() - before, 1) << "one transaction for the batch";
  auto stored = master_->GetTrialMetrics(trial_id_, v1::METRIC_GROUP_TRAINING);
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->size(), 2u);
  EXPECT_EQ((*stored)[0].steps_completed(), 1);
  EXPECT_EQ((*stored)[1].steps_completed(), 3);
  // Counted, and noted where the trial's owner looks.
  EXPECT_EQ(metrics_->rejected_worker_messages(), 1);
  std::string text;
  metrics_->AppendText(&text);
  EXPECT_TRUE(absl::StrContains(text, "det_worker_messages_rejected_total 1\n"))
      << text;
  std::string logs = TrialLogs();
  EXPECT_TRUE(absl::StrContains(logs,
                                "master: the master rejected a metric "
                                "report of run "))
      << logs;
  EXPECT_TRUE(absl::StrContains(logs, "message 2")) << logs;
  EXPECT_TRUE(absl::StrContains(logs, "INVALID_ARGUMENT")) << logs;
  // The stored seq covers it: after a reconnect nothing is resent.
  master_->WorkerDisconnected("w0", outbox_);
  EXPECT_EQ(Connect(), 3);
}

TEST_F(WorkerBatchTest, PoisonMessagesDoNotBlockTheWorkersLaterMessages) {
  // A report for a trial that never existed (NOT_FOUND: there is no trial
  // to note it in), one with negative steps, and one with no group, among
  // good ones; then the trial's exit.
  std::vector<v1::WorkerMessage> batch = Reports(1, 6);
  batch[0] = Report(1, trial_id_ + 1000, 1, 1);
  batch[2] = Report(3, trial_id_, run_id_, -3);
  batch[5] = Report(6, trial_id_, run_id_, 6, v1::METRIC_GROUP_UNSPECIFIED);
  v1::WorkerMessage exit;
  exit.set_seq(7);
  exit.mutable_trial_event()->set_trial_id(trial_id_);
  exit.mutable_trial_event()->set_run_id(run_id_);
  exit.mutable_trial_event()->mutable_exited()->set_reason(
      v1::EXIT_REASON_COMPLETED);
  batch.push_back(exit);
  Master::WorkerBatchResult r = master_->WorkerMessages("w0", batch);
  EXPECT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.ack_seq, 7);
  EXPECT_EQ(r.rejected, 3);
  EXPECT_EQ(Stored(), 3u);  // seqs 2, 4, 5
  EXPECT_EQ(metrics_->rejected_worker_messages(), 3);
  auto t = master_->GetTrial(trial_id_);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->state(), v1::STATE_COMPLETED) << "the exit after them landed";
  auto unknown =
      master_->GetTrialMetrics(trial_id_ + 1000, v1::METRIC_GROUP_UNSPECIFIED);
  EXPECT_TRUE(!unknown.ok() || unknown->empty());
}

TEST_F(WorkerBatchTest, TransientFailureIsNotAckedAndTheResendIsStoredOnce) {
  // Storing message 2 fails like a disk I/O error, once.
  flaky_->FailReportsAt(2, 1);
  Master::WorkerBatchResult r = master_->WorkerMessages("w0", Reports(1, 3));
  EXPECT_FALSE(r.status.ok());
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable) << r.status;
  EXPECT_NE(r.status.message().find("message 2"), std::string_view::npos)
      << r.status;
  EXPECT_EQ(r.ack_seq, 1) << "nothing from the failing message on is acked";
  EXPECT_EQ(r.rejected, 0);
  EXPECT_EQ(Stored(), 1u);
  EXPECT_EQ(metrics_->rejected_worker_messages(), 0);
  EXPECT_EQ(flaky_->failures_left(), 0);
  // The master reloaded and refuses writes until a probe succeeds.
  EXPECT_FALSE(master_->GetStoreHealth().available);
  EXPECT_TRUE(outbox_->closed()) << "the reload ends the worker's stream";
  master_->Tick();  // the probe
  EXPECT_TRUE(master_->GetStoreHealth().available);
  // After reconnecting, the worker resends from 2 on (and 1 again, as if
  // its ack had been lost too).
  master_->WorkerDisconnected("w0", outbox_);
  EXPECT_EQ(Connect(), 1);
  r = master_->WorkerMessages("w0", Reports(1, 3));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.ack_seq, 3);
  auto stored = master_->GetTrialMetrics(trial_id_, v1::METRIC_GROUP_TRAINING);
  ASSERT_TRUE(stored.ok()) << stored.status();
  ASSERT_EQ(stored->size(), 3u) << "each stored once";
  for (size_t i = 0; i < stored->size(); ++i) {
    EXPECT_EQ((*stored)[i].steps_completed(), static_cast<int64_t>(i) + 1);
  }
  EXPECT_FALSE(absl::StrContains(TrialLogs(), "rejected"));
}

TEST_F(WorkerBatchTest, FirstMessageFailingTransientlyStoresAndAcksNothing) {
  flaky_->FailReportsAt(1, 1);
  Master::WorkerBatchResult r = master_->WorkerMessages("w0", Reports(1, 3));
  EXPECT_FALSE(r.status.ok());
  EXPECT_EQ(r.ack_seq, 0);
  EXPECT_EQ(Stored(), 0u);
  master_->Tick();  // the probe ends the outage
  master_->WorkerDisconnected("w0", outbox_);
  EXPECT_EQ(Connect(), 0);
  r = master_->WorkerMessages("w0", Reports(1, 3));
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.ack_seq, 3);
  EXPECT_EQ(Stored(), 3u);
}

// Over gRPC: a worker that sends many messages without waiting gets them
// all stored and acknowledged with fewer acks than messages, the last
// covering the highest seq, and acks that never run ahead of the store.
TEST_F(WorkerBatchTest, StreamAcksBatchesOverGrpc) {
  GrpcWorker w;
  ASSERT_NO_FATAL_FAILURE(ConnectOverGrpc(&w));
  auto& stream = w.stream;
  const int64_t base = w.base;
  v1::MasterMessage in;

  constexpr int kN = 2000;
  for (int i = 1; i <= kN; ++i) {
    ASSERT_TRUE(stream->Write(Report(base + i, trial_id_, run_id_, base + i)));
  }
  int acks = 0;
  int64_t last = base;
  while (last < base + kN && stream->Read(&in)) {
    if (!in.has_ack()) continue;
    ++acks;
    EXPECT_GT(in.ack().seq(), last) << "acks only move forward";
    last = in.ack().seq();
    // Acknowledged means stored.
    EXPECT_GE(static_cast<int64_t>(Stored()), last - base);
  }
  EXPECT_EQ(last, base + kN);
  EXPECT_LT(acks, kN) << "one ack per message: the stream is not batched";
  EXPECT_EQ(Stored(), static_cast<size_t>(kN));
  stream->WritesDone();
  stream->Finish().IgnoreError();  // the master ends the call when done
}

// A validation metric that is NaN or infinite (a diverged model) is fed to
// the searcher and journaled; JSON has no such numbers, and a journal
// entry the master cannot read back would fail every restart.
TEST_F(WorkerBatchTest, NonFiniteValidationMetricSurvivesAMasterRestart) {
  snapshot_every_ = 1000;  // no snapshot: the restart replays the journal
  master_.reset();
  OpenMaster();
  Connect();
  // The trial's one validation point is at its length.
  const int64_t end = 1000000;
  v1::WorkerMessage val =
      Report(1, trial_id_, run_id_, end, v1::METRIC_GROUP_VALIDATION);
  (*val.mutable_trial_event()
        ->mutable_metrics()
        ->mutable_metrics())["validation_accuracy"] =
      std::numeric_limits<double>::quiet_NaN();
  Master::WorkerBatchResult r = master_->WorkerMessages("w0", {val});
  ASSERT_TRUE(r.status.ok()) << r.status;
  ASSERT_EQ(r.ack_seq, 1);
  EXPECT_EQ(r.rejected, 0);

  master_.reset();
  OpenMaster();  // replays the journal, the NaN included
  ASSERT_NE(master_, nullptr);
  EXPECT_EQ(Connect(), 1);
  v1::WorkerMessage exit;
  exit.set_seq(2);
  exit.mutable_trial_event()->set_trial_id(trial_id_);
  exit.mutable_trial_event()->set_run_id(run_id_);
  exit.mutable_trial_event()->mutable_exited()->set_reason(
      v1::EXIT_REASON_COMPLETED);
  r = master_->WorkerMessages("w0", {exit});
  ASSERT_TRUE(r.status.ok()) << r.status;
  auto experiments = master_->ListExperiments();
  ASSERT_TRUE(experiments.ok()) << experiments.status();
  ASSERT_EQ(experiments->size(), 1u);
  EXPECT_EQ((*experiments)[0].state(), v1::STATE_COMPLETED);
}

// Over gRPC: a poison message in the middle of a stream is acknowledged
// with the rest, the stream goes on, and when the worker ends the stream
// the master ends the call with OK (not CANCELLED).
TEST_F(WorkerBatchTest, StreamGoesOnPastAPoisonMessageAndEndsWithOk) {
  GrpcWorker w;
  ASSERT_NO_FATAL_FAILURE(ConnectOverGrpc(&w));
  auto& stream = w.stream;
  const int64_t base = w.base;
  v1::MasterMessage in;

  constexpr int kN = 50;
  for (int i = 1; i <= kN; ++i) {
    const int64_t seq = base + i;
    ASSERT_TRUE(stream->Write(i == 10 ? Report(seq, trial_id_, run_id_, seq,
                                               v1::METRIC_GROUP_UNSPECIFIED)
                                      : Report(seq, trial_id_, run_id_, seq)));
  }
  int64_t last = base;
  while (last < base + kN && stream->Read(&in)) {
    if (in.has_ack()) last = in.ack().seq();
  }
  EXPECT_EQ(last, base + kN) << "acknowledged past the poison message";
  EXPECT_EQ(Stored(), static_cast<size_t>(kN - 1));
  EXPECT_EQ(metrics_->rejected_worker_messages(), 1);
  ASSERT_TRUE(stream->WritesDone());
  while (stream->Read(&in)) {
  }
  grpc::Status end = stream->Finish();
  EXPECT_TRUE(end.ok()) << end.error_code() << ": " << end.error_message();
}

}  // namespace
}  // namespace det::master
