// The worker's launch plan: every check on a StartTrial and every way of
// running a trial, decided without starting a process.
#include "worker/daemon/launch_plan.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace det::worker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::StartTrial Start(const std::string& entrypoint, std::vector<int32_t> slots,
                     int world = 1, int first_rank = 0) {
  v1::StartTrial s;
  v1::TrialSpec* spec = s.mutable_spec();
  spec->set_trial_id(7);
  spec->set_run_id(2);
  spec->set_entrypoint(entrypoint);
  spec->set_checkpoint_dir("/ckpt");
  spec->set_world_size(world);
  spec->set_first_rank(first_rank);
  for (int32_t id : slots) s.add_slot_ids(id);
  return s;
}

LaunchContext Context() {
  LaunchContext c;
  c.num_slots = 4;
  c.work_dir = "/work";
  c.trial_binary = "/bin/det-trial";
  c.trial_binary_executable = true;
  c.find_program =
      [](const std::string& cmd) -> std::optional<std::vector<std::string>> {
    if (cmd == "/usr/bin/python3 train.py") {
      return std::vector<std::string>{"/usr/bin/python3", "train.py"};
    }
    return std::nullopt;
  };
  return c;
}

TEST(LaunchPlanTest, BuiltInTrainerInTheRunsOwnDirectory) {
  auto plan = PlanLaunch(Start("", {1}), Context());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->dir, "/work/trial-7-run-2");
  EXPECT_THAT(plan->argv, ElementsAre("/bin/det-trial"));
  ASSERT_EQ(plan->processes.size(), 1u);
  EXPECT_EQ(plan->processes[0].rank, 0);
  EXPECT_THAT(plan->processes[0].slots, ElementsAre(1));
}

TEST(LaunchPlanTest, PlainWordsAreExecedDirectly) {
  auto plan = PlanLaunch(Start("/usr/bin/python3 train.py", {0}), Context());
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(plan->argv, ElementsAre("/usr/bin/python3", "train.py"));
  EXPECT_TRUE(plan->shell_on_noexec);
}

TEST(LaunchPlanTest, OtherCommandsGoToTheShellExecedWhenSimple) {
  auto simple = PlanLaunch(Start("python3 train.py", {0}), Context());
  ASSERT_TRUE(simple.ok());
  EXPECT_THAT(simple->argv,
              ElementsAre("/bin/sh", "-c", "exec python3 train.py"));
  EXPECT_FALSE(simple->shell_on_noexec);
  auto piped = PlanLaunch(Start("a | b", {0}), Context());
  ASSERT_TRUE(piped.ok());
  EXPECT_THAT(piped->argv, ElementsAre("/bin/sh", "-c", "a | b"));
}

TEST(LaunchPlanTest, OneProcessPerSlotForADistributedTrial) {
  auto plan =
      PlanLaunch(Start("", {2, 3}, /*world=*/4, /*first_rank=*/2), Context());
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_EQ(plan->processes.size(), 2u);
  EXPECT_EQ(plan->processes[0].rank, 2);
  EXPECT_THAT(plan->processes[0].slots, ElementsAre(2));
  EXPECT_EQ(plan->processes[1].rank, 3);
  EXPECT_THAT(plan->processes[1].slots, ElementsAre(3));
  // One process holds every slot of a non-distributed trial.
  auto single = PlanLaunch(Start("", {0, 1}), Context());
  ASSERT_TRUE(single.ok());
  ASSERT_EQ(single->processes.size(), 1u);
  EXPECT_THAT(single->processes[0].slots, ElementsAre(0, 1));
}

TEST(LaunchPlanTest, RefusesWhatTheWorkerCannotCarryOut) {
  auto expect_refused = [](const v1::StartTrial& s, const LaunchContext& c,
                           const std::string& why) {
    auto plan = PlanLaunch(s, c);
    ASSERT_FALSE(plan.ok()) << why;
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(plan.status().message()), HasSubstr(why));
  };
  expect_refused(Start("", {}), Context(), "no slots");
  expect_refused(Start("", {1, 1}), Context(), "not distinct slots");
  expect_refused(Start("", {4}), Context(), "it has 4");
  expect_refused(Start("", {0, 1}, /*world=*/2, /*first_rank=*/1), Context(),
                 "do not fit world size 2");
  v1::StartTrial no_id = Start("", {0});
  no_id.mutable_spec()->set_trial_id(0);
  expect_refused(no_id, Context(), "without a trial id");
  v1::StartTrial no_dir = Start("", {0});
  no_dir.mutable_spec()->clear_checkpoint_dir();
  expect_refused(no_dir, Context(), "no checkpoint directory");
  LaunchContext missing = Context();
  missing.trial_binary_executable = false;
  expect_refused(Start("", {0}), missing, "--trial-binary");
}

TEST(LaunchPlanTest, UserEnvironmentReplacesButNeverTheWorkersOwn) {
  std::vector<std::string> env = {"PATH=/bin", "OMP_NUM_THREADS=2",
                                  "DET_TRIAL_ID=7", "CUDA_VISIBLE_DEVICES=0"};
  v1::TrialSpec spec;
  for (const char* kv :
       {"HF_HOME=/tmp/hf", "OMP_NUM_THREADS=1", "DET_TRIAL_ID=99",
        "CUDA_VISIBLE_DEVICES=1,2", "CUDA_DEVICE_ORDER=FASTEST_FIRST",
        "NOEQUALS", "=x", "A=b=c"}) {
    spec.add_environment_variables(kv);
  }
  ApplyUserEnvironment(spec.environment_variables(), &env);
  EXPECT_THAT(env, ::testing::ElementsAre(
                       "PATH=/bin", "DET_TRIAL_ID=7", "CUDA_VISIBLE_DEVICES=0",
                       "HF_HOME=/tmp/hf", "OMP_NUM_THREADS=1", "A=b=c"));
}

}  // namespace
}  // namespace det::worker
