// det experiment logs|set|label|archive|unarchive|config|fork, and
// det trial kill: the daily administration of experiments (Determined's
// semantics; issue 15).
#include "cli/experiment_admin_cmd.h"

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/command.h"
#include "cli/output.h"
#include "common/config.h"

namespace det::cli {

absl::StatusOr<std::vector<int64_t>> ParseIdList(absl::string_view text) {
  std::vector<int64_t> ids;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    absl::string_view id_text = absl::StripAsciiWhitespace(part);
    int64_t id = 0;
    if (!absl::SimpleAtoi(id_text, &id) || id <= 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "expected a positive id or ids separated by ',' (e.g. 1,2,3), got \"",
          text, "\" (\"", id_text, "\" is not a positive id)"));
    }
    if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
  }
  return ids;
}

std::string DescribeJson(const std::vector<std::string>& docs) {
  if (docs.size() == 1) return docs.front();
  return JsonArray(docs);
}

v1::ListExperimentsResponse VisibleExperiments(
    const v1::ListExperimentsResponse& list, bool all) {
  if (all) return list;
  v1::ListExperimentsResponse out;
  for (const v1::Experiment& e : list.experiments()) {
    if (!e.archived()) *out.add_experiments() = e;
  }
  return out;
}

absl::StatusOr<std::string> ForkConfigYaml(
    const std::string& base, const std::vector<std::string>& overrides) {
  for (const std::string& o : overrides) {
    if (o.find('=') == std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--config ", o,
          ": expected KEY=VALUE (e.g. searcher.max_trials=4); give a config "
          "file with --config-file"));
    }
  }
  if (overrides.empty()) return base;
  return ApplyConfigOverrides(base, overrides);
}

absl::StatusOr<int32_t> ParseMaxSlots(absl::string_view text) {
  absl::string_view t = absl::StripAsciiWhitespace(text);
  if (absl::AsciiStrToLower(t) == "none") return 0;
  int32_t n = 0;
  if (!absl::SimpleAtoi(t, &n) || n <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max-slots: expected a positive number of slots or "
                     "\"none\" (no limit), got \"",
                     text, "\""));
  }
  return n;
}

