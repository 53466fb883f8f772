// det checkpoint list|describe|download, and on the experiment group
// det experiment download|delete (Determined's commands).
//
// Downloads go through the master (DownloadCheckpoint streams the files as
// the master sees the storage), so they work from a machine that cannot see
// the storage. Every file lands in a temporary folder next to the target,
// is checked against the SHA-256 the trial reported, and only when all of
// them match is the folder renamed into place: a corrupt checkpoint leaves
// nothing behind but an error naming the file.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/command.h"
#include "cli/output.h"
#include "cli/table.h"
#include "common/checksum/sha256.h"

namespace det::cli {
namespace {

namespace fs = std::filesystem;

// A whole download may take long; it is bounded all the same.
constexpr absl::Duration kDownloadLimit = absl::Hours(6);

std::string StateCell(v1::CheckpointState s) {
  if (s == v1::CHECKPOINT_STATE_UNSPECIFIED) return "-";
  return std::string(
      absl::StripPrefix(v1::CheckpointState_Name(s), "CHECKPOINT_STATE_"));
}

std::string MetricCell(const v1::CheckpointDetail& d) {
  return d.has_metric() ? FormatMetric(d.metric()) : "-";
}

// A file name the master sent: relative, inside the checkpoint's folder.
bool SafeRelativePath(const std::string& path) {
  if (path.empty() || path.front() == '/') return false;
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == "." || part == "..") return false;
  }
  return true;
}

std::string RandomSuffix() {
  std::random_device rd;
  return absl::StrCat(rd(), rd());
}

// Downloads checkpoint `uuid` into `dir` (which must not exist yet).
absl::Status Download(Client* client, const std::string& uuid,
                      const std::string& dir) {
  absl::StatusOr<v1::CheckpointDetail> detail = client->GetCheckpoint(uuid);
  if (!detail.ok()) return detail.status();
  const v1::Checkpoint& c = detail->checkpoint();
  if (c.state() != v1::CHECKPOINT_STATE_ACTIVE) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint ", uuid, " is ", StateCell(c.state()),
        ": garbage collection removed (or is removing) its files"));
  }
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    return absl::AlreadyExistsError(absl::StrCat(
        dir, " already exists; remove it or choose another folder with -o"));
  }
  fs::path target(dir);
  if (target.has_parent_path())
    fs::create_directories(target.parent_path(), ec);
  const std::string tmp = absl::StrCat(dir, ".partial-", RandomSuffix());
  fs::create_directories(tmp, ec);
  if (ec) {
    return absl::PermissionDeniedError(
        absl::StrCat("creating ", tmp, ": ", ec.message()));
  }
  auto cleanup = [&] {
    std::error_code ignored;
    fs::remove_all(tmp, ignored);
  };
  std::map<std::string, std::string> expected(c.file_sha256().begin(),
                                              c.file_sha256().end());
  std::ofstream out;
  std::string current;
  int64_t written = 0;
  absl::Status failed;
  absl::Status st = client->DownloadCheckpoint(
      uuid, kDownloadLimit, [&](const v1::CheckpointChunk& chunk) {
        if (!SafeRelativePath(chunk.path()) || !expected.count(chunk.path())) {
          failed = absl::DataLossError(
              absl::StrCat("checkpoint ", uuid,
                           ": the master sent a file it does not "
                           "list: '",
                           chunk.path(), "'"));
          return false;
        }
        if (chunk.path() != current || chunk.offset() == 0) {
          if (out.is_open()) out.close();
          current = chunk.path();
          written = 0;
          fs::path p = fs::path(tmp) / current;
          std::error_code mk;
          fs::create_directories(p.parent_path(), mk);
          out.open(p, std::ios::binary | std::ios::trunc);
          if (!out) {
            failed = absl::PermissionDeniedError(
                absl::StrCat("writing ", p.string()));
            return false;
          }
        }
        if (chunk.offset() != written) {
          failed = absl::DataLossError(absl::StrCat(
              "checkpoint ", uuid, ": ", current, " arrived out of order"));
          return false;
        }
        out.write(chunk.data().data(),
                  static_cast<std::streamsize>(chunk.data().size()));
        written += static_cast<int64_t>(chunk.data().size());
        if (!out) {
          failed = absl::ResourceExhaustedError(
              absl::StrCat("writing ", (fs::path(tmp) / current).string(),
                           " failed (disk full?)"));
          return false;
        }
        return true;
      });
  if (out.is_open()) out.close();
  if (!failed.ok()) {
    cleanup();
    return failed;
  }
  if (!st.ok()) {
    cleanup();
    return st;
  }
  for (const auto& [path, sha] : expected) {
    absl::StatusOr<std::string> got =
        Sha256OfFile((fs::path(tmp) / path).string());
    if (!got.ok()) {
      cleanup();
      return absl::DataLossError(absl::StrCat(
          "checkpoint ", uuid, ": file ", path, " did not arrive (",
          got.status().message(), "); nothing was written to ", dir));
    }
    if (absl::AsciiStrToLower(*got) != absl::AsciiStrToLower(sha)) {
      cleanup();
      return absl::DataLossError(absl::StrCat(
          "checkpoint ", uuid, ": file ", path,
          " does not match its stored SHA-256 (expected ", sha, ", got ", *got,
          "): the checkpoint is corrupt; nothing was written to ", dir));
    }
  }
  fs::rename(tmp, dir, ec);
  if (ec) {
    cleanup();
    return absl::PermissionDeniedError(
        absl::StrCat("moving ", tmp, " to ", dir, ": ", ec.message()));
  }
  return absl::OkStatus();
}

