// A store that fails one commit, the k-th, for every k over a small random
// and small ASHA searches (one with the TPE sampler): the master reloads from
// its store, refuses writes until a probe succeeds, and carries on without a
// restart; each search ends with exactly the trials, lengths and metrics of an
// uninterrupted run (nothing lost, nothing stored twice).
//
// The worker is simulated in process (SimWorker), with the real protocol's
// rules: sequence numbers, resending what was not acknowledged, a Hello
// that lists its runs, a stream that ends when the master closes it. It
// advances its runs in lockstep, one batch per step, and not at all while
// it reconnects, so an outage delays every run alike.
#include <cmath>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "common/rpc/states.h"
#include "common/version.h"
#include "gtest/gtest.h"
#include "master/core/master.h"
#include "master/store/sqlite_store.h"
#include "tests/master/forwarding_store.h"

namespace det::master {
namespace {

// Fails the fail_at-th top-level transaction once, after its work, so the
// store rolls it back as a failed COMMIT would (0: never).
class FailKthCommit : public testing::ForwardingStore {
 public:
  FailKthCommit(std::unique_ptr<store::Store> inner, int fail_at)
      : ForwardingStore(std::move(inner)), fail_at_(fail_at) {}

  absl::Status RunInTransaction(
      const std::function<absl::Status()>& fn) override {
    if (depth_ > 0) return ForwardingStore::RunInTransaction(fn);
    const int n = ++commits_;
    depth_++;
    absl::Status st = ForwardingStore::RunInTransaction([&]() -> absl::Status {
      absl::Status inner = fn();
      if (!inner.ok()) return inner;
      if (n == fail_at_) {
        failed_ = true;
        return absl::UnavailableError("injected: database or disk is full");
      }
      return absl::OkStatus();
    });
    depth_--;
    return st;
  }

  int commits() const { return commits_; }
  bool failed() const { return failed_; }

 private:
  const int fail_at_;
  int commits_ = 0;
  int depth_ = 0;
  bool failed_ = false;
};

// The validation metric a run reports: a function of its hyperparameter
// and its steps only, so every run of a trial reports the same values.
double Accuracy(double x, int64_t steps) {
  return (1.0 - std::fabs(x - 0.6)) *
         (1.0 - 1.0 / (1.0 + static_cast<double>(steps) / 10.0));
}

class SimWorker {
 public:
  SimWorker(Master* master, int slots) : master_(master), slots_(slots) {}

  // One step: reconnect (and resend) if the stream ended, else take the
  // master's messages, advance every run one batch and send.
  void Step() {
    if (!outbox_) {
      if (Connect()) {
        Flush();
      } else {
        master_->Tick();  // the store probe
      }
      return;
    }
    if (!Take()) return;
    Advance();
    Flush();
  }

  bool idle() const { return runs_.empty() && unacked_.empty(); }

 private:
  struct Run {
    int32_t run_id = 0;
    v1::TrialSpec spec;
    std::vector<int32_t> slots;
    int64_t steps = 0;
    bool stopping = false;
    bool kill = false;
  };

  bool Connect() {
    auto outbox = std::make_shared<WorkerOutbox>();
    v1::Hello hello;
    hello.set_worker_id("w0");
    hello.set_protocol_version(kProtocolVersion);
    hello.set_version(kVersion);
    hello.set_host("127.0.0.1");
    hello.set_incarnation("w0-1");
    for (int i = 0; i < slots_; ++i) {
      v1::Slot* s = hello.add_slots();
      s->set_id(i);
      s->set_type("cpu");
    }
    for (const auto& [trial, r] : runs_) {
      v1::RunningTrial* rt = hello.add_running();
      rt->set_trial_id(trial);
      rt->set_run_id(r.run_id);
      for (int32_t s : r.slots) rt->add_slot_ids(s);
    }
    // Ended runs whose exit report is not acknowledged yet.
    for (const v1::WorkerMessage& m : unacked_) {
      const v1::TrialEvent& ev = m.trial_event();
      if (!ev.has_exited() || runs_.count(ev.trial_id())) continue;
      v1::RunningTrial* rt = hello.add_running();
      rt->set_trial_id(ev.trial_id());
      rt->set_run_id(ev.run_id());
      rt->set_exited(true);
    }
    auto welcome = master_->WorkerConnected(hello, "ipv4:127.0.0.1:1", outbox);
    if (!welcome.ok()) return false;
    outbox_ = outbox;
    while (!unacked_.empty() && unacked_.front().seq() <= welcome->last_seq()) {
      unacked_.pop_front();
    }
    for (int64_t id : welcome->stop_trial_ids()) {
      auto it = runs_.find(id);
      if (it != runs_.end()) it->second.stopping = true;
    }
    return true;
  }

