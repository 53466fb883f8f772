// The real det-worker binary against a fake master (tests/worker/
// fake_master.h), running det-fake-trial and shell entrypoints.
#include <signal.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/archive/context_archive.h"
#include "common/value.h"
#include "examples/fake_trial/fake_model.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "tests/worker/fake_master.h"
#include "tests/worker/worker_process.h"

namespace det::testing {
namespace {

namespace fs = std::filesystem;
using Received = FakeMaster::Received;

const std::string kFakeTrial = std::string(DET_BIN_DIR) + "/det-fake-trial";

bool HasEvent(const std::vector<Received>& all, int64_t trial_id,
              v1::TrialEvent::EventCase what) {
  for (const Received& r : all) {
    if (r.msg.has_trial_event() && r.msg.trial_event().trial_id() == trial_id &&
        r.msg.trial_event().event_case() == what) {
      return true;
    }
  }
  return false;
}

class WorkerTest : public ::testing::Test {
 protected:
  void StartWorker(int slots, const std::vector<std::string>& extra = {},
                   const std::vector<std::string>& env = {}) {
    std::vector<std::string> args = {"--master",
                                     master_.address(),
                                     "--name",
                                     "test-worker",
                                     "--slots",
                                     std::to_string(slots),
                                     "--cpu-only",
                                     "--work-dir",
                                     tmp_.path() + "/work",
                                     "--heartbeat-ms",
                                     "100",
                                     "--stop-timeout",
                                     "5s",
                                     "--trial-binary",
                                     kFakeTrial};
    args.insert(args.end(), extra.begin(), extra.end());
    worker_ =
        std::make_unique<WorkerProcess>(args, tmp_.path() + "/worker.log", env);
    ASSERT_GT(worker_->pid(), 0);
    ASSERT_TRUE(Welcomed()) << worker_->Log();
  }

  bool Welcomed() {
    const absl::Time deadline = absl::Now() + absl::Seconds(15);
    while (master_.connections() == 0 && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
    }
    return master_.connections() > 0;
  }

  v1::TrialSpec Spec(int64_t trial_id, const ValueMap& hparams,
                     int64_t target) {
    v1::TrialSpec spec;
    spec.set_experiment_id(3);
    spec.set_trial_id(trial_id);
    spec.set_run_id(0);
    spec.set_target_batches(target);
    spec.set_checkpoint_dir(tmp_.path() + "/checkpoints");
    ToProto(hparams, spec.mutable_hparams());
    return spec;
  }

  void Start(const v1::TrialSpec& spec, std::vector<int32_t> slots = {0}) {
    v1::MasterMessage m;
    *m.mutable_start_trial()->mutable_spec() = spec;
    for (int32_t s : slots) m.mutable_start_trial()->add_slot_ids(s);
    ASSERT_TRUE(master_.Send(m));
  }

  void Stop(int64_t trial_id, bool kill, int64_t timeout_ms = 0) {
    v1::MasterMessage m;
    m.mutable_stop_trial()->set_trial_id(trial_id);
    m.mutable_stop_trial()->set_kill(kill);
    m.mutable_stop_trial()->set_timeout_ms(timeout_ms);
    ASSERT_TRUE(master_.Send(m));
  }

  // All log lines of a trial, "source: line".
  std::vector<std::string> Logs(int64_t trial_id) {
    std::vector<std::string> out;
    for (const Received& r : master_.TrialEvents(trial_id)) {
      for (const v1::LogLine& l : r.msg.trial_event().logs().lines()) {
        out.push_back(absl::StrCat(l.source(), ": ", l.line()));
      }
    }
    return out;
  }

  bool LogsContain(int64_t trial_id, const std::string& needle) {
    for (const std::string& l : Logs(trial_id)) {
      if (absl::StrContains(l, needle)) return true;
    }
    return false;
  }

