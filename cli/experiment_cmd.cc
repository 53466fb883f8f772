// det experiment create|list|describe|list-trials|pause|activate|cancel|
// kill|wait. The administration commands (logs, set, label, archive, config,
// fork) are in experiment_admin_cmd.cc.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cli/command.h"
#include "cli/experiment_admin_cmd.h"
#include "cli/output.h"
#include "cli/table.h"
#include "common/archive/context_archive.h"
#include "common/config.h"

namespace det::cli {
namespace {

namespace fs = std::filesystem;

struct CreateArgs {
  std::vector<std::string> positionals;  // CONFIG [DIR], or DIR
  std::vector<std::string> config;       // --config: a file or key=value
  bool paused = false;
  bool follow = false;
  bool validate_only = false;
};

// What `det experiment create` was asked to do, once the two spellings
// (CONFIG [DIR], and DIR --config=CONFIG) are told apart.
struct CreatePlan {
  std::string config_file;
  std::string context_dir;  // empty: no context
  std::vector<std::string> overrides;
};

bool IsDirectory(const std::string& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

bool IsRegularFile(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

// Determined spells both the config file and overrides `--config`: a value
// with '=' is an override unless a file of that name exists.
absl::StatusOr<CreatePlan> PlanCreate(const CreateArgs& args) {
  CreatePlan plan;
  std::vector<std::string> files;
  for (const std::string& value : args.config) {
    if (value.find('=') != std::string::npos && !IsRegularFile(value)) {
      plan.overrides.push_back(value);
    } else {
      files.push_back(value);
    }
  }
  const auto& pos = args.positionals;
  constexpr char kUsage[] =
      "usage: det experiment create CONFIG [DIR], or det experiment create "
      "DIR --config=CONFIG";
  if (files.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("more than one config file given with --config (",
                     absl::StrJoin(files, ", "), "); ", kUsage));
  }
  if (files.size() == 1) {
    if (pos.size() > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("with --config=", files[0],
                       " only a context directory may follow, "
                       "got ",
                       absl::StrJoin(pos, " "), "; ", kUsage));
    }
    plan.config_file = files[0];
    if (!pos.empty()) plan.context_dir = pos[0];
  } else {
    if (pos.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("no experiment config given; ", kUsage));
    }
    if (pos.size() > 2) {
      return absl::InvalidArgumentError(absl::StrCat(
          "too many arguments (", absl::StrJoin(pos, " "), "); ", kUsage));
    }
    plan.config_file = pos[0];
    if (pos.size() == 2) plan.context_dir = pos[1];
    // "det experiment create . config.yaml": the order swapped.
    if (pos.size() == 2 && IsDirectory(pos[0]) && IsRegularFile(pos[1])) {
      std::swap(plan.config_file, plan.context_dir);
    }
    if (IsDirectory(plan.config_file)) {
      return absl::InvalidArgumentError(
          absl::StrCat(plan.config_file,
                       " is a directory; give the config file too: ", kUsage));
    }
  }
  if (!plan.context_dir.empty() && !IsDirectory(plan.context_dir)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "context directory ", plan.context_dir, " is not a directory"));
  }
  return plan;
}

// Follows experiment `id` to its end; the exit status says whether it
// completed.
int Follow(Env& env, Client& client, int64_t id, bool show_progress) {
  ProgressPrinter progress(env.out, env.out_is_terminal);
  absl::StatusOr<v1::Experiment> final_state = WatchUntilTerminal(
      client, id, env.follow,
      [&](const v1::Experiment& e) {
        if (show_progress) progress.Update(e);
      },
      env.err);
  progress.Finish();
  if (!final_state.ok()) return env.Fail(final_state.status());
  PrintOutcome(env.out, *final_state);
  return final_state->state() == v1::STATE_COMPLETED ? kExitOk : kExitError;
}

