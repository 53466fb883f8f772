#include "master/api/api_service.h"

#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/rpc/states.h"
#include "common/rpc/status_convert.h"
#include "master/api/auth.h"
#include "master/api/preview_proto.h"

namespace det::master {
namespace {

#define DET_CHECK_AUTH(ctx)                         \
  do {                                              \
    grpc::Status _auth = CheckToken((ctx), token_); \
    if (!_auth.ok()) return _auth;                  \
  } while (0)

// Copies a StatusOr's value into *out, or returns its status as gRPC's.
template <typename T, typename Out>
grpc::Status Reply(absl::StatusOr<T> v, Out* out) {
  if (!v.ok()) return ToGrpcStatus(v.status());
  *out = std::move(*v);
  return grpc::Status::OK;
}

}  // namespace

grpc::Status ApiService::CreateExperiment(
    grpc::ServerContext* ctx, const v1::CreateExperimentRequest* req,
    v1::CreateExperimentResponse* resp) {
  DET_CHECK_AUTH(ctx);
  std::vector<std::string> warnings;
  auto x = master_->CreateExperiment(req->config_yaml(), req->context(),
                                     req->activate(), req->validate_only(),
                                     &warnings);
  if (!x.ok()) return ToGrpcStatus(x.status());
  *resp->mutable_experiment() = std::move(*x);
  for (auto& w : warnings) resp->add_warnings(w);
  return grpc::Status::OK;
}

grpc::Status ApiService::GetExperiment(grpc::ServerContext* ctx,
                                       const v1::GetExperimentRequest* req,
                                       v1::Experiment* resp) {
  DET_CHECK_AUTH(ctx);
  return Reply(master_->GetExperiment(req->experiment_id()), resp);
}

grpc::Status ApiService::ListExperiments(grpc::ServerContext* ctx,
                                         const v1::ListExperimentsRequest*,
                                         v1::ListExperimentsResponse* resp) {
  DET_CHECK_AUTH(ctx);
  auto list = master_->ListExperiments();
  if (!list.ok()) return ToGrpcStatus(list.status());
  for (auto& x : *list) *resp->add_experiments() = std::move(x);
  return grpc::Status::OK;
}

grpc::Status ApiService::ListTrials(grpc::ServerContext* ctx,
                                    const v1::ListTrialsRequest* req,
                                    v1::ListTrialsResponse* resp) {
  DET_CHECK_AUTH(ctx);
  auto list = master_->ListTrials(req->experiment_id());
  if (!list.ok()) return ToGrpcStatus(list.status());
  for (auto& t : *list) *resp->add_trials() = std::move(t);
  return grpc::Status::OK;
}

grpc::Status ApiService::GetTrial(grpc::ServerContext* ctx,
                                  const v1::GetTrialRequest* req,
                                  v1::Trial* resp) {
  DET_CHECK_AUTH(ctx);
  return Reply(master_->GetTrial(req->trial_id()), resp);
}

grpc::Status ApiService::GetTrialMetrics(grpc::ServerContext* ctx,
                                         const v1::GetTrialMetricsRequest* req,
                                         v1::GetTrialMetricsResponse* resp) {
  DET_CHECK_AUTH(ctx);
  auto list = master_->GetTrialMetrics(req->trial_id(), req->group());
  if (!list.ok()) return ToGrpcStatus(list.status());
  for (auto& r : *list) *resp->add_reports() = std::move(r);
  return grpc::Status::OK;
}

grpc::Status ApiService::StreamTrialLogs(
    grpc::ServerContext* ctx, const v1::StreamTrialLogsRequest* req,
    grpc::ServerWriter<v1::TrialLogLine>* writer) {
  DET_CHECK_AUTH(ctx);
  int64_t after = req->after_id();
  while (!ctx->IsCancelled()) {
    // Read liveness before the lines, so lines written just before the
    // trial ended are still sent.
    bool live = req->follow() && master_->TrialIsLive(req->trial_id());
    auto lines = master_->GetTrialLogs(req->trial_id(), after, 1000);
    if (!lines.ok()) return ToGrpcStatus(lines.status());
    for (const auto& line : *lines) {
      if (!writer->Write(line)) return grpc::Status::OK;
      after = line.id();
    }
    if (lines->size() == 1000) continue;
    if (!live) return grpc::Status::OK;
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  }
  return grpc::Status::OK;
}

grpc::Status ApiService::PauseExperiment(grpc::ServerContext* ctx,
                                         const v1::ExperimentIdRequest* req,
                                         v1::Experiment* resp) {
  DET_CHECK_AUTH(ctx);
  return Reply(master_->PauseExperiment(req->experiment_id()), resp);
}

grpc::Status ApiService::ActivateExperiment(grpc::ServerContext* ctx,
                                            const v1::ExperimentIdRequest* req,
                                            v1::Experiment* resp) {
  DET_CHECK_AUTH(ctx);
  return Reply(master_->ActivateExperiment(req->experiment_id()), resp);
}

grpc::Status ApiService::CancelExperiment(grpc::ServerContext* ctx,
                                          const v1::ExperimentIdRequest* req,
                                          v1::Experiment* resp) {
  DET_CHECK_AUTH(ctx);
  return Reply(master_->CancelExperiment(req->experiment_id()), resp);
}

grpc::Status ApiService::KillExperiment(grpc::ServerContext* ctx,
                                        const v1::ExperimentIdRequest* req,
                                        v1::Experiment* resp) {
  DET_CHECK_AUTH(ctx);
  return Reply(master_->KillExperiment(req->experiment_id()), resp);
}

grpc::Status ApiService::WatchExperiment(
    grpc::ServerContext* ctx, const v1::ExperimentIdRequest* req,
    grpc::ServerWriter<v1::Experiment>* writer) {
  DET_CHECK_AUTH(ctx);
  int64_t version = -1;
  while (!ctx->IsCancelled()) {
    int64_t before = version;
    auto x = master_->WaitExperimentChange(req->experiment_id(), &version,
                                           absl::Seconds(1));
    if (!x.ok()) return ToGrpcStatus(x.status());
    if (version != before || before == -1) {
      if (!writer->Write(*x)) return grpc::Status::OK;
    }
    if (IsTerminal(x->state())) return grpc::Status::OK;
    if (version == -1) version = 0;  // not in memory: poll
  }
  return grpc::Status::OK;
}

grpc::Status ApiService::ListAgents(grpc::ServerContext* ctx,
                                    const v1::ListAgentsRequest*,
                                    v1::ListAgentsResponse* resp) {
  DET_CHECK_AUTH(ctx);
  for (auto& a : master_->ListAgents()) *resp->add_agents() = std::move(a);
  return grpc::Status::OK;
}

grpc::Status ApiService::PreviewSearch(grpc::ServerContext* ctx,
                                       const v1::PreviewSearchRequest* req,
                                       v1::PreviewSearchResponse* resp) {
  DET_CHECK_AUTH(ctx);
  return Reply(PreviewSearchProto(req->config_yaml()), resp);
}

grpc::Status ApiService::GetMasterInfo(grpc::ServerContext* ctx,
                                       const v1::GetMasterInfoRequest*,
                                       v1::MasterInfo* resp) {
  DET_CHECK_AUTH(ctx);
  *resp = master_->GetMasterInfo();
  return grpc::Status::OK;
}

// ---- Checkpoints (issue 15) ----

grpc::Status ApiService::GetExperimentCheckpoints(
    grpc::ServerContext* ctx, const v1::GetExperimentCheckpointsRequest* req,
    v1::GetExperimentCheckpointsResponse* resp) {
  DET_CHECK_AUTH(ctx);
  if (req->best() < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        absl::StrCat("best must be >= 0, got ", req->best()));
  }
  auto list =
      master_->ListExperimentCheckpoints(req->experiment_id(), req->best());
  if (!list.ok()) return ToGrpcStatus(list.status());
  for (auto& d : *list) *resp->add_checkpoints() = std::move(d);
  return grpc::Status::OK;
}

