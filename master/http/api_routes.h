// The JSON API over HTTP: the same data as the gRPC API (det.v1 messages as
// JSON with proto field names), read from and acted on through the Master's
// public methods.
//
//   GET  /api/v1/master                      MasterInfo
//   GET  /api/v1/agents                      ListAgentsResponse
//   GET  /api/v1/experiments                 ListExperimentsResponse
//   GET  /api/v1/experiments/{id}            Experiment
//   GET  /api/v1/experiments/{id}/trials     ListTrialsResponse
//   GET  /api/v1/experiments/{id}/metrics    GetTrialMetricsResponse, every
//        ?group=validation|training|all      trial's reports (default
//                                            validation: the learning curves)
//   GET  /api/v1/experiments/{id}/preview    PreviewSearchResponse of its
//                                            config (ASHA brackets and rungs)
//   POST /api/v1/experiments/{id}/pause|activate|cancel|kill   Experiment
//   GET  /api/v1/trials/{id}                 Trial
//   GET  /api/v1/trials/{id}/metrics?group=  GetTrialMetricsResponse
//   GET  /api/v1/trials/{id}/logs?after_id=&limit=
//        {"logs": [TrialLogLine...], "live": bool}; live says more may come
//
// Errors: a malformed id or parameter is 400, an unknown id 404, an illegal
// state change 409, each with {"error": {...}} (see http_json.h).
#ifndef DET_MASTER_HTTP_API_ROUTES_H_
#define DET_MASTER_HTTP_API_ROUTES_H_

#include "master/core/master.h"
#include "master/http/http_router.h"

namespace det::http {

// Adds the routes above to `router`; `master` must outlive it.
void AddApiRoutes(master::Master* master, Router* router);

}  // namespace det::http

#endif  // DET_MASTER_HTTP_API_ROUTES_H_