namespace {

// ---- det experiment logs ----

// Every line of every trial of the experiment, in the order the master
// stored them (log ids are global), each prefixed "[Trial N] ". With
// follow, new lines are read every poll_interval until the experiment is
// terminal; a broken connection is retried with backoff and nothing
// prints twice (each trial's last line id is kept).
int RunLogs(Env& env, int64_t id, bool follow, bool json) {
  if (follow && json) {
    return env.Fail(absl::InvalidArgumentError(
        "--json prints the logs as one document: it cannot be combined with "
        "--follow"));
  }
  absl::StatusOr<Client*> client_or = env.client();
  if (!client_or.ok()) return env.Fail(client_or.status());
  Client& client = **client_or;

  std::map<int64_t, int64_t> after;  // trial id -> last line id printed
  // Trials that had ended before their lines were last read: nothing more
  // comes from them, so following does not ask again.
  std::set<int64_t> done;
  std::vector<std::string> docs;
  Backoff backoff(env.follow);
  // One pass: true when the experiment was terminal before its lines were
  // read (so nothing more can come).
  auto pass = [&](bool* terminal) -> absl::Status {
    auto experiment = client.GetExperiment(id);
    if (!experiment.ok()) return experiment.status();
    *terminal = IsTerminal(experiment->state());
    auto trials = client.ListTrials(id);
    if (!trials.ok()) return trials.status();
    std::vector<v1::TrialLogLine> lines;
    std::vector<int64_t> ended;
    for (const v1::Trial& t : trials->trials()) {
      if (done.count(t.id())) continue;
      if (IsTerminal(t.state())) ended.push_back(t.id());
      v1::StreamTrialLogsRequest request;
      request.set_trial_id(t.id());
      request.set_after_id(after[t.id()]);
      absl::Status status =
          client.StreamTrialLogs(request, env.client_options.call_timeout,
                                 [&](const v1::TrialLogLine& line) {
                                   lines.push_back(line);
                                   return true;
                                 });
      if (!status.ok()) return status;
    }
    std::stable_sort(lines.begin(), lines.end(),
                     [](const v1::TrialLogLine& a, const v1::TrialLogLine& b) {
                       return a.id() < b.id();
                     });
    for (const v1::TrialLogLine& line : lines) {
      int64_t& last = after[line.trial_id()];
      if (line.id() <= last) continue;
      last = line.id();
      if (json) {
        auto doc = MessageToJson(line);
        if (!doc.ok()) return doc.status();
        docs.push_back(*std::move(doc));
      } else {
        PrintLogLine(env.out, line,
                     absl::StrCat("[Trial ", line.trial_id(), "] "));
      }
    }
    env.out.flush();
    done.insert(ended.begin(), ended.end());
    return absl::OkStatus();
  };

  bool ever_ok = false;
  while (true) {
    bool terminal = false;
    absl::Status status = pass(&terminal);
    if (status.ok()) {
      ever_ok = true;
      backoff.Reset();
      if (!follow || terminal) break;
      absl::SleepFor(env.follow.poll_interval);
      continue;
    }
    // Before anything worked, a failure is the user's to fix.
    const bool retryable = status.code() == absl::StatusCode::kUnavailable ||
                           status.code() == absl::StatusCode::kDeadlineExceeded;
    if (!follow || !ever_ok || !retryable) return env.Fail(status);
    if (!backoff.Wait(env.err, status)) return env.Fail(status);
  }
  if (json) {
    auto text = AddJsonMember("{}", "lines", JsonArray(docs));
    if (!text.ok()) return env.Fail(text.status());
    PrintJson(env.out, *text);
  }
  return kExitOk;
}

// ---- det experiment set / label ----

int RunPatch(Env& env, const v1::PatchExperimentRequest& patch,
             const std::string& done) {
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  auto experiment = (*client)->PatchExperiment(patch);
  if (!experiment.ok()) return env.Fail(experiment.status());
  env.out << done << '\n';
  return kExitOk;
}

void AddSetCommands(CLI::App* group, Action* action) {
  CLI::App* set = group->add_subcommand(
      "set", "Change an experiment's priority, max-slots, description or name");
  set->require_subcommand(1);
  struct Args {
    int64_t id = 0;
    std::string value;
  };
  const struct {
    const char* name;
    const char* help;
    const char* value_help;
  } fields[] = {
      {"priority", "Set the priority (1..99, lower runs first) of its trials",
       "Priority"},
      {"max-slots", "Set how many slots its trials hold at once at most",
       "Slots, or \"none\" for no limit"},
      {"description", "Set the description", "Description"},
      {"name", "Set the name", "Name"},
  };
  for (const auto& field : fields) {
    auto args = std::make_shared<Args>();
    CLI::App* cmd = set->add_subcommand(field.name, field.help);
    AddIdArgument(cmd, "id", "Experiment id", &args->id);
    cmd->add_option("value", args->value, field.value_help)->required();
    const std::string name = field.name;
    cmd->callback([action, args, name] {
      *action = [args, name](Env& env) {
        v1::PatchExperimentRequest patch;
        patch.set_experiment_id(args->id);
        std::string shown = args->value;
        if (name == "priority") {
          int32_t priority = 0;
          if (!absl::SimpleAtoi(args->value, &priority)) {
            return env.Fail(absl::InvalidArgumentError(
                absl::StrCat("priority: expected a number from 1 to 99, got \"",
                             args->value, "\"")));
          }
          patch.set_priority(priority);
        } else if (name == "max-slots") {
          auto slots = ParseMaxSlots(args->value);
          if (!slots.ok()) return env.Fail(slots.status());
          patch.set_max_slots(*slots);
          if (*slots == 0) shown = "none";
        } else if (name == "description") {
          patch.set_description(args->value);
          shown = absl::StrCat("'", args->value, "'");
        } else {
          patch.set_name(args->value);
          shown = absl::StrCat("'", args->value, "'");
        }
        return RunPatch(env, patch,
                        absl::StrCat("Set ", name, " of experiment ", args->id,
                                     " to ", shown));
      };
    });
  }
}

void AddLabelCommands(CLI::App* group, Action* action) {
  CLI::App* label =
      group->add_subcommand("label", "Add or remove an experiment's labels");
  label->require_subcommand(1);
  struct Args {
    int64_t id = 0;
    std::string label;
  };
  for (bool add : {true, false}) {
    auto args = std::make_shared<Args>();
    CLI::App* cmd = label->add_subcommand(
        add ? "add" : "remove",
        add ? "Add a label (kept once)" : "Remove a label (absent: no error)");
    AddIdArgument(cmd, "id", "Experiment id", &args->id);
    cmd->add_option("label", args->label, "The label")->required();
    cmd->callback([action, args, add] {
      *action = [args, add](Env& env) {
        v1::PatchExperimentRequest patch;
        patch.set_experiment_id(args->id);
        if (add) {
          patch.add_add_labels(args->label);
        } else {
          patch.add_remove_labels(args->label);
        }
        return RunPatch(env, patch,
                        add ? absl::StrCat("Added label '", args->label,
                                           "' to experiment ", args->id)
                            : absl::StrCat("Removed label '", args->label,
                                           "' from experiment ", args->id));
      };
    });
  }
}

// ---- det experiment archive / unarchive / config ----

int RunArchive(Env& env, int64_t id, bool archived) {
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  auto experiment = (*client)->SetExperimentArchived(id, archived);
  if (!experiment.ok()) return env.Fail(experiment.status());
  env.out << (archived ? "Archived" : "Unarchived") << " experiment " << id
          << '\n';
  return kExitOk;
}

int RunConfig(Env& env, int64_t id) {
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  auto yaml = (*client)->GetExperimentConfig(id);
  if (!yaml.ok()) return env.Fail(yaml.status());
  env.out << *yaml;
  if (!yaml->empty() && yaml->back() != '\n') env.out << '\n';
  return kExitOk;
}

// ---- det experiment fork ----

struct ForkArgs {
  int64_t id = 0;
  std::string config_file;
  std::vector<std::string> overrides;
  bool paused = false;
};

int RunFork(Env& env, const ForkArgs& args) {
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  absl::StatusOr<std::string> base;
  if (!args.config_file.empty()) {
    base = ReadFile(args.config_file);
  } else {
    base = (*client)->GetExperimentConfig(args.id);
  }
  if (!base.ok()) return env.Fail(base.status());
  auto yaml = ForkConfigYaml(*base, args.overrides);
  if (!yaml.ok()) return env.Fail(yaml.status());
  v1::ForkExperimentRequest request;
  request.set_experiment_id(args.id);
  request.set_config_yaml(*yaml);
  request.set_activate(!args.paused);
  auto response = (*client)->ForkExperiment(request);
  if (!response.ok()) return env.Fail(response.status());
  for (const std::string& warning : response->warnings()) {
    env.err << "Warning: " << warning << '\n';
  }
  env.out << "Created experiment " << response->experiment().id()
          << " (forked from experiment " << args.id << ")\n";
  return kExitOk;
}

// ---- det trial kill ----

int RunKillTrial(Env& env, int64_t id) {
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  auto trial = (*client)->KillTrial(id);
  if (!trial.ok()) return env.Fail(trial.status());
  env.out << "Killed trial " << id << " (now " << StateName(trial->state())
          << ")\n";
  return kExitOk;
}

}  // namespace

