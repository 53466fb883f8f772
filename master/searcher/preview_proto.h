// A search plan (preview.h) as det.v1.PreviewSearchResponse: the one
// conversion the master's PreviewSearch and `det preview-search` share.
#ifndef DET_MASTER_SEARCHER_PREVIEW_PROTO_H_
#define DET_MASTER_SEARCHER_PREVIEW_PROTO_H_

#include "det/v1/api.pb.h"
#include "master/searcher/preview.h"

namespace det::searcher {

v1::PreviewSearchResponse PlanToProto(const SearchPlan& plan);

}  // namespace det::searcher

#endif  // DET_MASTER_SEARCHER_PREVIEW_PROTO_H_