int RunList(Env& env, int64_t experiment_id, int best, bool json) {
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  auto list = (*client)->GetExperimentCheckpoints(experiment_id, best);
  if (!list.ok()) return env.Fail(list.status());
  if (json) {
    auto text = MessageToJson(*list);
    if (!text.ok()) return env.Fail(text.status());
    PrintJson(env.out, *text);
    return kExitOk;
  }
  std::string metric =
      list->checkpoints().empty()
          ? "METRIC"
          : absl::AsciiStrToUpper(list->checkpoints(0).metric_name());
  if (metric.empty()) metric = "METRIC";
  Table table({"TRIAL", "UUID", "BATCHES", "STATE", metric, "SIZE", "TIME"});
  table.SetAlign(0, Table::Align::kRight);
  table.SetAlign(2, Table::Align::kRight);
  table.SetAlign(4, Table::Align::kRight);
  table.SetAlign(5, Table::Align::kRight);
  for (const v1::CheckpointDetail& d : list->checkpoints()) {
    const v1::Checkpoint& c = d.checkpoint();
    table.AddRow({absl::StrCat(c.trial_id()), c.uuid(),
                  absl::StrCat(c.steps_completed()), StateCell(c.state()),
                  MetricCell(d), absl::StrCat(c.size_bytes()),
                  FormatTime(c.time_us())});
  }
  table.Print(env.out);
  return kExitOk;
}

int RunDescribe(Env& env, const std::string& uuid, bool json) {
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  auto d = (*client)->GetCheckpoint(uuid);
  if (!d.ok()) return env.Fail(d.status());
  if (json) {
    auto text = MessageToJson(*d);
    if (!text.ok()) return env.Fail(text.status());
    PrintJson(env.out, *text);
    return kExitOk;
  }
  const v1::Checkpoint& c = d->checkpoint();
  PrintFields(env.out, {{"UUID", c.uuid()},
                        {"Experiment", absl::StrCat(d->experiment_id())},
                        {"Trial", absl::StrCat(c.trial_id())},
                        {"Batches", absl::StrCat(c.steps_completed())},
                        {"State", StateCell(c.state())},
                        {d->metric_name().empty() ? "Metric" : d->metric_name(),
                         MetricCell(*d)},
                        {"Size", absl::StrCat(c.size_bytes(), " bytes")},
                        {"Time", FormatTime(c.time_us())},
                        {"Folder", absl::StrCat(d->dir(), "/", c.uuid())}});
  Table files({"FILE", "SHA-256"});
  std::map<std::string, std::string> sorted(c.file_sha256().begin(),
                                            c.file_sha256().end());
  for (const auto& [path, sha] : sorted) files.AddRow({path, sha});
  env.out << "\n";
  files.Print(env.out);
  return kExitOk;
}

int RunDownload(Env& env, const std::string& uuid, std::string dir) {
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  if (dir.empty()) dir = (fs::path("checkpoints") / uuid).string();
  absl::Status s = Download(*client, uuid, dir);
  if (!s.ok()) return env.Fail(s);
  env.out << "Checkpoint " << uuid << " downloaded to " << dir << "\n";
  return kExitOk;
}

int RunExperimentDownload(Env& env, int64_t id, int top_n, std::string dir) {
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  if (dir.empty()) dir = "checkpoints";
  auto list = (*client)->GetExperimentCheckpoints(id, top_n);
  if (!list.ok()) return env.Fail(list.status());
  if (list->checkpoints().empty()) {
    return env.Fail(absl::NotFoundError(absl::StrCat(
        "experiment ", id,
        " has no checkpoint with a validation of its searcher metric")));
  }
  for (const v1::CheckpointDetail& d : list->checkpoints()) {
    const std::string uuid = d.checkpoint().uuid();
    const std::string to = (fs::path(dir) / uuid).string();
    absl::Status s = Download(*client, uuid, to);
    if (!s.ok()) return env.Fail(s);
    env.out << "Checkpoint " << uuid << " of trial "
            << d.checkpoint().trial_id() << " (" << d.metric_name() << " "
            << MetricCell(d) << ") downloaded to " << to << "\n";
  }
  return kExitOk;
}