  // False when the master ended the stream (its messages are lost).
  bool Take() {
    while (true) {
      if (outbox_->closed()) {
        master_->WorkerDisconnected("w0", outbox_);
        outbox_.reset();
        return false;
      }
      std::optional<v1::MasterMessage> m = outbox_->Pop(absl::ZeroDuration());
      if (!m) return true;
      if (m->has_start_trial()) {
        const v1::StartTrial& st = m->start_trial();
        Run r;
        r.run_id = st.spec().run_id();
        r.spec = st.spec();
        r.slots.assign(st.slot_ids().begin(), st.slot_ids().end());
        if (!st.spec().restore_candidates().empty()) {
          r.steps = st.spec().restore_candidates(0).steps_completed();
        }
        runs_[st.spec().trial_id()] = r;
        v1::TrialEvent ev = Event(st.spec().trial_id(), r.run_id);
        ev.mutable_started()->set_pid(1);
        Emit(std::move(ev));
      } else if (m->has_stop_trial()) {
        const v1::StopTrial& st = m->stop_trial();
        auto it = runs_.find(st.trial_id());
        if (it == runs_.end()) continue;
        if (st.run_id() != 0 && st.run_id() != it->second.run_id) continue;
        it->second.stopping = true;
        it->second.kill = st.kill();
      }
    }
  }

  void Advance() {
    for (auto it = runs_.begin(); it != runs_.end();) {
      const int64_t trial = it->first;
      Run& r = it->second;
      if (r.stopping) {
        if (!r.kill) Checkpoint(trial, r);
        Exit(trial, r,
             r.kill ? v1::EXIT_REASON_KILLED : v1::EXIT_REASON_STOPPED);
        it = runs_.erase(it);
        continue;
      }
      r.steps++;
      const double x = r.spec.hparams().fields().at("x").number_value();
      if (r.steps % 5 == 0) {
        Metrics(trial, r, v1::METRIC_GROUP_TRAINING, "loss",
                1.0 - Accuracy(x, r.steps));
      }
      bool validate = r.steps == r.spec.target_batches();
      for (int64_t p : r.spec.validation_points()) {
        validate = validate || p == r.steps;
      }
      // A trial that decides its length (lengths in a reported metric)
      // validates on its own schedule: every 3 batches.
      const bool own_length = r.spec.target_batches() >= kTrialDecidesLength;
      if (own_length) validate = r.steps % 3 == 0;
      if (validate) {
        v1::TrialEvent ev = Event(trial, r.run_id);
        v1::MetricReport* m = ev.mutable_metrics();
        m->set_group(v1::METRIC_GROUP_VALIDATION);
        m->set_steps_completed(r.steps);
        (*m->mutable_metrics())["validation_accuracy"] = Accuracy(x, r.steps);
        // Samples seen: the time_metric of the metric-length search.
        (*m->mutable_metrics())["samples"] = static_cast<double>(r.steps * 8);
        Emit(std::move(ev));
      }
      if (r.spec.checkpoint_period() > 0 &&
          r.steps % r.spec.checkpoint_period() == 0) {
        Checkpoint(trial, r);
      }
      if (r.steps >= r.spec.target_batches()) {
        Checkpoint(trial, r);
        Exit(trial, r, v1::EXIT_REASON_COMPLETED);
        it = runs_.erase(it);
        continue;
      }
      ++it;
    }
  }

  void Flush() {
    if (!outbox_ || unacked_.empty()) return;
    std::vector<v1::WorkerMessage> batch(unacked_.begin(), unacked_.end());
    Master::WorkerBatchResult r = master_->WorkerMessages("w0", batch);
    while (!unacked_.empty() && unacked_.front().seq() <= r.ack_seq) {
      unacked_.pop_front();
    }
    if (!r.status.ok()) {
      master_->WorkerDisconnected("w0", outbox_);
      outbox_.reset();
    }
  }

  static v1::TrialEvent Event(int64_t trial, int32_t run) {
    v1::TrialEvent ev;
    ev.set_trial_id(trial);
    ev.set_run_id(run);
    return ev;
  }

  void Emit(v1::TrialEvent ev) {
    v1::WorkerMessage m;
    m.set_seq(++seq_);
    *m.mutable_trial_event() = std::move(ev);
    unacked_.push_back(std::move(m));
  }