grpc::Status ApiService::GetCheckpoint(grpc::ServerContext* ctx,
                                       const v1::GetCheckpointRequest* req,
                                       v1::CheckpointDetail* resp) {
  DET_CHECK_AUTH(ctx);
  return Reply(master_->GetCheckpoint(req->uuid()), resp);
}

grpc::Status ApiService::DownloadCheckpoint(
    grpc::ServerContext* ctx, const v1::GetCheckpointRequest* req,
    grpc::ServerWriter<v1::CheckpointChunk>* writer) {
  DET_CHECK_AUTH(ctx);
  auto d = master_->GetCheckpoint(req->uuid());
  if (!d.ok()) return ToGrpcStatus(d.status());
  const v1::Checkpoint& c = d->checkpoint();
  if (c.state() != v1::CHECKPOINT_STATE_ACTIVE) {
    return grpc::Status(
        grpc::StatusCode::FAILED_PRECONDITION,
        absl::StrCat("checkpoint ", c.uuid(), " is ",
                     v1::CheckpointState_Name(c.state()),
                     ": garbage collection removed (or is removing) its "
                     "files"));
  }
  // Only the files the checkpoint lists (each has a SHA-256 to check),
  // each a relative path inside the checkpoint's folder.
  std::map<std::string, std::string> files(c.file_sha256().begin(),
                                           c.file_sha256().end());
  const std::string root = absl::StrCat(d->dir(), "/", c.uuid());
  constexpr size_t kChunk = 1 << 20;
  std::string buf(kChunk, '\0');
  for (const auto& [path, sha] : files) {
    if (ctx->IsCancelled()) return grpc::Status::CANCELLED;
    bool bad = path.empty() || path.front() == '/';
    for (absl::string_view part : absl::StrSplit(path, '/')) {
      bad = bad || part == "..";
    }
    if (bad) {
      return grpc::Status(grpc::StatusCode::DATA_LOSS,
                          absl::StrCat("checkpoint ", c.uuid(),
                                       " lists a file outside its "
                                       "folder: '",
                                       path, "'"));
    }
    const std::string full = absl::StrCat(root, "/", path);
    std::ifstream in(full, std::ios::binary);
    if (!in) {
      return grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrCat("checkpoint ", c.uuid(), ": cannot read ", full,
                       " on the master's machine (is the checkpoint storage "
                       "mounted there?)"));
    }
    in.seekg(0, std::ios::end);
    const int64_t size = static_cast<int64_t>(in.tellg());
    in.seekg(0);
    int64_t offset = 0;
    bool first = true;
    while (first || offset < size) {
      v1::CheckpointChunk chunk;
      chunk.set_path(path);
      chunk.set_offset(offset);
      if (first) chunk.set_file_size(size);
      first = false;
      in.read(buf.data(), static_cast<std::streamsize>(kChunk));
      const std::streamsize n = in.gcount();
      if (n <= 0 && offset < size) {
        return grpc::Status(grpc::StatusCode::DATA_LOSS,
                            absl::StrCat("checkpoint ", c.uuid(), ": ", full,
                                         " ended early while reading it"));
      }
      chunk.set_data(buf.data(), static_cast<size_t>(n));
      offset += n;
      if (!writer->Write(chunk)) return grpc::Status::OK;
      if (n == 0) break;
    }
  }
  return grpc::Status::OK;
}

