// det.v1.Api over gRPC: translates between protobuf requests and the
// Master's methods, and maps every failure to a precise status code.
#ifndef DET_MASTER_API_API_SERVICE_H_
#define DET_MASTER_API_API_SERVICE_H_

#include <string>

#include "det/v1/api.grpc.pb.h"
#include "master/core/master.h"

namespace det::master {

class ApiService final : public v1::Api::Service {
 public:
  ApiService(Master* master, std::string token)
      : master_(master), token_(std::move(token)) {}

  grpc::Status CreateExperiment(grpc::ServerContext* ctx,
                                const v1::CreateExperimentRequest* req,
                                v1::CreateExperimentResponse* resp) override;
  grpc::Status GetExperiment(grpc::ServerContext* ctx,
                             const v1::GetExperimentRequest* req,
                             v1::Experiment* resp) override;
  grpc::Status ListExperiments(grpc::ServerContext* ctx,
                               const v1::ListExperimentsRequest* req,
                               v1::ListExperimentsResponse* resp) override;
  grpc::Status ListTrials(grpc::ServerContext* ctx,
                          const v1::ListTrialsRequest* req,
                          v1::ListTrialsResponse* resp) override;
  grpc::Status GetTrial(grpc::ServerContext* ctx,
                        const v1::GetTrialRequest* req,
                        v1::Trial* resp) override;
  grpc::Status GetTrialMetrics(grpc::ServerContext* ctx,
                               const v1::GetTrialMetricsRequest* req,
                               v1::GetTrialMetricsResponse* resp) override;
  grpc::Status StreamTrialLogs(
      grpc::ServerContext* ctx, const v1::StreamTrialLogsRequest* req,
      grpc::ServerWriter<v1::TrialLogLine>* writer) override;
  grpc::Status PauseExperiment(grpc::ServerContext* ctx,
                               const v1::ExperimentIdRequest* req,
                               v1::Experiment* resp) override;
  grpc::Status ActivateExperiment(grpc::ServerContext* ctx,
                                  const v1::ExperimentIdRequest* req,
                                  v1::Experiment* resp) override;
  grpc::Status CancelExperiment(grpc::ServerContext* ctx,
                                const v1::ExperimentIdRequest* req,
                                v1::Experiment* resp) override;
  grpc::Status KillExperiment(grpc::ServerContext* ctx,
                              const v1::ExperimentIdRequest* req,
                              v1::Experiment* resp) override;
  grpc::Status WatchExperiment(
      grpc::ServerContext* ctx, const v1::ExperimentIdRequest* req,
      grpc::ServerWriter<v1::Experiment>* writer) override;
  grpc::Status ListAgents(grpc::ServerContext* ctx,
                          const v1::ListAgentsRequest* req,
                          v1::ListAgentsResponse* resp) override;
  grpc::Status PreviewSearch(grpc::ServerContext* ctx,
                             const v1::PreviewSearchRequest* req,
                             v1::PreviewSearchResponse* resp) override;
  grpc::Status GetMasterInfo(grpc::ServerContext* ctx,
                             const v1::GetMasterInfoRequest* req,
                             v1::MasterInfo* resp) override;
  // Continue (issue 15)
  grpc::Status ContinueExperiment(
      grpc::ServerContext* ctx, const v1::ContinueExperimentRequest* req,
      v1::ContinueExperimentResponse* resp) override;

  // Checkpoints (issue 15)
  grpc::Status GetExperimentCheckpoints(
      grpc::ServerContext* ctx, const v1::GetExperimentCheckpointsRequest* req,
      v1::GetExperimentCheckpointsResponse* resp) override;
  grpc::Status GetCheckpoint(grpc::ServerContext* ctx,
                             const v1::GetCheckpointRequest* req,
                             v1::CheckpointDetail* resp) override;
  grpc::Status DownloadCheckpoint(
      grpc::ServerContext* ctx, const v1::GetCheckpointRequest* req,
      grpc::ServerWriter<v1::CheckpointChunk>* writer) override;
  grpc::Status DeleteExperiment(grpc::ServerContext* ctx,
                                const v1::ExperimentIdRequest* req,
                                v1::DeleteExperimentResponse* resp) override;
  // Experiment administration (issue 15)
  grpc::Status PatchExperiment(grpc::ServerContext* ctx,
                               const v1::PatchExperimentRequest* req,
                               v1::Experiment* resp) override;
  grpc::Status ArchiveExperiment(grpc::ServerContext* ctx,
                                 const v1::ExperimentIdRequest* req,
                                 v1::Experiment* resp) override;
  grpc::Status UnarchiveExperiment(grpc::ServerContext* ctx,
                                   const v1::ExperimentIdRequest* req,
                                   v1::Experiment* resp) override;
  grpc::Status GetExperimentConfig(
      grpc::ServerContext* ctx, const v1::ExperimentIdRequest* req,
      v1::GetExperimentConfigResponse* resp) override;
  grpc::Status ForkExperiment(grpc::ServerContext* ctx,
                              const v1::ForkExperimentRequest* req,
                              v1::CreateExperimentResponse* resp) override;
  grpc::Status KillTrial(grpc::ServerContext* ctx,
                         const v1::KillTrialRequest* req,
                         v1::Trial* resp) override;

 private:
  Master* master_;
  const std::string token_;
};

}  // namespace det::master

#endif  // DET_MASTER_API_API_SERVICE_H_