  void Metrics(int64_t trial, const Run& r, v1::MetricGroup group,
               const std::string& name, double value) {
    v1::TrialEvent ev = Event(trial, r.run_id);
    v1::MetricReport* m = ev.mutable_metrics();
    m->set_group(group);
    m->set_steps_completed(r.steps);
    (*m->mutable_metrics())[name] = value;
    Emit(std::move(ev));
  }

  void Checkpoint(int64_t trial, const Run& r) {
    v1::TrialEvent ev = Event(trial, r.run_id);
    ev.mutable_checkpoint()->set_uuid(
        absl::StrCat("t", trial, "-r", r.run_id, "-s", r.steps));
    ev.mutable_checkpoint()->set_steps_completed(r.steps);
    Emit(std::move(ev));
  }

  void Exit(int64_t trial, const Run& r, v1::ExitReason why) {
    v1::TrialEvent ev = Event(trial, r.run_id);
    ev.mutable_exited()->set_reason(why);
    Emit(std::move(ev));
  }

  Master* master_;
  const int slots_;
  std::shared_ptr<WorkerOutbox> outbox_;
  int64_t seq_ = 0;
  std::deque<v1::WorkerMessage> unacked_;
  std::map<int64_t, Run> runs_;  // by trial id
};

constexpr char kYaml[] = R"(name: store failures
entrypoint: sim
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0}
reproducibility: {experiment_seed: 11}
min_checkpoint_period: {batches: 10}
max_restarts: 0
searcher:
{SEARCHER}
)";

constexpr char kRandom[] = R"(  name: random
  metric: validation_accuracy
  smaller_is_better: false
  max_trials: 5
  max_length: {batches: 30})";

constexpr char kAsha[] = R"(  name: adaptive_asha
  metric: validation_accuracy
  smaller_is_better: false
  max_trials: 10
  max_rungs: 3
  divisor: 2
  max_length: {batches: 32})";

// ASHA with the TPE sampler, two trials at a time: after 3 results each
// new trial's x comes from the estimator, so a reload that lost a result
// or a trial's point would show as other trials.
constexpr char kAshaTpe[] = R"(  name: adaptive_asha
  metric: validation_accuracy
  smaller_is_better: false
  max_trials: 10
  max_rungs: 3
  divisor: 2
  max_length: {batches: 32}
  max_concurrent_trials: 2
  sampler: tpe
  tpe: {n_startup_trials: 3})";

// ASHA with rungs in a metric the trials report (Determined 0.38's
// time_metric): 8 samples a batch, rungs at 32, 64, 128 samples.
constexpr char kAshaMetric[] = R"(  name: adaptive_asha
  metric: validation_accuracy
  smaller_is_better: false
  max_trials: 8
  max_rungs: 3
  divisor: 2
  time_metric: samples
  max_time: 128)";

// What a search ends with, per trial (by hyperparameters): its state,
// length, and every stored metric report.
struct Outcome {
  v1::State experiment_state = v1::STATE_UNSPECIFIED;
  std::string best;  // the best trial's hyperparameters
  std::map<std::string, std::string> trials;
  int commits = 0;
  bool failed = false;
  std::string error;
};

std::string Key(const v1::Trial& t) {
  return absl::StrCat("x=", t.hparams().fields().at("x").number_value());
}

