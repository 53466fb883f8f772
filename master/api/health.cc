#include "master/api/health.h"

namespace det::master {

void EnableHealthService() { grpc::EnableDefaultHealthCheckService(true); }

void SetStoreHealth(grpc::Server* server, bool store_ok) {
  if (server == nullptr) return;
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus(store_ok);
}

}  // namespace det::master