grpc::Status ApiService::DeleteExperiment(grpc::ServerContext* ctx,
                                          const v1::ExperimentIdRequest* req,
                                          v1::DeleteExperimentResponse* resp) {
  DET_CHECK_AUTH(ctx);
  return Reply(master_->DeleteExperiment(req->experiment_id()), resp);
}

// Experiment administration (issue 15)

grpc::Status ApiService::PatchExperiment(grpc::ServerContext* ctx,
                                         const v1::PatchExperimentRequest* req,
                                         v1::Experiment* resp) {
  DET_CHECK_AUTH(ctx);
  return Reply(master_->PatchExperiment(*req), resp);
}

grpc::Status ApiService::ArchiveExperiment(grpc::ServerContext* ctx,
                                           const v1::ExperimentIdRequest* req,
                                           v1::Experiment* resp) {
  DET_CHECK_AUTH(ctx);
  return Reply(master_->SetExperimentArchived(req->experiment_id(), true),
               resp);
}

grpc::Status ApiService::UnarchiveExperiment(grpc::ServerContext* ctx,
                                             const v1::ExperimentIdRequest* req,
                                             v1::Experiment* resp) {
  DET_CHECK_AUTH(ctx);
  return Reply(master_->SetExperimentArchived(req->experiment_id(), false),
               resp);
}

grpc::Status ApiService::GetExperimentConfig(
    grpc::ServerContext* ctx, const v1::ExperimentIdRequest* req,
    v1::GetExperimentConfigResponse* resp) {
  DET_CHECK_AUTH(ctx);
  auto yaml = master_->GetExperimentConfig(req->experiment_id());
  if (!yaml.ok()) return ToGrpcStatus(yaml.status());
  resp->set_config_yaml(std::move(*yaml));
  return grpc::Status::OK;
}

grpc::Status ApiService::ForkExperiment(grpc::ServerContext* ctx,
                                        const v1::ForkExperimentRequest* req,
                                        v1::CreateExperimentResponse* resp) {
  DET_CHECK_AUTH(ctx);
  std::vector<std::string> warnings;
  auto x = master_->ForkExperiment(req->experiment_id(), req->config_yaml(),
                                   req->activate(), &warnings);
  if (!x.ok()) return ToGrpcStatus(x.status());
  *resp->mutable_experiment() = std::move(*x);
  for (auto& w : warnings) resp->add_warnings(w);
  return grpc::Status::OK;
}

grpc::Status ApiService::KillTrial(grpc::ServerContext* ctx,
                                   const v1::KillTrialRequest* req,
                                   v1::Trial* resp) {
  DET_CHECK_AUTH(ctx);
  return Reply(master_->KillTrial(req->trial_id()), resp);
}

// Continue (issue 15)
grpc::Status ApiService::ContinueExperiment(
    grpc::ServerContext* ctx, const v1::ContinueExperimentRequest* req,
    v1::ContinueExperimentResponse* resp) {
  DET_CHECK_AUTH(ctx);
  std::vector<std::string> overrides(req->config_overrides().begin(),
                                     req->config_overrides().end());
  std::vector<std::string> warnings;
  auto x =
      master_->ContinueExperiment(req->experiment_id(), overrides, &warnings);
  if (!x.ok()) return ToGrpcStatus(x.status());
  *resp->mutable_experiment() = std::move(*x);
  for (auto& w : warnings) resp->add_warnings(w);
  return grpc::Status::OK;
}

}  // namespace det::master