  void TearDown() override {
    if (HasFailure() && worker_ != nullptr) {
      std::fprintf(stderr, "---- det-worker log ----\n%s\n",
                   worker_->Log().c_str());
    }
    std::set<pid_t> pids;
    for (const Received& r : master_.TrialEvents()) {
      if (r.msg.trial_event().has_started()) {
        pids.insert(r.msg.trial_event().started().pid());
      }
    }
    pids.insert(extra_pids_.begin(), extra_pids_.end());
    worker_.reset();  // SIGKILL if still running
    for (pid_t pid : pids) {
      EXPECT_TRUE(WaitGone(pid)) << "process " << pid << " outlived the test";
    }
  }

  TempDir tmp_;
  FakeMaster master_;
  std::unique_ptr<WorkerProcess> worker_;
  std::vector<pid_t> extra_pids_;
};

TEST_F(WorkerTest, RegistersItsSlotsAndHeartbeats) {
  StartWorker(3);
  ASSERT_EQ(master_.hellos().size(), 1u);
  const v1::Hello h = master_.hellos()[0];
  EXPECT_EQ(h.worker_id(), "test-worker");
  EXPECT_EQ(h.protocol_version(), 1);
  EXPECT_FALSE(h.version().empty());
  EXPECT_FALSE(h.incarnation().empty());
  EXPECT_EQ(h.running_size(), 0);
  ASSERT_EQ(h.slots_size(), 3);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(h.slots(i).id(), i);
    EXPECT_EQ(h.slots(i).type(), "cpu");
    EXPECT_EQ(h.slots(i).device(), "cpu");
  }
  ASSERT_TRUE(master_.WaitFor([](const std::vector<Received>& all) {
    int n = 0;
    for (const Received& r : all) n += r.msg.has_heartbeat() ? 1 : 0;
    return n >= 3;
  }));
  int64_t prev = 0;
  for (const Received& r : master_.received()) {
    EXPECT_GT(r.msg.seq(), prev) << "seq must increase";
    prev = r.msg.seq();
    EXPECT_GT(r.msg.heartbeat().time_us(), 0);
  }
}

TEST_F(WorkerTest, RunsAFakeTrialAndRelaysEverything) {
  StartWorker(1);
  ValueMap hp = {{"x", 0.25}, {"y", 0.5}, {"report_every", 10}};
  v1::TrialSpec spec = Spec(7, hp, 50);
  spec.add_validation_points(25);
  Start(spec);

  v1::TrialExited exited = master_.WaitExited(7);
  ASSERT_EQ(exited.reason(), v1::EXIT_REASON_COMPLETED) << exited.message();
  EXPECT_EQ(exited.exit_code(), 0);
  EXPECT_EQ(exited.steps_completed(), 50);

  auto events = master_.TrialEvents(7);
  ASSERT_FALSE(events.empty());
  EXPECT_TRUE(events.front().msg.trial_event().has_started());
  EXPECT_GT(events.front().msg.trial_event().started().pid(), 0);
  EXPECT_TRUE(events.back().msg.trial_event().has_exited());

  auto fake_hp = fake::ParseHParams(hp);
  ASSERT_TRUE(fake_hp.ok());
  std::vector<int64_t> training_steps;
  std::map<int64_t, double> validation;
  std::vector<v1::Checkpoint> checkpoints;
  for (const Received& r : events) {
    const v1::TrialEvent& ev = r.msg.trial_event();
    EXPECT_EQ(ev.run_id(), 0);
    if (ev.has_metrics()) {
      if (ev.metrics().group() == v1::METRIC_GROUP_TRAINING) {
        training_steps.push_back(ev.metrics().steps_completed());
        EXPECT_TRUE(ev.metrics().metrics().contains("loss"));
      } else {
        validation[ev.metrics().steps_completed()] =
            ev.metrics().metrics().at("validation_accuracy");
      }
    }
    if (ev.has_checkpoint()) checkpoints.push_back(ev.checkpoint());
  }
  EXPECT_EQ(training_steps, (std::vector<int64_t>{10, 20, 30, 40, 50}));
  ASSERT_EQ(validation.size(), 2u);
  EXPECT_DOUBLE_EQ(validation[25], fake::ValidationAccuracy(*fake_hp, 25));
  EXPECT_DOUBLE_EQ(validation[50], fake::ValidationAccuracy(*fake_hp, 50));
  ASSERT_EQ(checkpoints.size(), 1u);
  EXPECT_EQ(checkpoints[0].steps_completed(), 50);
  EXPECT_EQ(checkpoints[0].trial_id(), 7);
  EXPECT_TRUE(fs::exists(fs::path(spec.checkpoint_dir()) /
                         checkpoints[0].uuid() / "state.json"));
  EXPECT_TRUE(checkpoints[0].file_sha256().contains("state.json"));
  EXPECT_TRUE(LogsContain(7, "stdout: fake trial 7 run 0 rank 0/1"));
  EXPECT_TRUE(LogsContain(7, "stdout: done: 50 steps"));
}

TEST_F(WorkerTest, ResumesFromACheckpoint) {
  StartWorker(1);
  v1::TrialSpec first = Spec(8, {{"report_every", 5}}, 20);
  Start(first);
  ASSERT_EQ(master_.WaitExited(8).reason(), v1::EXIT_REASON_COMPLETED);
  v1::Checkpoint checkpoint;
  for (const Received& r : master_.TrialEvents(8)) {
    if (r.msg.trial_event().has_checkpoint()) {
      checkpoint = r.msg.trial_event().checkpoint();
    }
  }
  ASSERT_FALSE(checkpoint.uuid().empty());

  // The master offers the checkpoint; the worker checks its files and
  // hands it to the trial.
  v1::TrialSpec second = Spec(9, {{"report_every", 5}}, 30);
  *second.add_restore_candidates() = checkpoint;
  Start(second);
  v1::TrialExited exited = master_.WaitExited(9);
  ASSERT_EQ(exited.reason(), v1::EXIT_REASON_COMPLETED) << exited.message();
  std::vector<int64_t> steps;
  for (const Received& r : master_.TrialEvents(9)) {
    const v1::TrialEvent& ev = r.msg.trial_event();
    if (ev.has_metrics() && ev.metrics().group() == v1::METRIC_GROUP_TRAINING) {
      steps.push_back(ev.metrics().steps_completed());
    }
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{25, 30}));
}

