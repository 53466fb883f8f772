// det trial describe|logs.
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "cli/command.h"
#include "cli/output.h"
#include "cli/table.h"

namespace det::cli {
namespace {

std::string ExitReasonName(v1::ExitReason reason) {
  if (reason == v1::EXIT_REASON_UNSPECIFIED) return "";
  return std::string(
      absl::StripPrefix(v1::ExitReason_Name(reason), "EXIT_REASON_"));
}

std::string FormatBytes(int64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  return unit == 0 ? absl::StrCat(bytes, " B")
                   : absl::StrCat(FormatMetric(value), " ", units[unit]);
}

// One row per validation, one column per metric name.
Table ValidationTable(const v1::GetTrialMetricsResponse& metrics) {
  std::set<std::string> names;
  for (const auto& report : metrics.reports()) {
    for (const auto& [name, value] : report.metrics()) names.insert(name);
  }
  std::vector<std::string> headers = {"BATCHES"};
  headers.insert(headers.end(), names.begin(), names.end());
  headers.push_back("TIME");
  Table table(headers);
  for (size_t i = 0; i <= names.size(); ++i) {
    table.SetAlign(i, Table::Align::kRight);
  }
  for (const auto& report : metrics.reports()) {
    std::vector<std::string> row = {absl::StrCat(report.steps_completed())};
    for (const std::string& name : names) {
      auto it = report.metrics().find(name);
      row.push_back(it == report.metrics().end() ? "-"
                                                 : FormatMetric(it->second));
    }
    row.push_back(FormatTime(report.time_us()));
    table.AddRow(std::move(row));
  }
  return table;
}

int RunDescribe(Env& env, int64_t id, bool json) {
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  auto trial = (*client)->GetTrial(id);
  if (!trial.ok()) return env.Fail(trial.status());
  auto validations =
      (*client)->GetTrialMetrics(id, v1::METRIC_GROUP_VALIDATION);
  if (!validations.ok()) return env.Fail(validations.status());

  if (json) {
    // The Trial document, with its validation reports under "validations".
    auto text = MessageToJson(*trial);
    if (!text.ok()) return env.Fail(text.status());
    std::vector<std::string> reports;
    for (const auto& report : validations->reports()) {
      auto doc = MessageToJson(report);
      if (!doc.ok()) return env.Fail(doc.status());
      reports.push_back(*std::move(doc));
    }
    auto merged = AddJsonMember(*text, "validations", JsonArray(reports));
    if (!merged.ok()) return env.Fail(merged.status());
    PrintJson(env.out, *merged);
    return kExitOk;
  }

  const v1::Trial& t = *trial;
  std::string state = StateName(t.state());
  if (t.exit_reason() != v1::EXIT_REASON_UNSPECIFIED) {
    absl::StrAppend(&state, " (exit: ", ExitReasonName(t.exit_reason()), ")");
  }
  std::string placement;
  if (!t.agent_id().empty()) {
    placement = absl::StrCat(t.agent_id(), ", slots ",
                             absl::StrJoin(t.slot_ids(), ","));
  }
  std::string checkpoint;
  if (!t.latest_checkpoint().uuid().empty()) {
    const v1::Checkpoint& c = t.latest_checkpoint();
    checkpoint = absl::StrCat(c.uuid(), " (batch ", c.steps_completed(), ", ",
                              FormatBytes(c.size_bytes()), ", ",
                              FormatTime(c.time_us()), ")");
  }
  env.out << "Trial " << t.id() << " of experiment " << t.experiment_id()
          << '\n';
  PrintFields(
      env.out,
      {
          {"State", state},
          {"Message", t.message()},
          {"Batches",
           absl::StrCat(t.steps_completed(), " of ", t.target_batches())},
          {"Best metric",
           t.has_best_metric() ? FormatMetric(t.best_metric()) : "-"},
          {"Rung", t.rung() >= 0 ? absl::StrCat(t.rung()) : ""},
          {"Restarts", absl::StrCat(t.restarts())},
          {"Seed", absl::StrCat(t.seed())},
          {"Running on", placement},
          {"Checkpoint", checkpoint},
          {"Started", FormatTime(t.start_time_us())},
          {"Ended", FormatTime(t.end_time_us())},
          {"Duration", FormatDuration(t.start_time_us(), t.end_time_us())},
      });
  env.out << "Hyperparameters:\n";
  PrintFields(env.out, FlattenHParams(t.hparams()));
  if (!t.best_validation_metrics().empty()) {
    env.out << "Best validation metrics:\n";
    PrintMetrics(env.out, t.best_validation_metrics(), 2);
  }
  env.out << '\n';
  if (validations->reports().empty()) {
    env.out << "No validations yet.\n";
  } else {
    env.out << "Validations:\n";
    ValidationTable(*validations).Print(env.out);
  }
  return kExitOk;
}

int RunLogs(Env& env, int64_t id, bool follow, bool json) {
  if (follow && json) {
    return env.Fail(absl::InvalidArgumentError(
        "--json prints the logs as one document: it cannot be combined with "
        "--follow"));
  }
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());

