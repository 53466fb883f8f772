#include "master/slurm/slurm.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdio>
#include <deque>
#include <fstream>

#include "tests/testing/temp_dir.h"
#include "yaml-cpp/yaml.h"

namespace det::slurm {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<SlurmOptions> Parse(const std::string& yaml) {
  return ParseSlurmOptions(YAML::Load(yaml)["resource_manager"]);
}

TEST(SlurmOptionsTest, FullConfigParses) {
  auto o = Parse(R"(
resource_manager:
  type: slurm
  partition: gpu
  account: ml-team
  gpus_per_job: 4
  cpus_per_job: 16
  time_limit: "1-12:00:00"
  sbatch_args: ["--qos=high", "--constraint=a100"]
  max_jobs: 3
  idle_timeout_s: 120
  master_address: det.example:8090
  tls_ca: /etc/det/ca.pem
)");
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->partition, "gpu");
  EXPECT_EQ(o->SlotsPerJob(), 4);
  EXPECT_EQ(o->max_jobs, 3);
  EXPECT_EQ(o->idle_timeout, absl::Seconds(120));
  EXPECT_THAT(o->sbatch_args, ElementsAre("--qos=high", "--constraint=a100"));
}

TEST(SlurmOptionsTest, ErrorsNameTheFieldAndLine) {
  auto o = Parse(R"(resource_manager:
  type: slurm
  master_address: m:1
  time_limit: soon
  gpus_per_job: -1
  sbatch_args: ["--gres=gpu:8"]
  partitoin: gpu
)");
  ASSERT_FALSE(o.ok());
  std::string m(o.status().message());
  EXPECT_THAT(m, HasSubstr("line 4, column 15: resource_manager.time_limit: "
                           "'soon' is not a Slurm time"));
  EXPECT_THAT(m, HasSubstr("line 5, column 17: resource_manager.gpus_per_job"));
  EXPECT_THAT(
      m, HasSubstr("resource_manager.sbatch_args[0]: --gres is set by det"));
  EXPECT_THAT(m, HasSubstr("line 7, column 3: resource_manager.partitoin: "
                           "unknown key"));
}

TEST(SlurmOptionsTest, TypeAndMasterAddressAreRequired) {
  auto o = Parse("resource_manager: {partition: x}\n");
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(o.status().message(),
              HasSubstr("resource_manager.type: missing"));
  EXPECT_THAT(o.status().message(), HasSubstr("master_address: missing"));
  auto k8s =
      Parse("resource_manager: {type: kubernetes, master_address: m:1}\n");
  EXPECT_THAT(k8s.status().message(), HasSubstr("only 'slurm'"));
  auto scalar = Parse("resource_manager: slurm\n");
  EXPECT_THAT(scalar.status().message(), HasSubstr("expected a mapping"));
}

TEST(SlurmTimeTest, SlurmsFormats) {
  for (const char* ok : {"30", "30:00", "2:30:00", "1-0", "1-12:00",
                         "1-12:00:00", "UNLIMITED"}) {
    EXPECT_TRUE(ValidSlurmTime(ok)) << ok;
  }
  for (const char* bad :
       {"", "soon", "1:2:3:4", "1-", "-1", "1h", "1-1-1", "::"}) {
    EXPECT_FALSE(ValidSlurmTime(bad)) << bad;
  }
}

SlurmOptions Gpu() {
  SlurmOptions o;
  o.gpus_per_job = 2;
  o.cpus_per_job = 8;
  o.partition = "gpu";
  o.time_limit = "04:00:00";
  o.sbatch_args = {"--qos=high"};
  o.master_address = "det-master.example:8090";
  o.tls_ca = "/etc/det/ca's.pem";  // a quote to escape
  o.log_dir = "/var/log/det";
  return o;
}

TEST(BatchScriptTest, GpuJobRunsOneWorkerOnItsGpus) {
  std::string s = BatchScript(Gpu());
  EXPECT_THAT(s, HasSubstr("#SBATCH --gres=gpu:2\n"));
  EXPECT_THAT(s, HasSubstr("#SBATCH --cpus-per-task=8\n"));
  EXPECT_THAT(s, HasSubstr("#SBATCH --partition=gpu\n"));
  EXPECT_THAT(s, HasSubstr("#SBATCH --time=04:00:00\n"));
  EXPECT_THAT(s, HasSubstr("#SBATCH --qos=high\n"));
  EXPECT_THAT(s, HasSubstr("#SBATCH --output=/var/log/det/det-worker-%j.log"));
  EXPECT_THAT(s, HasSubstr("--name \"slurm-${SLURM_JOB_ID}\""));
  EXPECT_THAT(s, HasSubstr("--slots 0"));
  EXPECT_THAT(s, HasSubstr("--tls_ca '/etc/det/ca'\\''s.pem'"));
  EXPECT_THAT(s, Not(HasSubstr("--cpu_only")));
}

