// det master info.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/output.h"
#include "cli/table.h"
#include "common/version.h"

namespace det::cli {
namespace {

int RunInfo(Env& env, bool json) {
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  auto info = (*client)->GetMasterInfo();
  if (!info.ok()) return env.Fail(info.status());
  if (json) {
    auto text = MessageToJson(*info);
    if (!text.ok()) return env.Fail(text.status());
    PrintJson(env.out, *text);
    return kExitOk;
  }
  env.out << "Master at " << (*client)->target() << '\n';
  PrintFields(
      env.out,
      {
          {"Version", info->version()},
          {"Cluster ID", info->cluster_id()},
          {"gRPC address", info->grpc_address()},
          {"HTTP address", info->http_address()},
          {"Started", FormatTime(info->start_time_us())},
          {"Up", FormatDuration(info->start_time_us(), 0)},
          {"Protocol version", absl::StrCat(info->protocol_version())},
          {"Agents", absl::StrCat(info->num_agents())},
          {"Slots",
           absl::StrCat(info->slots_used(), " used of ", info->slots_total())},
          {"Store",
           info->store_available()
               ? std::string("available")
               : absl::StrCat("UNAVAILABLE since ",
                              FormatTime(info->store_unavailable_since_us()),
                              " (", info->store_error(),
                              "); writes are refused and "
                              "retried with backoff")},
          {"CLI version", kVersion},
      });
  return kExitOk;
}

}  // namespace

void AddMasterCommands(CLI::App& app, Action* action) {
  CLI::App* group = app.add_subcommand("master", "Inspect the master");
  group->require_subcommand(1);
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = group->add_subcommand(
      "info", "Show the master's version, addresses and cluster size");
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback([action, json] {
    *action = [json](Env& env) { return RunInfo(env, *json); };
  });
}

}  // namespace det::cli
