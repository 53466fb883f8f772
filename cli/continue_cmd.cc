// det experiment continue ID [--config KEY=VALUE ...] [-f]: Determined
// 0.26's command for a single-searcher experiment that has ended. Its trial
// trains further in the same experiment, restoring its latest checkpoint
// (the step count continues); the overrides change the stored config
// first, e.g. --config searcher.max_length.batches=2000.
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/follow.h"
#include "common/rpc/states.h"

namespace det::cli {
namespace {

struct ContinueArgs {
  int64_t id = 0;
  std::vector<std::string> overrides;
  bool follow = false;
};

int RunContinue(Env& env, const ContinueArgs& args) {
  for (const std::string& kv : args.overrides) {
    if (kv.find('=') == std::string::npos) {
      return env.Fail(absl::InvalidArgumentError(
          "--config " + kv +
          ": expected KEY=VALUE, e.g. searcher.max_length.batches=2000"));
    }
  }
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  v1::ContinueExperimentRequest request;
  request.set_experiment_id(args.id);
  for (const std::string& kv : args.overrides) {
    request.add_config_overrides(kv);
  }
  absl::StatusOr<v1::ContinueExperimentResponse> response =
      (*client)->ContinueExperiment(request);
  if (!response.ok()) return env.Fail(response.status());
  for (const std::string& warning : response->warnings()) {
    env.err << "Warning: " << warning << '\n';
  }
  env.out << "Continued experiment " << args.id << '\n';
  env.out.flush();
  if (!args.follow) return kExitOk;
  ProgressPrinter progress(env.out, env.out_is_terminal);
  absl::StatusOr<v1::Experiment> final_state = WatchUntilTerminal(
      **client, args.id, env.follow,
      [&](const v1::Experiment& e) { progress.Update(e); }, env.err);
  progress.Finish();
  if (!final_state.ok()) return env.Fail(final_state.status());
  PrintOutcome(env.out, *final_state);
  return final_state->state() == v1::STATE_COMPLETED ? kExitOk : kExitError;
}

}  // namespace

void AddContinueCommand(CLI::App* group, Action* action) {
  auto args = std::make_shared<ContinueArgs>();
  CLI::App* cmd = group->add_subcommand(
      "continue",
      "Train an ended single-searcher experiment's trial further, from its "
      "latest checkpoint, in the same experiment");
  AddIdArgument(cmd, "id", "Experiment id", &args->id);
  cmd->add_option("--config", args->overrides,
                  "KEY=VALUE to override a field of the experiment's config "
                  "(repeatable), e.g. searcher.max_length.batches=2000")
      ->allow_extra_args(false);
  cmd->add_flag("-f,--follow", args->follow,
                "Show progress until the experiment ends");
  cmd->callback([action, args] {
    *action = [args](Env& env) { return RunContinue(env, *args); };
  });
}

}  // namespace det::cli
