// The search plan (master/searcher/preview.h) as det.v1.PreviewSearchResponse.
#ifndef DET_MASTER_API_PREVIEW_PROTO_H_
#define DET_MASTER_API_PREVIEW_PROTO_H_

#include <string>

#include "absl/status/statusor.h"
#include "det/v1/api.pb.h"

namespace det::master {

// Parses the config YAML and plans its search without running anything.
// INVALID_ARGUMENT with the validator's messages for a bad config.
absl::StatusOr<v1::PreviewSearchResponse> PreviewSearchProto(
    const std::string& config_yaml);

}  // namespace det::master

#endif  // DET_MASTER_API_PREVIEW_PROTO_H_