int RunCreate(Env& env, const CreateArgs& args) {
  absl::StatusOr<CreatePlan> plan = PlanCreate(args);
  if (!plan.ok()) return env.Fail(plan.status());

  absl::StatusOr<std::string> yaml = ReadFile(plan->config_file);
  if (!yaml.ok()) return env.Fail(yaml.status());
  if (!plan->overrides.empty()) {
    yaml = ApplyConfigOverrides(*yaml, plan->overrides);
    if (!yaml.ok()) return env.Fail(yaml.status());
  }

  v1::CreateExperimentRequest request;
  request.set_config_yaml(*yaml);
  request.set_activate(!args.paused);
  request.set_validate_only(args.validate_only);
  if (!plan->context_dir.empty()) {
    absl::StatusOr<std::string> context = PackContext(plan->context_dir);
    if (!context.ok()) {
      return env.Fail(absl::Status(
          context.status().code(),
          absl::StrCat("packing context directory ", plan->context_dir, ": ",
                       context.status().message())));
    }
    request.set_context(std::move(*context));
  }

  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  absl::StatusOr<v1::CreateExperimentResponse> response =
      (*client)->CreateExperiment(request);
  if (!response.ok()) return env.Fail(response.status());
  for (const std::string& warning : response->warnings()) {
    env.err << "Warning: " << warning << '\n';
  }
  if (args.validate_only) {
    env.out << "The configuration is valid.\n";
    return kExitOk;
  }
  const int64_t id = response->experiment().id();
  env.out << "Created experiment " << id << '\n';
  env.out.flush();
  if (!args.follow) return kExitOk;
  return Follow(env, **client, id, /*show_progress=*/true);
}

void AddTrialRows(Table& table, const v1::ListTrialsResponse& trials) {
  for (const v1::Trial& t : trials.trials()) {
    table.AddRow({
        absl::StrCat(t.id()),
        StateName(t.state()),
        absl::StrCat(t.steps_completed(), "/", t.target_batches()),
        t.has_best_metric() ? FormatMetric(t.best_metric()) : "-",
        t.rung() >= 0 ? absl::StrCat(t.rung()) : "-",
        absl::StrCat(t.restarts()),
        t.agent_id().empty() ? "-" : t.agent_id(),
        FormatTime(t.start_time_us()),
        FormatDuration(t.start_time_us(), t.end_time_us()),
        FormatHParams(t.hparams()),
    });
  }
}

Table TrialTable() {
  Table table({"ID", "STATE", "BATCHES", "BEST", "RUNG", "RESTARTS", "AGENT",
               "STARTED", "DURATION", "HYPERPARAMETERS"});
  table.SetAlign(0, Table::Align::kRight);
  table.SetAlign(2, Table::Align::kRight);
  table.SetAlign(3, Table::Align::kRight);
  table.SetAlign(4, Table::Align::kRight);
  table.SetAlign(5, Table::Align::kRight);
  return table;
}

int RunList(Env& env, bool json, bool all) {
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  auto response = (*client)->ListExperiments();
  if (!response.ok()) return env.Fail(response.status());
  // Archived experiments only with --all, as Determined.
  *response = VisibleExperiments(*response, all);
  if (json) {
    auto text = MessageToJson(*response);
    if (!text.ok()) return env.Fail(text.status());
    PrintJson(env.out, *text);
    return kExitOk;
  }
  std::vector<std::string> headers = {
      "ID",     "NAME",   "STATE", "SEARCHER", "PROGRESS",
      "TRIALS", "METRIC", "BEST",  "STARTED",  "DURATION"};
  if (all) headers.push_back("ARCHIVED");
  Table table(headers);
  table.SetAlign(0, Table::Align::kRight);
  table.SetAlign(4, Table::Align::kRight);
  table.SetAlign(5, Table::Align::kRight);
  table.SetAlign(7, Table::Align::kRight);
  for (const v1::Experiment& e : response->experiments()) {
    std::vector<std::string> row = {
        absl::StrCat(e.id()),
        e.name(),
        StateName(e.state()),
        e.searcher(),
        FormatPercent(e.progress()),
        absl::StrCat(e.num_trials()),
        e.metric(),
        BestMetricCell(e),
        FormatTime(e.start_time_us()),
        FormatDuration(e.start_time_us(), e.end_time_us())};
    if (all) row.push_back(e.archived() ? "yes" : "no");
    table.AddRow(std::move(row));
  }
  table.Print(env.out);
  return kExitOk;
}

// The describe --json document of one experiment: the Experiment, with its
// trials added under "trials" (the top level keeps best_validation_metrics
// and best_trial_id for jq).
absl::StatusOr<std::string> DescribeDocument(
    const v1::Experiment& experiment, const v1::ListTrialsResponse& trials) {
  auto text = MessageToJson(experiment);
  if (!text.ok()) return text.status();
  std::vector<std::string> trial_docs;
  for (const v1::Trial& t : trials.trials()) {
    auto doc = MessageToJson(t);
    if (!doc.ok()) return doc.status();
    trial_docs.push_back(*std::move(doc));
  }
  return AddJsonMember(*text, "trials", JsonArray(trial_docs));
}

