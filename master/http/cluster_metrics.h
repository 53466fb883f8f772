// The /metrics page: the registry's counters and histograms plus gauges
// read from the master at scrape time (experiments and trials by state,
// slots used and free, connected workers).
#ifndef DET_MASTER_HTTP_CLUSTER_METRICS_H_
#define DET_MASTER_HTTP_CLUSTER_METRICS_H_

#include <cstdint>
#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "master/core/master.h"
#include "master/http/metrics_registry.h"

namespace det::http {

class ClusterMetrics {
 public:
  // `registry` may be null (only the gauges are rendered then). Neither
  // pointer is owned; both must outlive this object.
  ClusterMetrics(master::Master* master, const MetricsRegistry* registry)
      : master_(master), registry_(registry) {}

  // The whole page in Prometheus text format 0.0.4.
  absl::StatusOr<std::string> Render();

 private:
  using StateCounts = std::map<int, int64_t>;  // v1::State -> trials

  // Trials by state of one experiment; terminal experiments' counts never
  // change, so they are remembered instead of read again on every scrape.
  absl::StatusOr<StateCounts> TrialCounts(const v1::Experiment& x);

  master::Master* master_;
  const MetricsRegistry* registry_;
  absl::Mutex mu_;
  std::map<int64_t, StateCounts> terminal_counts_ ABSL_GUARDED_BY(mu_);
};

}  // namespace det::http

#endif  // DET_MASTER_HTTP_CLUSTER_METRICS_H_
