// What the det command groups share: the environment a command runs in and
// the functions that add each group's subcommands to the CLI11 parser.
//
// Parsing and running are separate steps: a group's subcommand, when chosen,
// stores its Action; RunCli runs it after the whole command line parsed, so
// global options (-m, --token) may appear anywhere on the line.
#ifndef DET_CLI_COMMAND_H_
#define DET_CLI_COMMAND_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/client.h"
#include "cli/follow.h"

namespace det::cli {

// Exit statuses: 0 success, 1 any error (bad input, master unreachable, an
// experiment that did not complete), CLI11's own codes for usage errors.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;

class Env {
 public:
  Env(std::ostream& out, std::ostream& err, bool out_is_terminal,
      ClientOptions client_options, FollowOptions follow_options)
      : out(out),
        err(err),
        out_is_terminal(out_is_terminal),
        client_options(std::move(client_options)),
        follow(follow_options) {}

  std::ostream& out;
  std::ostream& err;
  const bool out_is_terminal;
  const ClientOptions client_options;
  const FollowOptions follow;

  // The connection to the master, made on first use (preview-search never
  // needs one).
  absl::StatusOr<Client*> client();

  // Writes "Error: CODE: message" to err; returns kExitError.
  int Fail(const absl::Status& status);

 private:
  std::unique_ptr<Client> client_;
};

using Action = std::function<int(Env&)>;

// Adds the required positional id (a positive integer) `name` to `cmd`.
void AddIdArgument(CLI::App* cmd, const char* name, const char* help,
                   int64_t* id);

// Each adds its subcommands under `app`; the chosen one sets *action.
// `action` outlives the parse.
void AddExperimentCommands(CLI::App& app, Action* action);
void AddTrialCommands(CLI::App& app, Action* action);
void AddAgentCommands(CLI::App& app, Action* action);
void AddMasterCommands(CLI::App& app, Action* action);
void AddPreviewCommands(CLI::App& app, Action* action);
// Also adds `experiment download` and `experiment delete`: call it after
// AddExperimentCommands.
void AddCheckpointCommands(CLI::App& app, Action* action);
// Experiment administration (experiment_admin_cmd.cc): adds to the
// experiment and trial groups, so it runs after AddExperimentCommands and
// AddTrialCommands.
void AddExperimentAdminCommands(CLI::App& app, Action* action);
// `det experiment continue` (continue_cmd.cc), under the experiment group.
void AddContinueCommand(CLI::App* experiment_group, Action* action);

}  // namespace det::cli

#endif  // DET_CLI_COMMAND_H_
