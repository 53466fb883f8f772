// The worker's own diagnostics: one timestamped line on stderr per call.
#ifndef DET_WORKER_DAEMON_WORKER_LOG_H_
#define DET_WORKER_DAEMON_WORKER_LOG_H_

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace det::worker {

template <typename... Args>
void WorkerLog(const absl::FormatSpec<Args...>& format, const Args&... args) {
  // One fputs per line keeps lines from different threads whole.
  std::string line = absl::StrCat(
      absl::FormatTime("%Y-%m-%d %H:%M:%E3S", absl::Now(), absl::UTCTimeZone()),
      " det-worker: ", absl::StrFormat(format, args...), "\n");
  std::fputs(line.c_str(), stderr);
}

}  // namespace det::worker

#endif  // DET_WORKER_DAEMON_WORKER_LOG_H_