TEST(BatchScriptTest, CpuJobOffersItsSlotsAndIsValidBash) {
  SlurmOptions o;
  o.cpus_per_job = 4;
  o.slots_per_job = 2;
  o.master_address = "10.0.0.1:8090";
  std::string s = BatchScript(o);
  EXPECT_THAT(s, Not(HasSubstr("--gres")));
  EXPECT_THAT(s, HasSubstr("--cpu_only --slots 2"));
  // The script is bash that parses, and with a stand-in det-worker it runs
  // the worker with the flags above.
  det::test::TempDir dir("det-slurm");
  std::string worker = dir.File("det-worker");
  std::ofstream(worker) << "#!/bin/sh\necho \"$@\" > " << dir.File("args")
                        << "\n";
  ASSERT_EQ(std::system(("chmod +x " + worker).c_str()), 0);
  o.worker_binary = worker;
  std::string script = dir.File("job.sh");
  std::ofstream(script) << BatchScript(o);
  ASSERT_EQ(std::system(("bash -n " + script).c_str()), 0);
  ASSERT_EQ(
      std::system(
          ("SLURM_JOB_ID=77 TMPDIR=" + dir.path() + " bash " + script).c_str()),
      0);
  std::ifstream in(dir.File("args"));
  std::string args((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  EXPECT_EQ(args, "--master 10.0.0.1:8090 --name slurm-77 --work_dir " +
                      dir.path() + "/det-worker-77 --cpu_only --slots 2\n");
}

TEST(JobStateTest, SlurmStatesMapToWhatDetDoes) {
  EXPECT_EQ(ParseJobState("PENDING"), JobState::kPending);
  EXPECT_EQ(ParseJobState("RUNNING"), JobState::kRunning);
  EXPECT_EQ(ParseJobState("COMPLETING"), JobState::kRunning);
  EXPECT_EQ(ParseJobState("COMPLETED"), JobState::kCompleted);
  EXPECT_EQ(ParseJobState("CANCELLED by 1000"), JobState::kCancelled);
  EXPECT_EQ(ParseJobState("PREEMPTED"), JobState::kCancelled);
  EXPECT_EQ(ParseJobState("TIMEOUT"), JobState::kTimeout);
  EXPECT_EQ(ParseJobState("NODE_FAIL"), JobState::kFailed);
  EXPECT_EQ(ParseJobState("OUT_OF_MEMORY"), JobState::kFailed);
  EXPECT_EQ(ParseJobState("  FAILED \n"), JobState::kFailed);
  EXPECT_EQ(ParseJobState("WHATEVER"), JobState::kUnknown);
}

// Answers each command with the next scripted result, recording calls.
class FakeRunner : public CommandRunner {
 public:
  absl::StatusOr<CommandResult> Run(const std::vector<std::string>& argv,
                                    const std::string& input) override {
    calls.push_back(argv);
    inputs.push_back(input);
    if (results.empty()) return absl::InternalError("unexpected command");
    CommandResult r = results.front();
    results.pop_front();
    return r;
  }
  std::deque<CommandResult> results;
  std::vector<std::vector<std::string>> calls;
  std::vector<std::string> inputs;
};

TEST(SlurmClientTest, SubmitSendsTheScriptAndReadsTheJobId) {
  FakeRunner r;
  r.results.push_back({0, "4242;cluster1\n", ""});
  SlurmClient c(&r);
  auto id = c.Submit("#!/bin/bash\n");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "4242");
  EXPECT_THAT(r.calls[0], ElementsAre("sbatch", "--parsable"));
  EXPECT_EQ(r.inputs[0], "#!/bin/bash\n");

  r.results.push_back({1, "", "sbatch: error: invalid partition specified\n"});
  auto bad = c.Submit("x");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(bad.status().message(), HasSubstr("invalid partition"));
  r.results.push_back({0, "Submitted batch job\n", ""});
  EXPECT_EQ(c.Submit("x").status().code(), absl::StatusCode::kInternal);
}

TEST(SlurmClientTest, StatesAskSacctForJobsSqueueNoLongerLists) {
  FakeRunner r;
  r.results.push_back({0, "11|RUNNING\n12|PENDING\n", ""});
  r.results.push_back({0, "13|CANCELLED by 0\n", ""});
  SlurmClient c(&r);
  auto s = c.States({"11", "12", "13", "14"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->at("11"), JobState::kRunning);
  EXPECT_EQ(s->at("12"), JobState::kPending);
  EXPECT_EQ(s->at("13"), JobState::kCancelled);
  EXPECT_EQ(s->at("14"), JobState::kUnknown);
  EXPECT_THAT(r.calls[0], ElementsAre("squeue", "-h", "-t", "all", "-o",
                                      "%i|%T", "-j", "11,12,13,14"));
  EXPECT_THAT(r.calls[1], ElementsAre("sacct", "-n", "-P", "-X", "-o",
                                      "JobID,State", "-j", "13,14"));
}

TEST(SlurmProvisionerTest, SubmitsForUnplaceableSlotsCountingPendingJobs) {
  SlurmOptions o = Gpu();  // 2 slots a job
  o.max_jobs = 3;
  SlurmProvisioner p(o);
  EXPECT_EQ(p.JobsToSubmit(0), 0);
  EXPECT_EQ(p.JobsToSubmit(3), 2);  // rounds up
  absl::Time t0 = absl::FromUnixSeconds(1000);
  p.Submitted("1", t0);
  p.Submitted("2", t0);
  EXPECT_EQ(p.JobsToSubmit(3), 0);  // two pending jobs bring 4 slots
  EXPECT_EQ(p.JobsToSubmit(8), 1);  // 4 more wanted, but max_jobs is 3
  p.WorkerSeen("slurm-1", /*idle=*/false, t0);
  EXPECT_EQ(p.JobsToSubmit(3), 1);  // job 1 is a worker now: only 2 pending
  p.WorkerSeen("w-not-ours", true, t0);
  EXPECT_EQ(p.ActiveJobs().size(), 2u);
}

TEST(SlurmProvisionerTest, IdleWorkersJobsAreCancelledOnceAndEndExpectedly) {
  SlurmOptions o = Gpu();
  o.idle_timeout = absl::Minutes(2);
  SlurmProvisioner p(o);
  absl::Time t0 = absl::FromUnixSeconds(1000);
  p.Submitted("7", t0);
  p.WorkerSeen("slurm-7", /*idle=*/true, t0);
  EXPECT_TRUE(p.IdleJobsToCancel(t0 + absl::Minutes(1)).empty());
  p.WorkerSeen("slurm-7", /*idle=*/false, t0 + absl::Minutes(1));  // got work
  p.WorkerSeen("slurm-7", /*idle=*/true, t0 + absl::Minutes(2));
  EXPECT_TRUE(p.IdleJobsToCancel(t0 + absl::Minutes(3)).empty());
  EXPECT_THAT(p.IdleJobsToCancel(t0 + absl::Minutes(4)), ElementsAre("7"));
  EXPECT_TRUE(p.IdleJobsToCancel(t0 + absl::Minutes(5)).empty());  // once
  auto ev = p.Update({{"7", JobState::kCancelled}});
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_TRUE(ev[0].expected);
  EXPECT_TRUE(p.ActiveJobs().empty());
}

TEST(SlurmProvisionerTest, JobsEndedBySlurmAreReportedOnceWithTheReason) {
  SlurmProvisioner p(Gpu());
  absl::Time t0 = absl::FromUnixSeconds(1000);
  for (const char* id : {"1", "2", "3", "4"}) p.Submitted(id, t0);
  auto ev = p.Update({{"1", JobState::kCancelled},
                      {"2", JobState::kTimeout},
                      {"3", JobState::kRunning},
                      {"4", JobState::kUnknown}});
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_FALSE(ev[0].expected);
  EXPECT_EQ(ev[0].worker_id, "slurm-1");
  EXPECT_THAT(ev[0].message,
              HasSubstr("Slurm job 1 (worker slurm-1) cancelled by someone "
                        "other than det"));
  EXPECT_THAT(ev[1].message, HasSubstr("timed out"));
  EXPECT_TRUE(p.Update({{"1", JobState::kCancelled}}).empty());  // once
  EXPECT_EQ(p.ActiveJobs(), (std::set<std::string>{"3", "4"}));
}

// The real runner and client against stand-in Slurm commands on PATH.
TEST(ProcessRunnerTest, ClientDrivesSlurmCommandsOnPath) {
  det::test::TempDir dir("det-slurm-bin");
  auto script = [&](const std::string& name, const std::string& body) {
    std::ofstream(dir.File(name)) << "#!/bin/sh\n" << body;
    ASSERT_EQ(std::system(("chmod +x " + dir.File(name)).c_str()), 0);
  };
  script("sbatch", "cat > " + dir.File("submitted.sh") + "\necho '99;c'\n");
  script("squeue", "exit 1\n");  // the job is gone from the queue
  script("sacct", "echo '99|NODE_FAIL'\n");
  script("scancel", "echo \"$1\" > " + dir.File("cancelled") + "\n");
  std::string old = getenv("PATH") ? getenv("PATH") : "";
  setenv("PATH", (dir.path() + ":" + old).c_str(), 1);
  auto runner = MakeProcessRunner(absl::Seconds(10));
  SlurmClient c(runner.get());
  auto id = c.Submit("the script\n");
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, "99");
  auto states = c.States({"99"});
  ASSERT_TRUE(states.ok()) << states.status();
  EXPECT_EQ(states->at("99"), JobState::kFailed);
  EXPECT_TRUE(c.Cancel("99").ok());
  setenv("PATH", old.c_str(), 1);
  std::ifstream sub(dir.File("submitted.sh")), can(dir.File("cancelled"));
  std::string got((std::istreambuf_iterator<char>(sub)), {});
  std::string cancelled((std::istreambuf_iterator<char>(can)), {});
  EXPECT_EQ(got, "the script\n");
  EXPECT_EQ(cancelled, "99\n");
}

TEST(ProcessRunnerTest, MissingCommandAndTimeoutAreClearErrors) {
  auto runner = MakeProcessRunner(absl::Milliseconds(300));
  auto missing = runner->Run({"det-no-such-sbatch"}, "");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(missing.status().message(), HasSubstr("is Slurm installed"));
  auto slow = runner->Run({"sleep", "5"}, "");
  EXPECT_EQ(slow.status().code(), absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace det::slurm