TEST_F(WorkerTest, StopTrialStopsGracefullyWithACheckpoint) {
  StartWorker(1);
  Start(Spec(11, {{"sleep_ms", 5}, {"report_every", 1}}, 1000000));
  ASSERT_TRUE(master_.WaitFor([](const std::vector<Received>& all) {
    return HasEvent(all, 11, v1::TrialEvent::kMetrics);
  }));
  Stop(11, /*kill=*/false, 10000);
  v1::TrialExited exited = master_.WaitExited(11);
  EXPECT_EQ(exited.reason(), v1::EXIT_REASON_STOPPED) << exited.message();
  EXPECT_EQ(exited.exit_code(), 0);
  EXPECT_GT(exited.steps_completed(), 0);
  bool checkpoint_before_exit = false;
  for (const Received& r : master_.TrialEvents(11)) {
    if (r.msg.trial_event().has_checkpoint()) checkpoint_before_exit = true;
    if (r.msg.trial_event().has_exited()) break;
  }
  EXPECT_TRUE(checkpoint_before_exit);
  EXPECT_TRUE(LogsContain(11, "stopping at step"));
}

TEST_F(WorkerTest, KillsAtOnceOrAfterTheStopTimeout) {
  StartWorker(2);
  // ignore_stop: the trial never looks at ShouldStop and its SIGTERM
  // handler keeps it alive, so only SIGKILL ends it.
  ValueMap stubborn = {{"sleep_ms", 5}, {"ignore_stop", true}};
  Start(Spec(21, stubborn, 1000000), {0});
  Start(Spec(22, stubborn, 1000000), {1});
  ASSERT_TRUE(master_.WaitFor([](const std::vector<Received>& all) {
    return HasEvent(all, 21, v1::TrialEvent::kMetrics) &&
           HasEvent(all, 22, v1::TrialEvent::kMetrics);
  }));
  Stop(21, /*kill=*/true);
  Stop(22, /*kill=*/false, /*timeout_ms=*/300);
  v1::TrialExited killed = master_.WaitExited(21);
  EXPECT_EQ(killed.reason(), v1::EXIT_REASON_KILLED) << killed.message();
  EXPECT_EQ(killed.exit_code(), -SIGKILL);
  EXPECT_TRUE(absl::StrContains(killed.message(), "on request"));
  v1::TrialExited timed_out = master_.WaitExited(22);
  EXPECT_EQ(timed_out.reason(), v1::EXIT_REASON_KILLED) << timed_out.message();
  EXPECT_TRUE(absl::StrContains(timed_out.message(), "300ms"))
      << timed_out.message();
}