void AddExperimentAdminCommands(CLI::App& app, Action* action) {
  CLI::App* group = app.get_subcommand("experiment");
  {
    struct Args {
      int64_t id = 0;
      bool follow = false;
      bool json = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand(
        "logs", "Print the logs of every trial, each line with \"[Trial N]\"");
    AddIdArgument(cmd, "id", "Experiment id", &args->id);
    cmd->add_flag("-f,--follow", args->follow,
                  "Keep printing new lines until the experiment ends");
    cmd->add_flag("--json", args->json,
                  "Print JSON: {\"lines\": [...]} (not with --follow)");
    cmd->callback([action, args] {
      *action = [args](Env& env) {
        return RunLogs(env, args->id, args->follow, args->json);
      };
    });
  }
  AddSetCommands(group, action);
  AddLabelCommands(group, action);
  for (bool archived : {true, false}) {
    auto id = std::make_shared<int64_t>(0);
    CLI::App* cmd = group->add_subcommand(
        archived ? "archive" : "unarchive",
        archived ? "Archive an ended experiment: det experiment list hides it"
                 : "Unarchive an experiment");
    AddIdArgument(cmd, "id", "Experiment id", id.get());
    cmd->callback([action, id, archived] {
      *action = [id, archived](Env& env) {
        return RunArchive(env, *id, archived);
      };
    });
  }
  {
    auto id = std::make_shared<int64_t>(0);
    CLI::App* cmd = group->add_subcommand(
        "config", "Print the experiment's config (YAML), as it stands now");
    AddIdArgument(cmd, "id", "Experiment id", id.get());
    cmd->callback([action, id] {
      *action = [id](Env& env) { return RunConfig(env, *id); };
    });
  }
  {
    auto args = std::make_shared<ForkArgs>();
    CLI::App* cmd = group->add_subcommand(
        "fork",
        "Create an experiment from another's config and context directory");
    AddIdArgument(cmd, "id", "The experiment to fork", &args->id);
    cmd->add_option("--config-file", args->config_file,
                    "Use this config instead of the experiment's");
    cmd->add_option("--config", args->overrides,
                    "KEY=VALUE: override a config field (repeatable)")
        ->allow_extra_args(false);
    cmd->add_flag("--paused", args->paused,
                  "Create it paused: no trial starts until activated");
    cmd->callback([action, args] {
      *action = [args](Env& env) { return RunFork(env, *args); };
    });
  }

  CLI::App* trial = app.get_subcommand("trial");
  {
    auto id = std::make_shared<int64_t>(0);
    CLI::App* cmd = trial->add_subcommand(
        "kill", "Kill a trial: it ends CANCELED, the experiment goes on");
    AddIdArgument(cmd, "id", "Trial id", id.get());
    cmd->callback([action, id] {
      *action = [id](Env& env) { return RunKillTrial(env, *id); };
    });
  }
}

}  // namespace det::cli
