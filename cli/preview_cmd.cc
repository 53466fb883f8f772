// det preview-search CONFIG: the plan of a search (trials, brackets, rungs,
// total training), computed here from the config without a master.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/command.h"
#include "cli/output.h"
#include "common/config.h"
#include "master/searcher/preview.h"
#include "master/searcher/preview_proto.h"

namespace det::cli {
namespace {

struct PreviewArgs {
  std::string config_file;
  std::vector<std::string> overrides;
  bool json = false;
};

// The plan as JSON: det.v1.PreviewSearchResponse (the schema the master's
// PreviewSearch answers with), plus the plan's fields that message lacks.
absl::StatusOr<std::string> PlanToJson(const searcher::SearchPlan& plan) {
  const v1::PreviewSearchResponse r = searcher::PlanToProto(plan);
  absl::StatusOr<std::string> json = MessageToJson(r);
  if (!json.ok()) return json;

  std::vector<std::string> notes;
  for (const std::string& note : plan.notes) notes.push_back(JsonQuote(note));
  // Written like protobuf's mapping writes int64 values (as strings), so
  // every length in the document has the same JSON type.
  const std::pair<const char*, std::string> extra[] = {
      {"metric", JsonQuote(plan.metric)},
      {"smaller_is_better", plan.smaller_is_better ? "true" : "false"},
      {"max_concurrent_trials",
       JsonQuote(absl::StrCat(plan.max_concurrent_trials))},
      {"expected_length", JsonQuote(absl::StrCat(plan.expected_length))},
      {"notes", JsonArray(notes)},
      // searcher.sampler; with tpe, the most trials that are random draws.
      {"sampler", JsonQuote(plan.sampler)},
      {"tpe_random_trials", JsonQuote(absl::StrCat(plan.tpe_random_trials))},
  };
  for (const auto& [key, value] : extra) {
    json = AddJsonMember(*json, key, value);
    if (!json.ok()) return json;
  }
  return json;
}

int RunPreview(Env& env, const PreviewArgs& args) {
  absl::StatusOr<std::string> yaml = ReadFile(args.config_file);
  if (!yaml.ok()) return env.Fail(yaml.status());
  if (!args.overrides.empty()) {
    yaml = ApplyConfigOverrides(*yaml, args.overrides);
    if (!yaml.ok()) return env.Fail(yaml.status());
  }
  absl::StatusOr<ExperimentConfig> config = ParseExperimentConfig(*yaml);
  if (!config.ok()) {
    return env.Fail(absl::Status(
        config.status().code(),
        absl::StrCat(args.config_file, ":\n", config.status().message())));
  }
  // As `det experiment create` prints them: legal but likely unintended.
  for (const ConfigError& w : config->warnings) {
    env.err << "Warning: " << args.config_file << ": " << w.ToString() << '\n';
  }
  absl::StatusOr<searcher::SearchPlan> plan = searcher::PlanSearch(*config);
  if (!plan.ok()) return env.Fail(plan.status());
  if (args.json) {
    absl::StatusOr<std::string> json = PlanToJson(*plan);
    if (!json.ok()) return env.Fail(json.status());
    PrintJson(env.out, *json);
    return kExitOk;
  }
  env.out << searcher::FormatPlan(*plan);
  return kExitOk;
}

}  // namespace

void AddPreviewCommands(CLI::App& app, Action* action) {
  auto args = std::make_shared<PreviewArgs>();
  CLI::App* cmd = app.add_subcommand(
      "preview-search",
      "Show the plan of a search (trials, brackets, rungs) without running "
      "it; needs no master");
  cmd->add_option("config", args->config_file, "The experiment config file")
      ->required();
  cmd->add_option("--config", args->overrides,
                  "KEY=VALUE: override a field of the config (repeatable)")
      ->allow_extra_args(false);
  cmd->add_flag("--json", args->json, "Print JSON");
  cmd->callback([action, args] {
    *action = [args](Env& env) { return RunPreview(env, *args); };
  });
}

}  // namespace det::cli
