#include "master/http/metrics_registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace det::http {
namespace {

// Scheduling waits for free slots, so it spans milliseconds to minutes;
// the fine steps below 0.1 s tell a start sent at once (a free slot) to
// within a few milliseconds.
const std::vector<double>& SchedulingBounds() {
  static const auto* b = new std::vector<double>{
      0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25,
      0.5,    1,     5,     10,    30,   60,   300,  1800};
  return *b;
}

// A SQLite commit in WAL mode takes well under a millisecond to tens of
// milliseconds (fsync); a second is already pathological.
const std::vector<double>& StoreWriteBounds() {
  static const auto* b = new std::vector<double>{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,  0.05,    0.1,    0.25,  0.5,    1};
  return *b;
}

// Prometheus floats: shortest round-trip text, "+Inf" for infinity.
std::string Num(double v) { return absl::StrCat(v); }

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  // The first bucket whose upper bound is >= value (Prometheus' "le").
  size_t i =
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  counts_[i]++;
  count_++;
  sum_ += value;
}

void Histogram::AppendText(const std::string& name, const std::string& help,
                           std::string* out) const {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n");
  absl::StrAppend(out, "# TYPE ", name, " histogram\n");
  uint64_t cumulative = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    cumulative += counts_[i];
    absl::StrAppend(out, name, "_bucket{le=\"", Num(bounds_[i]), "\"} ",
                    cumulative, "\n");
  }
  cumulative += counts_.back();
  absl::StrAppend(out, name, "_bucket{le=\"+Inf\"} ", cumulative, "\n");
  absl::StrAppend(out, name, "_sum ", Num(sum_), "\n");
  absl::StrAppend(out, name, "_count ", count_, "\n");
}

MetricsRegistry::MetricsRegistry()
    : scheduling_latency_(SchedulingBounds()),
      store_write_(StoreWriteBounds()) {}

void MetricsRegistry::CountMetricReports(int n) {
  if (n <= 0) return;
  absl::MutexLock l(&mu_);
  metric_reports_ += n;
}

void MetricsRegistry::CountRejectedWorkerMessages(int n) {
  if (n <= 0) return;
  absl::MutexLock l(&mu_);
  rejected_worker_messages_ += n;
}

void MetricsRegistry::CountStoreOutage() {
  absl::MutexLock l(&mu_);
  store_outages_++;
}

void MetricsRegistry::ObserveSchedulingLatency(absl::Duration d) {
  absl::MutexLock l(&mu_);
  scheduling_latency_.Observe(absl::ToDoubleSeconds(d));
}

void MetricsRegistry::ObserveStoreWrite(absl::Duration d) {
  absl::MutexLock l(&mu_);
  store_write_.Observe(absl::ToDoubleSeconds(d));
}

void MetricsRegistry::AppendText(std::string* out) const {
  absl::MutexLock l(&mu_);
  absl::StrAppend(out,
                  "# HELP det_metric_reports_total Metric reports received "
                  "from trials.\n"
                  "# TYPE det_metric_reports_total counter\n"
                  "det_metric_reports_total ",
                  metric_reports_, "\n");
  absl::StrAppend(out,
                  "# HELP det_worker_messages_rejected_total Worker messages "
                  "the master could never store (dropped and acknowledged).\n"
                  "# TYPE det_worker_messages_rejected_total counter\n"
                  "det_worker_messages_rejected_total ",
                  rejected_worker_messages_, "\n");
  absl::StrAppend(out,
                  "# HELP det_store_outages_total Times the master's store "
                  "began refusing writes.\n"
                  "# TYPE det_store_outages_total counter\n"
                  "det_store_outages_total ",
                  store_outages_, "\n");
  scheduling_latency_.AppendText(
      "det_scheduling_latency_seconds",
      "Time from a trial being queued to its start being sent to a worker.",
      out);
  store_write_.AppendText("det_store_write_seconds",
                          "Duration of the master's store writes.", out);
}

int64_t MetricsRegistry::metric_reports() const {
  absl::MutexLock l(&mu_);
  return metric_reports_;
}

int64_t MetricsRegistry::rejected_worker_messages() const {
  absl::MutexLock l(&mu_);
  return rejected_worker_messages_;
}

int64_t MetricsRegistry::store_outages() const {
  absl::MutexLock l(&mu_);
  return store_outages_;
}

uint64_t MetricsRegistry::scheduling_observations() const {
  absl::MutexLock l(&mu_);
  return scheduling_latency_.count();
}

uint64_t MetricsRegistry::store_write_observations() const {
  absl::MutexLock l(&mu_);
  return store_write_.count();
}

}  // namespace det::http
