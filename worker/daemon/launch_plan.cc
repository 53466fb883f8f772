#include "worker/daemon/launch_plan.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace det::worker {

absl::StatusOr<LaunchPlan> PlanLaunch(const v1::StartTrial& start,
                                      const LaunchContext& ctx) {
  const v1::TrialSpec& spec = start.spec();
  const std::vector<int32_t> slot_ids(start.slot_ids().begin(),
                                      start.slot_ids().end());
  if (spec.trial_id() <= 0) {
    return absl::InvalidArgumentError("StartTrial without a trial id");
  }
  std::set<int32_t> seen;
  for (int32_t s : slot_ids) {
    if (s < 0 || s >= ctx.num_slots || !seen.insert(s).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("slot ids [", absl::StrJoin(slot_ids, ","),
                       "] are not distinct slots of this worker (it has ",
                       ctx.num_slots, ")"));
    }
  }
  if (slot_ids.empty()) {
    return absl::InvalidArgumentError("no slots were assigned");
  }
  const int world = std::max(1, spec.world_size());
  const int nproc = world > 1 ? static_cast<int>(slot_ids.size()) : 1;
  if (world > 1 &&
      (spec.first_rank() < 0 || spec.first_rank() + nproc > world)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ranks ", spec.first_rank(), "..", spec.first_rank() + nproc - 1,
        " do not fit world size ", world));
  }
  // The master chose the folder (with this worker's --checkpoint-root,
  // which the Hello carries) and the restore candidates.
  if (spec.checkpoint_dir().empty()) {
    return absl::InvalidArgumentError(
        "the master sent no checkpoint directory");
  }

  LaunchPlan plan;
  plan.dir = (std::filesystem::path(ctx.work_dir) /
              absl::StrCat("trial-", spec.trial_id(), "-run-", spec.run_id()))
                 .string();
  if (spec.entrypoint().empty()) {
    if (ctx.trial_binary.empty() || !ctx.trial_binary_executable) {
      return absl::InvalidArgumentError(
          absl::StrCat("the built-in trainer '", ctx.trial_binary,
                       "' is missing or not executable; start the worker with "
                       "--trial-binary"));
    }
    plan.argv = {ctx.trial_binary};
  } else if (std::optional<std::vector<std::string>> words =
                 ctx.find_program ? ctx.find_program(spec.entrypoint())
                                  : std::nullopt;
             words.has_value()) {
    // Plain words: exec'ed directly, as the shell would after splitting
    // them, without paying for a shell per trial.
    plan.argv = std::move(*words);
    plan.shell_on_noexec = true;
  } else {
    // A plain command is exec'ed by the shell, so the trial itself is the
    // process the worker watches and signals: a shell in between would die
    // of the stop signal while the trial was still writing its checkpoint.
    const bool simple =
        spec.entrypoint().find_first_of(";&|<>()`$\n") == std::string::npos;
    plan.argv = {
        "/bin/sh", "-c",
        simple ? absl::StrCat("exec ", spec.entrypoint()) : spec.entrypoint()};
  }
  for (int i = 0; i < nproc; ++i) {
    LaunchPlan::Process p;
    p.rank = world > 1 ? spec.first_rank() + i : 0;
    p.slots = world > 1 ? std::vector<int32_t>{slot_ids[i]} : slot_ids;
    plan.processes.push_back(std::move(p));
  }
  return plan;
}

void ApplyUserEnvironment(
    const google::protobuf::RepeatedPtrField<std::string>& user,
    std::vector<std::string>* env) {
  for (const std::string& kv : user) {
    size_t eq = kv.find('=');
    if (eq == 0 || eq == std::string::npos) continue;
    const std::string name = kv.substr(0, eq);
    if (absl::StartsWith(name, "DET_") || name == "CUDA_VISIBLE_DEVICES" ||
        name == "CUDA_DEVICE_ORDER") {
      continue;
    }
    const std::string prefix = name + "=";
    env->erase(std::remove_if(env->begin(), env->end(),
                              [&](const std::string& e) {
                                return absl::StartsWith(e, prefix);
                              }),
               env->end());
    env->push_back(kv);
  }
}

}  // namespace det::worker
