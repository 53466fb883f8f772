// The installable C++ SDK: `cmake --install` into a fresh prefix, then
// examples/cpp_trial and examples/query_best configured and built out of
// tree against it (find_package(det)), cpp_trial run as the trial of a real
// master and worker, and query_best reading the experiment's best metrics.
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace det::testing {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

TEST(SdkInstallTest, OutOfTreeTrialAndQuery) {
  Cluster cluster;
  const std::string prefix = cluster.dir() + "/prefix";
  CliResult install = cluster.Shell(
      absl::StrCat("cmake --install ", DET_BUILD_DIR, " --prefix ", prefix));
  ASSERT_EQ(install.exit_code, 0) << install.out << install.err;
  for (const char* f :
       {"bin/det", "bin/det-master", "bin/det-worker", "bin/det-fake-trial",
        "include/worker/trial_api/trial_context.h",
        "include/det/v1/trial.grpc.pb.h", "lib/cmake/det/detConfig.cmake"}) {
    EXPECT_TRUE(fs::exists(fs::path(prefix) / f)) << f;
  }

  // Configure and build both examples against the prefix only (no
  // reference to det's source or build tree).
  auto build = [&](const std::string& name) {
    std::string dir = cluster.dir() + "/" + name;
    return cluster.Shell(absl::StrCat(
        "cmake -S ", DET_SOURCE_DIR, "/examples/", name, " -B ", dir,
        " -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH=", prefix,
        " && cmake --build ", dir, " -j2"));
  };
  CliResult trial = build("cpp_trial");
  ASSERT_EQ(trial.exit_code, 0) << trial.out << trial.err;
  CliResult query = build("query_best");
  ASSERT_EQ(query.exit_code, 0) << query.out << query.err;

  cluster.StartMaster();
  cluster.StartWorker("w1", 1);
  int64_t id = cluster.CreateExperiment(
      absl::StrCat("entrypoint: ", cluster.dir(), "/cpp_trial/cpp_trial\n", R"(
name: sdk
hyperparameters:
  learning_rate: {type: log, base: 10, minval: -2, maxval: -1}
searcher:
  name: random
  max_trials: 2
  metric: validation_loss
  smaller_is_better: true
  max_length: {batches: 300}
min_validation_period: {batches: 100}
)"));
  auto x = cluster.WaitTerminal(id, absl::Minutes(2));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  ASSERT_TRUE(x->best_validation_metrics().contains("validation_loss"));
  const double best = x->best_validation_metrics().at("validation_loss");
  EXPECT_LT(best, 0.5);  // 300 SGD steps at lr >= 0.01 fit y = 3x + 1
  for (const v1::Trial& t : cluster.Trials(id)) {
    // Validations at 100, 200 and the end (300), reported by the trial.
    EXPECT_EQ(cluster.Metrics(t.id(), v1::METRIC_GROUP_VALIDATION).size(), 3u)
        << "trial " << t.id();
  }

  // environment.environment_variables reach the trial (the trial exits 1
  // without them), and cannot override the worker's DET_* variables.
  int64_t env_id = cluster.CreateExperiment(absl::StrCat(
      "entrypoint: test \"$GREETING\" = hello && test \"$DET_EXPERIMENT_ID\" "
      "!= 999 && exec ",
      Cluster::Bin("det-fake-trial"), R"(
name: env
max_restarts: 0
environment:
  environment_variables:
    - GREETING=hello
    - DET_EXPERIMENT_ID=999
hyperparameters:
  x: 0.5
searcher:
  name: single
  metric: validation_loss
  max_length: 20
)"));
  auto env_x = cluster.WaitTerminal(env_id, absl::Minutes(1));
  ASSERT_TRUE(env_x.ok()) << env_x.status();
  EXPECT_EQ(env_x->state(), v1::STATE_COMPLETED);

  // single with no length and the user's entrypoint: the trial decides
  // how long it trains; exiting 0 completes it and the experiment.
  int64_t own_id = cluster.CreateExperiment(absl::StrCat(
      "entrypoint: ", cluster.dir(), "/cpp_trial/cpp_trial --exit-after=50\n",
      R"(
name: trial-decides
searcher:
  name: single
  metric: validation_loss
)"));
  auto own_x = cluster.WaitTerminal(own_id, absl::Minutes(1));
  ASSERT_TRUE(own_x.ok()) << own_x.status();
  EXPECT_EQ(own_x->state(), v1::STATE_COMPLETED);
  EXPECT_TRUE(own_x->best_validation_metrics().contains("validation_loss"));

  CliResult q =
      cluster.Shell(absl::StrCat("DET_MASTER=", cluster.master_address(), " ",
                                 cluster.dir(), "/query_best/query_best ", id));
  EXPECT_EQ(q.exit_code, 0) << q.err;
  EXPECT_THAT(q.out, HasSubstr("validation_loss = "));
  if (HasFailure()) cluster.DumpLogs();
}

}  // namespace
}  // namespace det::testing
