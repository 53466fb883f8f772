#include "master/http/metrics_registry.h"

#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"

namespace det::http {
namespace {

TEST(HistogramTest, BucketsAreCumulativeWithSumAndCount) {
  Histogram h({0.1, 1, 10});
  h.Observe(0.05);
  h.Observe(0.1);  // on a bound: counts as <= 0.1
  h.Observe(0.5);
  h.Observe(50);
  std::string out;
  h.AppendText("x_seconds", "Some help.", &out);
  EXPECT_EQ(out,
            "# HELP x_seconds Some help.\n"
            "# TYPE x_seconds histogram\n"
            "x_seconds_bucket{le=\"0.1\"} 2\n"
            "x_seconds_bucket{le=\"1\"} 3\n"
            "x_seconds_bucket{le=\"10\"} 3\n"
            "x_seconds_bucket{le=\"+Inf\"} 4\n"
            "x_seconds_sum 50.65\n"
            "x_seconds_count 4\n");
}

TEST(MetricsRegistryTest, RendersCountersAndHistograms) {
  MetricsRegistry r;
  r.CountMetricReports(2);
  r.CountMetricReports(5);
  r.CountMetricReports(0);
  r.CountMetricReports(-3);  // nonsense is ignored, never counted down
  r.ObserveSchedulingLatency(absl::Seconds(2));
  r.ObserveStoreWrite(absl::Milliseconds(3));
  std::string out;
  r.AppendText(&out);
  EXPECT_TRUE(absl::StrContains(out,
                                "# TYPE det_metric_reports_total counter\n"
                                "det_metric_reports_total 7\n"))
      << out;
  EXPECT_TRUE(absl::StrContains(
      out, "det_scheduling_latency_seconds_bucket{le=\"1\"} 0\n"));
  EXPECT_TRUE(absl::StrContains(
      out, "det_scheduling_latency_seconds_bucket{le=\"5\"} 1\n"));
  EXPECT_TRUE(absl::StrContains(out, "det_scheduling_latency_seconds_sum 2\n"));
  EXPECT_TRUE(absl::StrContains(
      out, "det_store_write_seconds_bucket{le=\"0.0025\"} 0\n"));
  EXPECT_TRUE(absl::StrContains(
      out, "det_store_write_seconds_bucket{le=\"0.005\"} 1\n"));
  EXPECT_TRUE(absl::StrContains(out, "det_store_write_seconds_count 1\n"));
}

TEST(MetricsRegistryTest, IsSafeFromManyThreads) {
  MetricsRegistry r;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&r] {
      for (int j = 0; j < 1000; ++j) {
        r.CountMetricReports(1);
        r.ObserveStoreWrite(absl::Microseconds(j));
        r.ObserveSchedulingLatency(absl::Milliseconds(j));
        if (j % 100 == 0) {
          std::string out;
          r.AppendText(&out);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(r.metric_reports(), 4000);
  EXPECT_EQ(r.store_write_observations(), 4000u);
  EXPECT_EQ(r.scheduling_observations(), 4000u);
}

}  // namespace
}  // namespace det::http