Outcome RunSearch(const std::string& yaml, int fail_at) {
  Outcome out;
  auto sq = store::SqliteStore::Open(":memory:");
  if (!sq.ok()) {
    out.error = sq.status().ToString();
    return out;
  }
  auto owned = std::make_unique<FailKthCommit>(std::move(*sq), fail_at);
  FailKthCommit* store = owned.get();
  MasterOptions opts;
  opts.checkpoint_root = "/nonexistent/checkpoints";
  opts.tick_interval = absl::ZeroDuration();  // the test ticks
  opts.store_probe_initial = absl::ZeroDuration();
  opts.snapshot_every = 3;  // snapshots and journal replays both happen
  auto created = Master::Create(std::move(owned), opts);
  if (!created.ok()) {
    out.error = created.status().ToString();
    return out;
  }
  std::unique_ptr<Master> master = std::move(*created);
  SimWorker worker(master.get(), 3);
  // A refused create made nothing: the user tries again.
  int64_t id = 0;
  for (int attempt = 0; attempt < 3 && id == 0; ++attempt) {
    auto x = master->CreateExperiment(yaml, "", true, false, nullptr);
    if (x.ok()) {
      id = x->id();
      break;
    }
    master->Tick();
    auto listed = master->ListExperiments();
    if (listed.ok() && !listed->empty()) id = listed->front().id();
  }
  if (id == 0) {
    out.error = "the experiment was never created";
    return out;
  }
  v1::Experiment x;
  for (int step = 0; step < 2000; ++step) {
    worker.Step();
    auto got = master->GetExperiment(id);
    if (got.ok()) x = *got;
    if (IsTerminal(x.state()) && worker.idle()) break;
  }
  out.experiment_state = x.state();
  auto trials = master->ListTrials(id);
  if (!trials.ok()) {
    out.error = trials.status().ToString();
    return out;
  }
  for (const v1::Trial& t : *trials) {
    std::string s =
        absl::StrCat(StateName(t.state()), " target ", t.target_batches(),
                     " steps ", t.steps_completed(), ";");
    for (auto group :
         {v1::METRIC_GROUP_TRAINING, v1::METRIC_GROUP_VALIDATION}) {
      auto reports = master->GetTrialMetrics(t.id(), group);
      if (!reports.ok()) {
        out.error = reports.status().ToString();
        return out;
      }
      for (const v1::MetricReport& r : *reports) {
        const std::map<std::string, double> sorted(r.metrics().begin(),
                                                   r.metrics().end());
        for (const auto& [name, v] : sorted) {
          absl::StrAppend(&s, " ", name, "@", r.steps_completed(), "=", v);
        }
      }
    }
    out.trials[Key(t)] = s;
    if (t.id() == x.best_trial_id()) out.best = Key(t);
  }
  out.commits = store->commits();
  out.failed = store->failed();
  return out;
}

class StoreFailureTest : public ::testing::TestWithParam<const char*> {};

TEST_P(StoreFailureTest, EveryFailedCommitEndsLikeAnUninterruptedSearch) {
  const std::string yaml =
      absl::StrReplaceAll(kYaml, {{"{SEARCHER}", GetParam()}});
  Outcome want = RunSearch(yaml, 0);
  ASSERT_TRUE(want.error.empty()) << want.error;
  ASSERT_EQ(want.experiment_state, v1::STATE_COMPLETED);
  ASSERT_GE(want.trials.size(), 5u);
  ASSERT_GT(want.commits, 15);
  for (int k = 1; k <= want.commits; ++k) {
    SCOPED_TRACE(absl::StrCat("commit ", k, " of ", want.commits, " fails"));
    Outcome got = RunSearch(yaml, k);
    ASSERT_TRUE(got.error.empty()) << got.error;
    ASSERT_TRUE(got.failed) << "the injected failure happened";
    EXPECT_EQ(got.experiment_state, v1::STATE_COMPLETED);
    EXPECT_EQ(got.best, want.best);
    EXPECT_EQ(got.trials, want.trials);
    if (::testing::Test::HasFailure()) break;  // one k's story is enough
  }
}

INSTANTIATE_TEST_SUITE_P(Searchers, StoreFailureTest,
                         ::testing::Values(kRandom, kAsha, kAshaMetric,
                                           kAshaTpe),
                         [](const auto& info) {
                           return std::string(info.param) == kRandom ? "Random"
                                  : std::string(info.param) == kAsha ? "Asha"
                                  : std::string(info.param) == kAshaTpe
                                      ? "AshaWithTpe"
                                      : "AshaOnAReportedMetric";
                         });

// Rungs in a reported metric: each trial is stopped by the master once it
// has reported enough samples for its last rung, and the trials ASHA
// promotes to the top report 128 samples or more.
TEST(MetricLengthTest, TrialsStopAtTheirRungInTheReportedMetric) {
  const std::string yaml =
      absl::StrReplaceAll(kYaml, {{"{SEARCHER}", kAshaMetric}});
  Outcome got = RunSearch(yaml, 0);
  ASSERT_TRUE(got.error.empty()) << got.error;
  EXPECT_EQ(got.experiment_state, v1::STATE_COMPLETED);
  ASSERT_EQ(got.trials.size(), 8u);
  int at_top = 0;
  for (const auto& [key, s] : got.trials) {
    EXPECT_NE(s.find("COMPLETED"), std::string::npos) << key << ": " << s;
    // Validations every 3 batches (24 samples): the first at or past 32
    // samples is batch 6, past 128 is batch 18; a trial runs at most one
    // step past the validation that ended it.
    EXPECT_EQ(s.find("validation_accuracy@21="), std::string::npos)
        << key << " ran past its last rung: " << s;
    if (s.find("validation_accuracy@18=") != std::string::npos) at_top++;
  }
  EXPECT_GE(at_top, 1) << "some trial reached the top rung";
  EXPECT_LT(at_top, 8) << "ASHA stopped some trials early";
}

}  // namespace
}  // namespace det::master
