// Counters and histograms that the master core updates as things happen,
// rendered in Prometheus text format on /metrics.
//
// The registry only counts; it knows nothing of the master. The state
// gauges (experiments and trials by state, slots) are not kept here: the
// HTTP server computes them from the master at scrape time, so they can
// never drift from the truth.
//
// Thread-safe: every method may be called from any thread, including with
// the master's own lock held (the registry's lock is a leaf: it never calls
// out while holding it).
#ifndef DET_MASTER_HTTP_METRICS_REGISTRY_H_
#define DET_MASTER_HTTP_METRICS_REGISTRY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace det::http {

// A Prometheus histogram: cumulative counts per upper bound, plus sum and
// count. Not thread-safe by itself; MetricsRegistry guards it.
class Histogram {
 public:
  // `bounds` ascending, in the histogram's unit (seconds here); a +Inf
  // bucket is implied.
  explicit Histogram(std::vector<double> bounds);

  void Observe(double value);

  // Appends "# HELP", "# TYPE" and the _bucket/_sum/_count lines.
  void AppendText(const std::string& name, const std::string& help,
                  std::string* out) const;

  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;  // per bucket, not cumulative; last is +Inf
  uint64_t count_ = 0;
  double sum_ = 0;
};

class MetricsRegistry {
 public:
  MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // `n` metric reports (training or validation) were received from trials.
  void CountMetricReports(int n);
  // `n` worker messages were rejected: they failed in a way that would
  // fail the same way every time (see Master::WorkerMessages).
  void CountRejectedWorkerMessages(int n);
  // The master's store began refusing writes (one per outage).
  void CountStoreOutage();
  // Time from a trial becoming runnable (queued) to its start being sent to
  // a worker.
  void ObserveSchedulingLatency(absl::Duration d);
  // Time of one store write (a transaction commit, or a single write).
  void ObserveStoreWrite(absl::Duration d);

  // Appends det_metric_reports_total, det_worker_messages_rejected_total,
  // det_store_outages_total,
  // det_scheduling_latency_seconds and det_store_write_seconds in
  // Prometheus text exposition format 0.0.4.
  void AppendText(std::string* out) const;

  int64_t metric_reports() const;
  int64_t rejected_worker_messages() const;
  int64_t store_outages() const;
  uint64_t scheduling_observations() const;
  uint64_t store_write_observations() const;

 private:
  mutable absl::Mutex mu_;
  int64_t metric_reports_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t rejected_worker_messages_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t store_outages_ ABSL_GUARDED_BY(mu_) = 0;
  Histogram scheduling_latency_ ABSL_GUARDED_BY(mu_);
  Histogram store_write_ ABSL_GUARDED_BY(mu_);
};

}  // namespace det::http

#endif  // DET_MASTER_HTTP_METRICS_REGISTRY_H_
