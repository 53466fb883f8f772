// det on a real Slurm (Debian's slurmctld, slurmd and munge, started for
// the test by scripts/slurm-local.sh with a generated slurm.conf): a search
// that begins with no workers completes on det-workers that Slurm started,
// and a running job cancelled with scancel is survived.
//
// MasterSubmitsWorkerJobsForQueuedTrials runs the master with
// resource_manager in master.yaml, as a user would; the other two drive
// master/slurm's pieces directly, to check each decision against a real
// Slurm. Everything Slurm does is real. Skipped with the reason where Slurm is
// not installed or the test is not root.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "master/slurm/slurm.h"
#include "tests/integration/cluster.h"

namespace det::testing {
namespace {

using ::testing::HasSubstr;

class SlurmClusterTest : public ClusterTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "a local Slurm needs root";
    if (std::system("command -v slurmctld >/dev/null && command -v slurmd "
                    ">/dev/null && command -v munged >/dev/null") != 0) {
      GTEST_SKIP() << "Slurm is not installed (slurmctld slurmd munge)";
    }
    state_ = cluster_.dir() + "/slurm.state";
    std::string start =
        absl::StrCat(DET_SOURCE_DIR, "/scripts/slurm-local.sh start ", state_,
                     " 2 > ", cluster_.dir(), "/slurm.conf.path");
    ASSERT_EQ(std::system(start.c_str()), 0) << "scripts/slurm-local.sh failed";
    std::ifstream in(cluster_.dir() + "/slurm.conf.path");
    std::getline(in, conf_);
    setenv("SLURM_CONF", conf_.c_str(), 1);  // for sbatch, squeue, scancel
    started_ = true;
  }
  void TearDown() override {
    ClusterTest::TearDown();
    if (HasFailure()) {
      std::system(absl::StrCat("cat ", cluster_.dir(), "/det-worker-*.log >&2")
                      .c_str());
    }
    if (started_) {
      std::system(
          absl::StrCat(DET_SOURCE_DIR, "/scripts/slurm-local.sh stop ", state_)
              .c_str());
    }
  }

  slurm::SlurmOptions Options() {
    slurm::SlurmOptions o;
    o.cpus_per_job = 1;
    o.slots_per_job = 1;
    o.max_jobs = 2;
    o.time_limit = "10:00";
    o.idle_timeout = absl::Seconds(2);
    o.worker_binary = Cluster::Bin("det-worker");
    o.master_address = cluster_.master_address();
    o.log_dir = cluster_.dir();
    return o;
  }
  int QueuedTrials(int64_t id) {
    int n = 0;
    for (const auto& t : cluster_.Trials(id)) {
      if (t.state() == v1::STATE_QUEUED) ++n;
    }
    return n;
  }
  // One round of what the core would do; returns the jobs that ended.
  std::vector<slurm::JobEvent> Tick(int64_t id, bool experiment_done) {
    int queued = experiment_done ? 0 : QueuedTrials(id);
    for (int i = p_->JobsToSubmit(queued); i > 0; --i) {
      absl::StatusOr<std::string> job = client_.Submit(slurm::BatchScript(*o_));
      EXPECT_TRUE(job.ok()) << job.status();
      if (job.ok()) {
        p_->Submitted(*job, absl::Now());
        submitted_.push_back(*job);
      }
    }
    CliResult agents = cluster_.Cli({"agent", "list", "--json"});
    for (const std::string& job : p_->ActiveJobs()) {
      std::string worker = slurm::SlurmProvisioner::WorkerIdFor(job);
      if (agents.out.find("\"" + worker + "\"") != std::string::npos) {
        p_->WorkerSeen(worker, /*idle=*/experiment_done, absl::Now());
      }
    }
    for (const std::string& job : p_->IdleJobsToCancel(absl::Now())) {
      EXPECT_TRUE(client_.Cancel(job).ok());
    }
    auto states = client_.States(p_->ActiveJobs());
    EXPECT_TRUE(states.ok()) << states.status();
    return states.ok() ? p_->Update(*states) : std::vector<slurm::JobEvent>{};
  }

  std::string state_, conf_;
  bool started_ = false;
  std::unique_ptr<slurm::CommandRunner> runner_ =
      slurm::MakeProcessRunner(absl::Seconds(30));
  slurm::SlurmClient client_{runner_.get()};
  std::optional<slurm::SlurmOptions> o_;
  std::unique_ptr<slurm::SlurmProvisioner> p_;
  std::vector<std::string> submitted_;
};

TEST_F(SlurmClusterTest, SearchWithNoWorkersCompletesOnWorkersSlurmStarted) {
  cluster_.StartMaster();
  o_ = Options();
  p_ = std::make_unique<slurm::SlurmProvisioner>(*o_);
  int64_t id = cluster_.CreateExperiment(
      absl::StrCat("entrypoint: ", Cluster::Bin("det-fake-trial"), R"(
name: on-slurm
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0, count: 3}
  sleep_ms: 20
searcher:
  name: grid
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 20}
)"));
  ASSERT_GT(id, 0);
  std::vector<slurm::JobEvent> ended;
  absl::Time deadline = absl::Now() + absl::Minutes(3);
  bool done = false;
  while (absl::Now() < deadline) {
    auto x = cluster_.WaitTerminal(id, absl::Milliseconds(500));
    done = x.ok();
    for (auto& e : Tick(id, done)) ended.push_back(e);
    if (done && p_->ActiveJobs().empty()) break;
  }
  auto x = cluster_.WaitTerminal(id, absl::Seconds(1));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  ASSERT_FALSE(submitted_.empty());
  EXPECT_LE(submitted_.size(), 2u);  // max_jobs, jobs reused across trials
  for (const auto& t : cluster_.Trials(id)) {
    EXPECT_EQ(t.state(), v1::STATE_COMPLETED);
  }
  // The workers were Slurm's: named after their jobs, and their jobs ended
  // when det cancelled them for being idle, as expected.
  CliResult agents = cluster_.Cli({"agent", "list"});
  EXPECT_THAT(agents.out, HasSubstr("slurm-" + submitted_[0]));
  ASSERT_EQ(ended.size(), submitted_.size());
  for (const auto& e : ended) EXPECT_TRUE(e.expected) << e.message;
}

