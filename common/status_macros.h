// Early returns for absl::Status and absl::StatusOr, as in Abseil's own
// internal macros (which it does not export).
#ifndef DET_COMMON_STATUS_MACROS_H_
#define DET_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

// Returns the status of `expr` from the enclosing function unless it is OK.
#define DET_RETURN_IF_ERROR(expr)              \
  do {                                         \
    ::absl::Status det_status_ = (expr);       \
    if (!det_status_.ok()) return det_status_; \
  } while (0)

#define DET_STATUS_CONCAT_INNER_(a, b) a##b
#define DET_STATUS_CONCAT_(a, b) DET_STATUS_CONCAT_INNER_(a, b)

// `DET_ASSIGN_OR_RETURN(auto x, F());` declares x from F()'s value, or
// returns F()'s status from the enclosing function.
#define DET_ASSIGN_OR_RETURN(lhs, expr)                          \
  auto DET_STATUS_CONCAT_(det_statusor_, __LINE__) = (expr);     \
  if (!DET_STATUS_CONCAT_(det_statusor_, __LINE__).ok())         \
    return DET_STATUS_CONCAT_(det_statusor_, __LINE__).status(); \
  lhs = std::move(*DET_STATUS_CONCAT_(det_statusor_, __LINE__))

#endif  // DET_COMMON_STATUS_MACROS_H_