// det experiment describe ID[,ID...]: every experiment is read before
// anything prints, so an unknown id prints nothing but the error.
int RunDescribe(Env& env, const std::string& ids_text, bool json) {
  absl::StatusOr<std::vector<int64_t>> ids = ParseIdList(ids_text);
  if (!ids.ok()) return env.Fail(ids.status());
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  std::vector<std::pair<v1::Experiment, v1::ListTrialsResponse>> found;
  for (int64_t id : *ids) {
    auto experiment = (*client)->GetExperiment(id);
    if (!experiment.ok()) return env.Fail(experiment.status());
    auto trials = (*client)->ListTrials(id);
    if (!trials.ok()) return env.Fail(trials.status());
    found.emplace_back(*std::move(experiment), *std::move(trials));
  }
  if (json) {
    std::vector<std::string> docs;
    for (const auto& [experiment, trials] : found) {
      auto doc = DescribeDocument(experiment, trials);
      if (!doc.ok()) return env.Fail(doc.status());
      docs.push_back(*std::move(doc));
    }
    PrintJson(env.out, DescribeJson(docs));
    return kExitOk;
  }
  for (size_t i = 0; i < found.size(); ++i) {
    if (i > 0) env.out << '\n';
    PrintDescription(env.out, found[i].first, found[i].second);
  }
  return kExitOk;
}

int RunListTrials(Env& env, int64_t id, bool json) {
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  auto trials = (*client)->ListTrials(id);
  if (!trials.ok()) return env.Fail(trials.status());
  if (json) {
    auto text = MessageToJson(*trials);
    if (!text.ok()) return env.Fail(text.status());
    PrintJson(env.out, *text);
    return kExitOk;
  }
  Table table = TrialTable();
  AddTrialRows(table, *trials);
  table.Print(env.out);
  return kExitOk;
}

int RunChange(Env& env, int64_t id, ExperimentAction action) {
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  auto experiment = (*client)->ChangeExperiment(id, action);
  if (!experiment.ok()) return env.Fail(experiment.status());
  const char* verb = "";
  switch (action) {
    case ExperimentAction::kPause:
      verb = "Paused";
      break;
    case ExperimentAction::kActivate:
      verb = "Activated";
      break;
    case ExperimentAction::kCancel:
      verb = "Canceled";
      break;
    case ExperimentAction::kKill:
      verb = "Killed";
      break;
  }
  env.out << verb << " experiment " << id << " (now "
          << StateName(experiment->state()) << ")\n";
  return kExitOk;
}

int RunWait(Env& env, int64_t id, bool progress) {
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  return Follow(env, **client, id, progress);
}

void AddId(CLI::App* cmd, int64_t* id) {
  AddIdArgument(cmd, "id", "Experiment id", id);
}

}  // namespace

void PrintDescription(std::ostream& out, const v1::Experiment& e,
                      const v1::ListTrialsResponse& trials) {
  out << "Experiment " << e.id();
  if (!e.name().empty()) out << ": " << e.name();
  out << '\n';
  PrintFields(
      out,
      {
          {"State", StateName(e.state())},
          {"Message", e.message()},
          {"Description", e.description()},
          {"Labels", absl::StrJoin(e.labels(), ", ")},
          {"Archived", e.archived() ? "yes" : ""},
          {"Deleting", e.deleting()
                           ? "yes (its checkpoints' files go first, then it)"
                           : ""},
          {"Forked from",
           e.parent_id() != 0 ? absl::StrCat(e.parent_id()) : ""},
          {"Searcher",
           absl::StrCat(e.searcher(), ", metric ", e.metric(), " (",
                        e.smaller_is_better() ? "smaller" : "larger",
                        " is better)")},
          {"Progress", FormatPercent(e.progress())},
          {"Trials",
           absl::StrCat(e.num_trials(), " (", e.trials_queued(), " queued, ",
                        e.trials_running(), " running, ", e.trials_completed(),
                        " completed, ", e.trials_errored(), " errored, ",
                        e.trials_canceled(), " canceled)")},
          {"Priority", absl::StrCat(e.priority())},
          {"Max slots",
           e.has_max_slots()
               ? (e.max_slots() > 0 ? absl::StrCat(e.max_slots()) : "none")
               : ""},
          {"Started", FormatTime(e.start_time_us())},
          {"Ended", FormatTime(e.end_time_us())},
          {"Duration", FormatDuration(e.start_time_us(), e.end_time_us())},
      });
  if (e.best_trial_id() != 0) {
    out << "Best trial " << e.best_trial_id() << " (" << e.metric() << " "
        << BestMetricCell(e) << "), validation metrics:\n";
    PrintMetrics(out, e.best_validation_metrics(), 2);
  } else {
    out << "No validation metrics yet.\n";
  }
  out << '\n';
  Table table = TrialTable();
  AddTrialRows(table, trials);
  table.Print(out);
}