TEST_F(WorkerTest, FailuresAreClassifiedWithTheStderrTail) {
  StartWorker(3);
  Start(Spec(31, {{"crash_on_run", 0}, {"fail_at_step", 3}}, 100), {0});
  Start(Spec(32, {{"fail_on_run", 0}}, 100), {1});
  Start(Spec(33, {{"invalid", true}}, 100), {2});

  v1::TrialExited crash = master_.WaitExited(31);
  EXPECT_EQ(crash.reason(), v1::EXIT_REASON_ERRORED);
  EXPECT_EQ(crash.exit_code(), -SIGABRT);
  EXPECT_TRUE(absl::StrContains(crash.message(), "killed by signal 6"))
      << crash.message();
  EXPECT_TRUE(absl::StrContains(crash.message(),
                                "fake crash (abort) on run 0 at step 3"))
      << crash.message();

  v1::TrialExited fail = master_.WaitExited(32);
  EXPECT_EQ(fail.reason(), v1::EXIT_REASON_ERRORED);
  EXPECT_EQ(fail.exit_code(), 1);
  EXPECT_TRUE(absl::StrContains(fail.message(), "exited with code 1"))
      << fail.message();
  EXPECT_TRUE(absl::StrContains(fail.message(), "fake failure on run 0"))
      << fail.message();

  v1::TrialExited invalid = master_.WaitExited(33);
  EXPECT_EQ(invalid.reason(), v1::EXIT_REASON_INVALID_HP);
  EXPECT_EQ(invalid.exit_code(), 3);
  EXPECT_TRUE(absl::StrContains(invalid.message(), "rejecting"))
      << invalid.message();
}

TEST_F(WorkerTest, ProblemsBeforeStartAreReportedAsErrors) {
  StartWorker(1, {"--trial-binary", "/nonexistent/det-trial"});
  Start(Spec(41, {}, 10));
  v1::TrialExited missing = master_.WaitExited(41);
  EXPECT_EQ(missing.reason(), v1::EXIT_REASON_ERRORED);
  EXPECT_TRUE(absl::StrContains(missing.message(), "/nonexistent/det-trial"))
      << missing.message();

  v1::TrialSpec bad_slots = Spec(42, {}, 10);
  bad_slots.set_entrypoint("true");
  Start(bad_slots, {5});
  v1::TrialExited slots = master_.WaitExited(42);
  EXPECT_EQ(slots.reason(), v1::EXIT_REASON_ERRORED);
  EXPECT_TRUE(absl::StrContains(slots.message(), "slot")) << slots.message();

  v1::TrialSpec bad_context = Spec(43, {}, 10);
  bad_context.set_entrypoint("true");
  bad_context.set_context("this is not a tar file");
  Start(bad_context);
  v1::TrialExited context = master_.WaitExited(43);
  EXPECT_EQ(context.reason(), v1::EXIT_REASON_ERRORED);
  EXPECT_TRUE(absl::StrContains(context.message(), "context"))
      << context.message();
}

