// Build version and the worker/master protocol version.
#ifndef DET_COMMON_VERSION_H_
#define DET_COMMON_VERSION_H_

namespace det {

#ifndef DET_VERSION
#define DET_VERSION "0.0.0"
#endif
inline constexpr const char* kVersion = DET_VERSION;
// Bump on any incompatible change to proto/det/v1/worker.proto or trial.proto.
inline constexpr int kProtocolVersion = 1;

}  // namespace det

#endif  // DET_COMMON_VERSION_H_