void AddExperimentCommands(CLI::App& app, Action* action) {
  CLI::App* group = app.add_subcommand(
      "experiment", "Create, inspect and control experiments");
  group->alias("e");
  group->alias("exp");
  group->require_subcommand(1);

  {
    auto args = std::make_shared<CreateArgs>();
    CLI::App* cmd = group->add_subcommand(
        "create",
        "Create an experiment: CONFIG [DIR], or DIR --config=CONFIG; "
        "--config KEY=VALUE overrides a config field");
    cmd->add_option("args", args->positionals,
                    "The config file and an optional context directory");
    cmd->add_option("--config", args->config,
                    "The config file, or KEY=VALUE to override one of its "
                    "fields (repeatable)")
        ->allow_extra_args(false);
    cmd->add_flag("--paused", args->paused,
                  "Create it paused: no trial starts until activated");
    cmd->add_flag("-f,--follow", args->follow,
                  "Show progress until the experiment ends");
    cmd->add_flag("--validate-only", args->validate_only,
                  "Only check the config with the master; create nothing");
    cmd->callback([action, args] {
      *action = [args](Env& env) { return RunCreate(env, *args); };
    });
  }
  {
    struct Args {
      bool json = false;
      bool all = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand(
        "list", "List experiments (archived ones only with --all)");
    cmd->alias("ls");
    cmd->add_flag("--json", args->json, "Print JSON");
    cmd->add_flag("--all", args->all,
                  "Show archived experiments too (and an ARCHIVED column)");
    cmd->callback([action, args] {
      *action = [args](Env& env) {
        return RunList(env, args->json, args->all);
      };
    });
  }
  {
    struct Args {
      std::string ids;
      bool json = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand(
        "describe",
        "Show experiments (ID or ID,ID,...), their best metrics and trials");
    cmd->add_option("ids", args->ids, "Experiment id, or ids separated by ','")
        ->required()
        ->check(CLI::Validator(
            [](std::string& text) -> std::string {
              auto ids = ParseIdList(text);
              return ids.ok() ? "" : std::string(ids.status().message());
            },
            "ID[,ID...]"));
    cmd->add_flag("--json", args->json,
                  "Print JSON (the experiment, with its trials under "
                  "\"trials\"; a list of them for several ids)");
    cmd->callback([action, args] {
      *action = [args](Env& env) {
        return RunDescribe(env, args->ids, args->json);
      };
    });
  }
  {
    struct Args {
      int64_t id = 0;
      bool json = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd =
        group->add_subcommand("list-trials", "List an experiment's trials");
    cmd->alias("lt");
    AddId(cmd, &args->id);
    cmd->add_flag("--json", args->json, "Print JSON");
    cmd->callback([action, args] {
      *action = [args](Env& env) {
        return RunListTrials(env, args->id, args->json);
      };
    });
  }
  const struct {
    const char* name;
    const char* help;
    ExperimentAction what;
  } changes[] = {
      {"pause", "Pause: trials checkpoint and stop", ExperimentAction::kPause},
      {"activate", "Resume a paused experiment", ExperimentAction::kActivate},
      {"cancel", "Stop: trials checkpoint and the search ends",
       ExperimentAction::kCancel},
      {"kill", "Stop now: trials are killed", ExperimentAction::kKill},
  };
  for (const auto& change : changes) {
    auto id = std::make_shared<int64_t>(0);
    CLI::App* cmd = group->add_subcommand(change.name, change.help);
    AddId(cmd, id.get());
    const ExperimentAction what = change.what;
    cmd->callback([action, id, what] {
      *action = [id, what](Env& env) { return RunChange(env, *id, what); };
    });
  }
  {
    struct Args {
      int64_t id = 0;
      bool progress = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand(
        "wait", "Wait until the experiment ends; exit 0 only if it COMPLETED");
    AddId(cmd, &args->id);
    cmd->add_flag("--progress", args->progress, "Show progress while waiting");
    cmd->callback([action, args] {
      *action = [args](Env& env) {
        return RunWait(env, args->id, args->progress);
      };
    });
  }
  AddContinueCommand(group, action);
}

}  // namespace det::cli