TEST_F(WorkerTest, ShellEntrypointGetsContextAndEnvironment) {
  StartWorker(2, {}, {"DET_TOKEN=worker-secret"});
  fs::create_directories(tmp_.path() + "/ctx");
  std::ofstream(tmp_.path() + "/ctx/hello.txt") << "from the context\n";
  auto packed = PackContext(tmp_.path() + "/ctx");
  ASSERT_TRUE(packed.ok()) << packed.status();

  v1::TrialSpec spec = Spec(51, {}, 10);
  spec.set_context(*packed);
  spec.set_entrypoint(
      "cat hello.txt; echo threads=$DET_NUM_THREADS omp=$OMP_NUM_THREADS "
      "wait=$OMP_WAIT_POLICY spin=${GOMP_SPINCOUNT-unset} "
      "cuda=[${CUDA_VISIBLE_DEVICES-unset}] rank=$DET_RANK "
      "world=$DET_WORLD_SIZE trial=$DET_TRIAL_ID exp=$DET_EXPERIMENT_ID "
      "token=[$DET_TOKEN] api=${DET_TRIAL_API_ADDR%%:*}; "
      "echo to-stderr >&2; exit 0");
  Start(spec);
  v1::TrialExited exited = master_.WaitExited(51);
  ASSERT_EQ(exited.reason(), v1::EXIT_REASON_COMPLETED) << exited.message();
  EXPECT_TRUE(LogsContain(51, "stdout: from the context"));
  EXPECT_TRUE(LogsContain(51, "stderr: to-stderr"));
  bool found = false;
  for (const std::string& line : Logs(51)) {
    if (!absl::StrContains(line, "threads=")) continue;
    found = true;
    EXPECT_TRUE(absl::StrContains(line, "cuda=[] "));  // set, and empty
    EXPECT_TRUE(absl::StrContains(line, "rank=0 world=1 trial=51 exp=3"));
    EXPECT_TRUE(absl::StrContains(line, "token=[] "));  // no secret leaks
    EXPECT_TRUE(absl::StrContains(line, "api=127.0.0.1"));
    // Passive OpenMP waits unless the worker's environment says otherwise.
    const char* policy = std::getenv("OMP_WAIT_POLICY");
    const char* spin = std::getenv("GOMP_SPINCOUNT");
    EXPECT_TRUE(absl::StrContains(
        line,
        policy == nullptr
            ? absl::StrCat("wait=PASSIVE spin=", spin ? spin : "1000", " ")
            : absl::StrCat("wait=", policy, " ")))
        << line;
    // Each of the 2 slots gets half the cores (at least one).
    const int cores = std::max<int>(1, sysconf(_SC_NPROCESSORS_ONLN));
    EXPECT_TRUE(
        absl::StrContains(line, absl::StrCat("omp=", std::max(1, cores / 2))))
        << line << " (cores " << cores << ")";
  }
  EXPECT_TRUE(found);
}

// Finished runs' directories are emptied and reused for the next runs
// (renamed into place): a trial never sees what an earlier one left.
TEST_F(WorkerTest, EveryTrialStartsInAnEmptyDirectory) {
  StartWorker(1);
  for (int64_t id = 71; id <= 74; ++id) {
    v1::TrialSpec spec = Spec(id, {}, 10);
    spec.set_entrypoint(
        "echo files=[$(ls -A | tr '\\n' ' ')] pwd=$(basename $PWD); "
        "mkdir -p sub/deeper; echo x > sub/deeper/left-behind; "
        "echo y > left-behind");
    Start(spec);
    v1::TrialExited exited = master_.WaitExited(id);
    ASSERT_EQ(exited.reason(), v1::EXIT_REASON_COMPLETED) << exited.message();
    EXPECT_TRUE(LogsContain(
        id, absl::StrCat("stdout: files=[] pwd=trial-", id, "-run-0")))
        << absl::StrJoin(Logs(id), "\n");
  }
}

