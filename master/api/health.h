// The standard gRPC health service (grpc.health.v1.Health) of det-master,
// for Kubernetes probes and load balancers. gRPC's built-in implementation
// serves it; it needs no token (a probe has none). Status is SERVING from
// the start; the master's store availability drives it through
// SetStoreHealth.
#ifndef DET_MASTER_API_HEALTH_H_
#define DET_MASTER_API_HEALTH_H_

#include "grpcpp/grpcpp.h"

namespace det::master {

// Call once before building the server (a process-wide gRPC setting).
void EnableHealthService();

// SERVING when `store_ok`, NOT_SERVING otherwise, for the whole server and
// for every service name. No effect on a server built without
// EnableHealthService. Thread-safe; cheap enough to call on every change.
void SetStoreHealth(grpc::Server* server, bool store_ok);

}  // namespace det::master

#endif  // DET_MASTER_API_HEALTH_H_