int RunDelete(Env& env, int64_t id, bool yes, bool json) {
  absl::StatusOr<Client*> client = env.client();
  if (!client.ok()) return env.Fail(client.status());
  if (!yes) {
    env.err << "Deleting experiment " << id
            << " removes its trials, metrics, logs and every checkpoint's "
               "files for good. Do you still wish to proceed? [y/N] "
            << std::flush;
    std::string answer;
    if (!std::getline(std::cin, answer)) answer.clear();
    answer = absl::AsciiStrToLower(absl::StripAsciiWhitespace(answer));
    if (answer != "y" && answer != "yes") {
      return env.Fail(absl::CancelledError(
          absl::StrCat("experiment ", id,
                       " was not deleted (pass --yes to skip the "
                       "question)")));
    }
  }
  auto resp = (*client)->DeleteExperiment(id);
  if (!resp.ok()) return env.Fail(resp.status());
  if (json) {
    auto text = MessageToJson(*resp);
    if (!text.ok()) return env.Fail(text.status());
    auto doc =
        AddJsonMember(*text, "experiment_id", absl::StrCat("\"", id, "\""));
    if (!doc.ok()) return env.Fail(doc.status());
    PrintJson(env.out, *doc);
    return kExitOk;
  }
  env.out << "Deleting experiment " << id << " ("
          << resp->checkpoints_deleting()
          << " checkpoint(s) to remove); it disappears once their files are "
             "gone\n";
  return kExitOk;
}

}  // namespace

void AddCheckpointCommands(CLI::App& app, Action* action) {
  CLI::App* group =
      app.add_subcommand("checkpoint", "Inspect and download checkpoints");
  group->alias("c");
  group->require_subcommand(1);
  {
    struct Args {
      int64_t id = 0;
      int best = 0;
      bool json = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd =
        group->add_subcommand("list", "List an experiment's checkpoints");
    AddIdArgument(cmd, "experiment_id", "Experiment id", &args->id);
    cmd->add_option("--best", args->best,
                    "Only the best N checkpoints by the searcher metric")
        ->check(CLI::PositiveNumber);
    cmd->add_flag("--json", args->json, "Print JSON");
    cmd->callback([action, args] {
      *action = [args](Env& env) {
        return RunList(env, args->id, args->best, args->json);
      };
    });
  }
  {
    struct Args {
      std::string uuid;
      bool json = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand("describe", "Show a checkpoint");
    cmd->add_option("uuid", args->uuid, "Checkpoint UUID")->required();
    cmd->add_flag("--json", args->json, "Print JSON");
    cmd->callback([action, args] {
      *action = [args](Env& env) {
        return RunDescribe(env, args->uuid, args->json);
      };
    });
  }
  {
    struct Args {
      std::string uuid;
      std::string dir;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = group->add_subcommand(
        "download",
        "Download a checkpoint through the master, checking every file's "
        "SHA-256");
    cmd->add_option("uuid", args->uuid, "Checkpoint UUID")->required();
    cmd->add_option("-o,--output-dir", args->dir,
                    "Folder to create (default: checkpoints/UUID)");
    cmd->callback([action, args] {
      *action = [args](Env& env) {
        return RunDownload(env, args->uuid, args->dir);
      };
    });
  }

  // On the experiment group (made by AddExperimentCommands, called first).
  CLI::App* experiment = app.get_subcommand("experiment");
  {
    struct Args {
      int64_t id = 0;
      int top_n = 1;
      std::string dir;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = experiment->add_subcommand(
        "download", "Download the experiment's best checkpoints");
    AddIdArgument(cmd, "experiment_id", "Experiment id", &args->id);
    cmd->add_option("--top-n", args->top_n,
                    "How many of the best checkpoints (default 1)")
        ->check(CLI::PositiveNumber);
    cmd->add_option("-o,--output-dir", args->dir,
                    "Folder to put them in, one subfolder per UUID "
                    "(default: checkpoints)");
    cmd->callback([action, args] {
      *action = [args](Env& env) {
        return RunExperimentDownload(env, args->id, args->top_n, args->dir);
      };
    });
  }
  {
    struct Args {
      int64_t id = 0;
      bool yes = false;
      bool json = false;
    };
    auto args = std::make_shared<Args>();
    CLI::App* cmd = experiment->add_subcommand(
        "delete", "Delete a terminal experiment and its checkpoints' files");
    AddIdArgument(cmd, "experiment_id", "Experiment id", &args->id);
    cmd->add_flag("-y,--yes", args->yes, "Do not ask for confirmation");
    cmd->add_flag("--json", args->json, "Print JSON");
    cmd->callback([action, args] {
      *action = [args](Env& env) {
        return RunDelete(env, args->id, args->yes, args->json);
      };
    });
  }
}

}  // namespace det::cli
