// A bounded load test: 50 simulated workers (real gRPC clients speaking the
// worker protocol, threads of this process; bench/sim/sim_worker.h) run an
// ASHA experiment of 2,000 instant trials against a real det-master while a
// loop runs `det experiment describe` on it. Every trial must finish, every
// validation report sent must be stored exactly once, the master's memory
// must stay within a per-trial bound, and describe must stay responsive.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <fstream>
#include <numeric>
#include <thread>

#include "absl/strings/str_cat.h"
#include "bench/sim/sim_worker.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace det::testing {
namespace {

int64_t RssKib(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atoll(line.c_str() + 6);
  }
  return 0;
}

TEST(LoadTest, FiftyWorkersTwoThousandTrials) {
  Cluster cluster;
  cluster.StartMaster();
  const int kWorkers = 50, kSlots = 4, kTrials = 2000;
  bench::SimOptions opts;
  opts.master = cluster.master_address();
  opts.slots = kSlots;
  opts.batch_ms = 1;
  opts.jitter = 0.5;
  auto epoch = bench::Clock::now();
  std::vector<std::unique_ptr<bench::SimWorker>> workers;
  for (int i = 0; i < kWorkers; ++i) {
    workers.push_back(std::make_unique<bench::SimWorker>(
        absl::StrCat("sim-", i), opts, epoch));
    workers.back()->Start();
  }
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        return std::all_of(workers.begin(), workers.end(),
                           [](const auto& w) { return w->welcomed(); });
      },
      absl::Seconds(30)));
  int64_t rss_before = RssKib(cluster.master()->pid());

  // ASHA, 2,000 trials of 20 batches validated every 4 (and at the rungs).
  int64_t id = cluster.CreateExperiment(absl::StrCat(R"(
name: load
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0}
  y: {type: double, minval: 0.0, maxval: 1.0}
searcher:
  name: adaptive_asha
  metric: validation_accuracy
  smaller_is_better: false
  max_trials: )",
                                                     kTrials, R"(
  max_length: {batches: 20}
  max_concurrent_trials: 200
min_validation_period: {batches: 4}
)"));
  ASSERT_GT(id, 0);

  // Meanwhile, a user keeps asking for the experiment.
  std::atomic<bool> done{false};
  std::vector<double> describe_ms;
  std::thread user([&] {
    while (!done.load()) {
      absl::Time start = absl::Now();
      CliResult r =
          cluster.Cli({"experiment", "describe", std::to_string(id), "--json"});
      if (r.exit_code == 0) {
        describe_ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
      }
      absl::SleepFor(absl::Milliseconds(100));
    }
  });
  auto x = cluster.WaitTerminal(id, absl::Minutes(8));
  done = true;
  user.join();
  int64_t rss_after = RssKib(cluster.master()->pid());
  for (auto& w : workers) w->Stop();
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);

  // Every trial finished.
  auto trials = cluster.Trials(id);
  ASSERT_EQ(static_cast<int>(trials.size()), kTrials);
  for (const auto& t : trials) {
    ASSERT_EQ(t.state(), v1::STATE_COMPLETED) << "trial " << t.id();
  }
  // Every validation report sent was stored, once.
  int64_t sent = 0;
  for (auto& w : workers) sent += w->stats().reports_sent;
  int64_t stored = 0;
  for (const auto& t : trials) {
    stored += cluster.Metrics(t.id(), v1::METRIC_GROUP_VALIDATION).size();
  }
  EXPECT_EQ(stored, sent);
  EXPECT_GT(stored, kTrials);

  // Memory: what the master holds per trial stays bounded (50 KB).
  int64_t growth_kib = rss_after - rss_before;
  EXPECT_LT(growth_kib * 1024 / kTrials, 50 * 1024)
      << "master RSS " << rss_before << " KiB -> " << rss_after << " KiB";

  // describe stayed responsive: p99 under 3 s on this shared 2-core machine
  // (a CLI process start included).
  ASSERT_FALSE(describe_ms.empty());
  std::sort(describe_ms.begin(), describe_ms.end());
  double p99 = describe_ms[describe_ms.size() * 99 / 100];
  double p50 = describe_ms[describe_ms.size() / 2];
  std::printf(
      "load: %d trials, %lld reports stored, master RSS %lld -> %lld "
      "KiB, describe p50 %.1f ms p99 %.1f ms over %zu calls\n",
      kTrials, static_cast<long long>(stored),
      static_cast<long long>(rss_before), static_cast<long long>(rss_after),
      p50, p99, describe_ms.size());
  EXPECT_LT(p99, 3000);
}

}  // namespace
}  // namespace det::testing