TEST_F(WorkerTest, DistributedTrialGetsOneProcessPerSlot) {
  StartWorker(2);
  v1::TrialSpec spec = Spec(61, {}, 10);
  spec.set_world_size(2);
  spec.set_first_rank(0);
  spec.set_rendezvous("10.0.0.1:29400");
  spec.set_entrypoint(
      "echo rank=$DET_RANK world=$DET_WORLD_SIZE rdv=$DET_RENDEZVOUS "
      "slots=$DET_SLOT_IDS");
  Start(spec, {0, 1});
  v1::TrialExited exited = master_.WaitExited(61);
  ASSERT_EQ(exited.reason(), v1::EXIT_REASON_COMPLETED) << exited.message();
  EXPECT_TRUE(
      LogsContain(61, "[rank 0] rank=0 world=2 rdv=10.0.0.1:29400 slots=0"));
  EXPECT_TRUE(
      LogsContain(61, "[rank 1] rank=1 world=2 rdv=10.0.0.1:29400 slots=1"));
}

TEST_F(WorkerTest, ReconnectsAndResendsWhatWasNotAcknowledged) {
  master_.SetAutoAck(false);
  StartWorker(1);
  Start(Spec(71, {{"report_every", 1}}, 6));
  ASSERT_EQ(master_.WaitExited(71).reason(), v1::EXIT_REASON_COMPLETED);

  // Everything of trial 71 so far came on connection 1, unacknowledged.
  std::vector<Received> first = master_.TrialEvents(71);
  ASSERT_GE(first.size(), 9u);  // started, 6 metrics, validation, ..., exit
  // The master "stored" up to the middle event; the rest must come again.
  const int64_t stored = first[first.size() / 2].msg.seq();
  v1::Welcome w;
  w.set_heartbeat_interval_ms(1000);
  w.set_last_seq(stored);
  master_.SetWelcome(w);
  master_.SetAutoAck(true);
  master_.DropStream();

  ASSERT_TRUE(master_.WaitFor([](const std::vector<Received>& all) {
    for (const Received& r : all) {
      if (r.connection == 2 && r.msg.has_trial_event() &&
          r.msg.trial_event().has_exited()) {
        return true;
      }
    }
    return false;
  })) << "no resend after reconnecting";
  ASSERT_EQ(master_.hellos().size(), 2u);
  EXPECT_EQ(master_.hellos()[0].incarnation(),
            master_.hellos()[1].incarnation());

  std::vector<Received> resent;
  for (const Received& r : master_.TrialEvents(71)) {
    if (r.connection == 2) resent.push_back(r);
  }
  std::vector<Received> expected;
  for (const Received& r : first) {
    if (r.msg.seq() > stored) expected.push_back(r);
  }
  ASSERT_EQ(resent.size(), expected.size());
  for (size_t i = 0; i < resent.size(); ++i) {
    EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(
        resent[i].msg, expected[i].msg))
        << "resent message " << i << " differs:\n"
        << resent[i].msg.DebugString() << "vs\n"
        << expected[i].msg.DebugString();
  }
  // Heartbeats are not resent: the first message on the new stream is the
  // first unstored trial event.
  std::vector<Received> on_second;
  for (const Received& r : master_.received()) {
    if (r.connection == 2) on_second.push_back(r);
  }
  ASSERT_FALSE(on_second.empty());
  EXPECT_EQ(on_second[0].msg.seq(), expected[0].msg.seq());
}

