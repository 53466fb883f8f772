// det agent list, det slot list.
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/command.h"
#include "cli/output.h"
#include "cli/table.h"

namespace det::cli {
namespace {

int RunAgentList(Env& env, bool json) {
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  auto agents = (*client)->ListAgents();
  if (!agents.ok()) return env.Fail(agents.status());
  if (json) {
    auto text = MessageToJson(*agents);
    if (!text.ok()) return env.Fail(text.status());
    PrintJson(env.out, *text);
    return kExitOk;
  }
  Table table({"ID", "ADDRESS", "VERSION", "CONNECTED", "SLOTS", "USED", "TYPE",
               "REGISTERED", "LAST HEARTBEAT"});
  table.SetAlign(4, Table::Align::kRight);
  table.SetAlign(5, Table::Align::kRight);
  for (const v1::Agent& a : agents->agents()) {
    int used = 0;
    std::set<std::string> types;
    for (const v1::Slot& s : a.slots()) {
      if (s.trial_id() != 0) ++used;
      types.insert(s.type());
    }
    table.AddRow({a.id(), a.address(), a.version(),
                  a.connected() ? "yes" : "no", absl::StrCat(a.slots_size()),
                  absl::StrCat(used), absl::StrJoin(types, ","),
                  FormatTime(a.registered_time_us()),
                  FormatTime(a.last_heartbeat_us())});
  }
  table.Print(env.out);
  return kExitOk;
}

int RunSlotList(Env& env, bool json) {
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  auto agents = (*client)->ListAgents();
  if (!agents.ok()) return env.Fail(agents.status());
  if (json) {
    // {"slots": [...]}: each Slot document with its agent's id and
    // connection state added.
    std::vector<std::string> slots;
    for (const v1::Agent& a : agents->agents()) {
      for (const v1::Slot& s : a.slots()) {
        auto doc = MessageToJson(s);
        if (!doc.ok()) return env.Fail(doc.status());
        auto with_agent = AddJsonMember(*doc, "agent_id", JsonQuote(a.id()));
        if (!with_agent.ok()) return env.Fail(with_agent.status());
        auto with_state = AddJsonMember(*with_agent, "connected",
                                        a.connected() ? "true" : "false");
        if (!with_state.ok()) return env.Fail(with_state.status());
        slots.push_back(*std::move(with_state));
      }
    }
    auto text = AddJsonMember("{}", "slots", JsonArray(slots));
    if (!text.ok()) return env.Fail(text.status());
    PrintJson(env.out, *text);
    return kExitOk;
  }
  Table table({"AGENT", "SLOT", "TYPE", "DEVICE", "CONNECTED", "TRIAL"});
  table.SetAlign(1, Table::Align::kRight);
  table.SetAlign(5, Table::Align::kRight);
  for (const v1::Agent& a : agents->agents()) {
    for (const v1::Slot& s : a.slots()) {
      table.AddRow({a.id(), absl::StrCat(s.id()), s.type(), s.device(),
                    a.connected() ? "yes" : "no",
                    s.trial_id() != 0 ? absl::StrCat(s.trial_id()) : "-"});
    }
  }
  table.Print(env.out);
  return kExitOk;
}

// Adds `<name> list [--json]` under `app`.
void AddList(CLI::App& app, const char* name, const char* alias,
             const char* help, Action* action, int (*run)(Env&, bool)) {
  CLI::App* group = app.add_subcommand(name, help);
  group->alias(alias);
  group->require_subcommand(1);
  auto json = std::make_shared<bool>(false);
  CLI::App* cmd = group->add_subcommand("list", help);
  cmd->alias("ls");
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback([action, json, run] {
    *action = [json, run](Env& env) { return run(env, *json); };
  });
}

}  // namespace

void AddAgentCommands(CLI::App& app, Action* action) {
  AddList(app, "agent", "a", "List the workers (agents) and their slots",
          action, RunAgentList);
  AddList(app, "slot", "s", "List every slot of every worker", action,
          RunSlotList);
}

}  // namespace det::cli
