#include "cli/cli.h"

#include <exception>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "common/version.h"

namespace det::cli {

absl::StatusOr<Client*> Env::client() {
  if (client_ == nullptr) {
    absl::StatusOr<std::unique_ptr<Client>> client =
        Client::Create(client_options);
    if (!client.ok()) return client.status();
    client_ = *std::move(client);
  }
  return client_.get();
}

int Env::Fail(const absl::Status& status) {
  err << "Error: " << absl::StatusCodeToString(status.code()) << ": "
      << status.message() << std::endl;
  return kExitError;
}

void AddIdArgument(CLI::App* cmd, const char* name, const char* help,
                   int64_t* id) {
  cmd->add_option(name, *id, help)
      ->required()
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            int64_t value = 0;
            if (absl::SimpleAtoi(text, &value) && value > 0) return "";
            return absl::StrCat("expected a positive id, got \"", text, "\"");
          },
          "ID"));
}

int RunCli(int argc, char** argv, std::ostream& out, std::ostream& err,
           const RunOptions& options) {
  CLI::App app("det: hyperparameter search on a det cluster", "det");
  app.require_subcommand(1);
  // Global options may follow the subcommand: det experiment list -m HOST.
  app.fallthrough();
  app.set_version_flag("--version", absl::StrCat("det ", kVersion));

  ClientOptions client_options;
  app.add_option("-m,--master", client_options.master, "The master's HOST:PORT")
      ->envname("DET_MASTER")
      ->capture_default_str();
  app.add_option("--token", client_options.token,
                 "Token sent as \"authorization: Bearer TOKEN\"")
      ->envname("DET_TOKEN");
  app.add_option("--tls-ca", client_options.tls_ca_file,
                 "CA certificate (PEM) of the master: use TLS")
      ->envname("DET_MASTER_CERT_FILE");

  Action action;
  AddExperimentCommands(app, &action);
  AddTrialCommands(app, &action);
  AddAgentCommands(app, &action);
  AddMasterCommands(app, &action);
  AddPreviewCommands(app, &action);
  AddCheckpointCommands(app, &action);
  AddExperimentAdminCommands(app, &action);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e, out, err);
  }
  if (!action) {
    err << "Error: no command given; see det --help\n";
    return kExitError;
  }
  Env env(out, err, options.out_is_terminal, client_options, options.follow);
  try {
    return action(env);
  } catch (const std::exception& e) {
    // Nothing we call should throw; if something does, say what instead of
    // dying with an abort.
    err << "Error: " << e.what() << std::endl;
    return kExitError;
  }
}

int RunCli(int argc, char** argv, std::ostream& out, std::ostream& err) {
  return RunCli(argc, argv, out, err, RunOptions());
}

}  // namespace det::cli