// The master itself as the resource manager (master.yaml's
// resource_manager): it submits the jobs, names their workers after them,
// cancels them once idle; nothing here talks to Slurm.
TEST_F(SlurmClusterTest, MasterSubmitsWorkerJobsForQueuedTrials) {
  int port = 0;
  {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
    socklen_t len = sizeof(a);
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    close(fd);
  }
  const std::string address = absl::StrCat("127.0.0.1:", port);
  const std::string config = cluster_.dir() + "/master.yaml";
  {
    std::ofstream out(config);
    out << "resource_manager:\n"
        << "  type: slurm\n"
        << "  cpus_per_job: 1\n"
        << "  slots_per_job: 1\n"
        << "  max_jobs: 2\n"
        << "  time_limit: \"10:00\"\n"
        << "  idle_timeout_s: 2\n"
        << "  poll_interval_s: 1\n"
        << "  worker_binary: " << Cluster::Bin("det-worker") << "\n"
        << "  master_address: " << address << "\n"
        << "  log_dir: " << cluster_.dir() << "\n";
  }
  cluster_.StartMaster({"--config", config, "--grpc_address", address});
  int64_t id = cluster_.CreateExperiment(
      absl::StrCat("entrypoint: ", Cluster::Bin("det-fake-trial"), R"(
name: master-on-slurm
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0, count: 3}
  sleep_ms: 20
searcher:
  name: grid
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 20}
)"));
  ASSERT_GT(id, 0);
  auto x = cluster_.WaitTerminal(id, absl::Minutes(3));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  for (const auto& t : cluster_.Trials(id)) {
    EXPECT_EQ(t.state(), v1::STATE_COMPLETED);
    EXPECT_THAT(t.agent_id(), ::testing::StartsWith("slurm-"))
        << "it ran on a worker Slurm started";
  }
  // Idle workers' jobs are cancelled: squeue ends up empty.
  EXPECT_TRUE(Cluster::WaitFor(
      [] { return std::system("test -z \"$(squeue -h -o %i)\"") == 0; },
      absl::Seconds(60)))
      << "the idle workers' jobs were not cancelled";
  std::ifstream log(cluster_.master()->log_path());
  std::string text((std::istreambuf_iterator<char>(log)),
                   std::istreambuf_iterator<char>());
  EXPECT_THAT(text, HasSubstr("slurm: submitted job"));
  EXPECT_THAT(text, HasSubstr("cancelling idle job"));
}

TEST_F(SlurmClusterTest, ScancelOfARunningJobIsSurvived) {
  cluster_.StartMaster(
      {"--agent_timeout_s", "3", "--heartbeat_interval_s", "0.5"});
  o_ = Options();
  o_->max_jobs = 1;  // the replacement comes after the cancelled job ends
  p_ = std::make_unique<slurm::SlurmProvisioner>(*o_);
  int64_t id = cluster_.CreateExperiment(
      absl::StrCat("entrypoint: ", Cluster::Bin("det-fake-trial"), R"(
name: scancel
max_restarts: 3
hyperparameters:
  x: 0.4
  y: 0.5
  sleep_ms: 60
searcher:
  name: single
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 60}
min_validation_period: {batches: 10}
min_checkpoint_period: {batches: 10}
)"));
  ASSERT_GT(id, 0);
  std::vector<slurm::JobEvent> ended;
  bool cancelled = false;
  absl::Time deadline = absl::Now() + absl::Minutes(3);
  while (absl::Now() < deadline) {
    auto x = cluster_.WaitTerminal(id, absl::Milliseconds(500));
    for (auto& e : Tick(id, x.ok())) ended.push_back(e);
    if (!cancelled) {
      auto trials = cluster_.Trials(id);
      if (!trials.empty() &&
          trials[0].latest_checkpoint().steps_completed() > 15) {
        // Someone else cancels the job its worker runs in.
        ASSERT_EQ(std::system(("scancel " + submitted_.at(0)).c_str()), 0);
        cancelled = true;
      }
    }
    if (x.ok() && p_->ActiveJobs().empty()) break;
  }
  ASSERT_TRUE(cancelled);
  auto x = cluster_.WaitTerminal(id, absl::Seconds(1));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  auto trials = cluster_.Trials(id);
  ASSERT_EQ(trials.size(), 1u);
  // The cancelled worker stops its trial gracefully (not a failure) or is
  // lost with it (one restart); a run placed on it while it was going
  // away never started, and is not counted.
  EXPECT_LE(trials[0].restarts(), 1) << trials[0].message();
  std::vector<int64_t> steps;
  for (const auto& r :
       cluster_.Metrics(trials[0].id(), v1::METRIC_GROUP_VALIDATION)) {
    steps.push_back(r.steps_completed());
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{10, 20, 30, 40, 50, 60}));
  ASSERT_GE(submitted_.size(), 2u);  // a second job replaced the first
  ASSERT_FALSE(ended.empty());
  EXPECT_EQ(ended[0].job_id, submitted_[0]);
  EXPECT_FALSE(ended[0].expected);
  EXPECT_THAT(ended[0].message,
              HasSubstr("cancelled by someone other than det"));
}

}  // namespace
}  // namespace det::testing