  v1::StreamTrialLogsRequest request;
  request.set_trial_id(id);
  request.set_follow(follow);
  std::vector<std::string> docs;
  absl::Status failure;
  int64_t last_id = 0;
  auto on_line = [&](const v1::TrialLogLine& line) {
    if (line.id() > last_id) last_id = line.id();
    if (json) {
      auto doc = MessageToJson(line);
      if (!doc.ok()) {
        failure = doc.status();
        return false;
      }
      docs.push_back(*std::move(doc));
    } else {
      PrintLogLine(env.out, line);
      if (follow) env.out.flush();
    }
    return true;
  };

  if (!follow) {
    absl::Status status = (*client)->StreamTrialLogs(
        request, env.client_options.call_timeout, on_line);
    if (!failure.ok()) return env.Fail(failure);
    if (!status.ok()) return env.Fail(status);
    if (json) {
      auto text = AddJsonMember("{}", "lines", JsonArray(docs));
      if (!text.ok()) return env.Fail(text.status());
      PrintJson(env.out, *text);
    }
    return kExitOk;
  }

  // Following: the stream ends when the trial does. A broken stream is
  // resumed after the last line seen, so nothing prints twice; a stream is
  // reopened after stream_lifetime so a silently dead connection is noticed.
  Backoff backoff(env.follow);
  bool ever_received = false;
  while (true) {
    bool received = false;
    absl::Status status = (*client)->StreamTrialLogs(
        request, env.follow.stream_lifetime, [&](const v1::TrialLogLine& line) {
          received = ever_received = true;
          return on_line(line);
        });
    if (status.ok()) return kExitOk;
    request.set_after_id(last_id);
    if (received) backoff.Reset();
    if (status.code() == absl::StatusCode::kDeadlineExceeded) continue;
    // Before any line arrived, a failure is the user's to fix.
    const bool retryable = status.code() == absl::StatusCode::kUnavailable ||
                           status.code() == absl::StatusCode::kCancelled ||
                           status.code() == absl::StatusCode::kAborted;
    if (!ever_received || !retryable) return env.Fail(status);
    if (!backoff.Wait(env.err, status)) return env.Fail(status);
  }
}

}  // namespace

void AddTrialCommands(CLI::App& app, Action* action) {
  CLI::App* group = app.add_subcommand("trial", "Inspect trials");
  group->alias("t");
  group->require_subcommand(1);
  {
    struct Args {
      int64_t id = 0;
      bool json = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand(
        "describe", "Show a trial: state, hyperparameters, validations");
    AddIdArgument(cmd, "id", "Trial id", &args->id);
    cmd->add_flag("--json", args->json,
                  "Print JSON (the trial, with its validation reports under "
                  "\"validations\")");
    cmd->callback([action, args] {
      *action = [args](Env& env) {
        return RunDescribe(env, args->id, args->json);
      };
    });
  }
  {
    struct Args {
      int64_t id = 0;
      bool follow = false;
      bool json = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("logs", "Print a trial's logs");
    AddIdArgument(cmd, "id", "Trial id", &args->id);
    cmd->add_flag("-f,--follow", args->follow,
                  "Keep printing new lines until the trial ends");
    cmd->add_flag("--json", args->json,
                  "Print JSON: {\"lines\": [...]} (not with --follow)");
    cmd->callback([action, args] {
      *action = [args](Env& env) {
        return RunLogs(env, args->id, args->follow, args->json);
      };
    });
  }
}

}  // namespace det::cli
