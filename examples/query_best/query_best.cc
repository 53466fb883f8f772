// clang-format off
// (kept to about ten lines on purpose: see README.md here.)
// Prints an experiment's best validation metrics: query_best ID
// (DET_MASTER=host:port, default 127.0.0.1:8090; DET_TOKEN if the master has one).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "det/v1/api.grpc.pb.h"
#include "grpcpp/grpcpp.h"

int main(int argc, char** argv) {
  if (argc != 2) return std::fprintf(stderr, "usage: query_best EXPERIMENT_ID\n"), 2;
  const char* master = std::getenv("DET_MASTER");
  auto api = det::v1::Api::NewStub(grpc::CreateChannel(
      master ? master : "127.0.0.1:8090", grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  if (const char* t = std::getenv("DET_TOKEN")) ctx.AddMetadata("authorization", std::string("Bearer ") + t);
  det::v1::GetExperimentRequest req;
  req.set_experiment_id(std::atoll(argv[1]));
  det::v1::Experiment exp;
  grpc::Status s = api->GetExperiment(&ctx, req, &exp);
  if (!s.ok()) return std::fprintf(stderr, "query_best: %s\n", s.error_message().c_str()), 1;
  std::printf("experiment %s: best trial %lld\n", argv[1], static_cast<long long>(exp.best_trial_id()));
  for (const auto& [name, value] : exp.best_validation_metrics()) std::printf("  %s = %g\n", name.c_str(), value);
}