TEST_F(WorkerTest, ReportsRunningTrialsAfterReconnectAndStopsUnwantedOnes) {
  StartWorker(1);
  Start(Spec(81, {{"sleep_ms", 5}}, 1000000));
  ASSERT_TRUE(master_.WaitFor([](const std::vector<Received>& all) {
    return HasEvent(all, 81, v1::TrialEvent::kMetrics);
  }));
  v1::Welcome w;
  w.set_heartbeat_interval_ms(1000);
  w.set_last_seq(master_.received().back().msg.seq());
  w.add_stop_trial_ids(81);
  master_.SetWelcome(w);
  master_.DropStream();

  v1::TrialExited exited = master_.WaitExited(81);
  EXPECT_EQ(exited.reason(), v1::EXIT_REASON_STOPPED) << exited.message();
  ASSERT_GE(master_.hellos().size(), 2u);
  const v1::Hello again = master_.hellos()[1];
  ASSERT_EQ(again.running_size(), 1);
  EXPECT_EQ(again.running(0).trial_id(), 81);
  EXPECT_EQ(again.running(0).slot_ids_size(), 1);
  EXPECT_EQ(again.slots(0).trial_id(), 81);
}

TEST_F(WorkerTest, ProtocolRefusalIsSurfacedAndTheWorkerExits) {
  master_.SetRefusal(grpc::Status(
      grpc::StatusCode::FAILED_PRECONDITION,
      "worker test-worker speaks protocol version 1 but this master speaks "
      "version 99"));
  StartWorker(1);
  std::optional<int> status = worker_->Wait(absl::Seconds(15));
  ASSERT_TRUE(status.has_value()) << "the refused worker kept running";
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 2);
  EXPECT_TRUE(
      absl::StrContains(worker_->Log(), "this master speaks version 99"))
      << worker_->Log();
  EXPECT_EQ(master_.connections(), 1);  // no retry loop
}

TEST_F(WorkerTest, ShutdownStopsTrialsGracefullyAndLeavesNothingBehind) {
  StartWorker(1);
  // The trial also starts a background process: it must not survive either.
  v1::TrialSpec spec = Spec(91, {}, 10);
  spec.set_entrypoint("sleep 1000 & echo bg=$!; exec " + kFakeTrial);
  spec.mutable_hparams()
      ->mutable_fields()
      ->
      operator[]("sleep_ms")
      .set_number_value(5);
  spec.set_target_batches(1000000);
  Start(spec);
  ASSERT_TRUE(master_.WaitFor([](const std::vector<Received>& all) {
    for (const Received& r : all) {
      for (const v1::LogLine& l : r.msg.trial_event().logs().lines()) {
        if (absl::StrContains(l.line(), "fake trial 91")) return true;
      }
    }
    return false;
  }));
  for (const std::string& line : Logs(91)) {
    size_t at = line.find("bg=");
    int pid = 0;
    if (at != std::string::npos &&
        absl::SimpleAtoi(line.substr(at + 3), &pid)) {
      extra_pids_.push_back(pid);
    }
  }
  ASSERT_EQ(extra_pids_.size(), 1u);

  worker_->Signal(SIGTERM);
  std::optional<int> status = worker_->Wait(absl::Seconds(20));
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 0) << worker_->Log();
  v1::TrialExited exited = master_.WaitExited(91, absl::Seconds(1));
  EXPECT_EQ(exited.reason(), v1::EXIT_REASON_STOPPED) << exited.message();
  EXPECT_TRUE(WaitGone(extra_pids_[0]));
}

TEST_F(WorkerTest, ChildrenDieWithAKilledWorker) {
  StartWorker(1);
  Start(Spec(95, {{"sleep_ms", 5}, {"ignore_stop", true}}, 1000000));
  ASSERT_TRUE(master_.WaitFor([](const std::vector<Received>& all) {
    return HasEvent(all, 95, v1::TrialEvent::kStarted);
  }));
  worker_->Signal(SIGKILL);
  ASSERT_TRUE(worker_->Wait(absl::Seconds(10)).has_value());
  // TearDown checks the trial's pid is gone (PR_SET_PDEATHSIG).
}

}  // namespace
}  // namespace det::testing
