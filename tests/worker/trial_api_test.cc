// TrialContext (client) <-> TrialApiServer (worker side) over loopback.
#include <signal.h>
#include <stdlib.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "det/v1/trial.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "worker/trial_api/trial_api_server.h"
#include "worker/trial_api/trial_context.h"

namespace det {
namespace {

// What the server's handlers received.
struct Received {
  absl::Mutex mu;
  std::vector<std::pair<int32_t, v1::MetricReport>> metrics;
  std::vector<v1::Checkpoint> checkpoints;
};

v1::TrialSpec MakeSpec(int64_t trial_id, int32_t run_id) {
  v1::TrialSpec spec;
  spec.set_experiment_id(5);
  spec.set_trial_id(trial_id);
  spec.set_run_id(run_id);
  spec.set_target_batches(100);
  spec.add_validation_points(50);
  (*spec.mutable_hparams()->mutable_fields())["x"].set_number_value(0.25);
  return spec;
}

class TrialApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    unsetenv("DET_TRIAL_API_ADDR");
    unsetenv("DET_TRIAL_TOKEN");
    unsetenv("DET_RANK");
    unsetenv("DET_WORLD_SIZE");
  }
  void TearDown() override { SetUp(); }

  std::unique_ptr<TrialApiServer> StartServer(
      TrialApiServer::MetricsHandler on_metrics = nullptr) {
    TrialApiServer::Handlers h;
    h.on_metrics =
        on_metrics ? on_metrics
                   : [this](int64_t, int32_t run, const v1::MetricReport& r) {
                       absl::MutexLock l(&received_.mu);
                       received_.metrics.emplace_back(run, r);
                       return absl::OkStatus();
                     };
    h.on_checkpoint = [this](int64_t, int32_t, const v1::Checkpoint& c) {
      absl::MutexLock l(&received_.mu);
      received_.checkpoints.push_back(c);
      return absl::OkStatus();
    };
    auto server = TrialApiServer::Start(std::move(h));
    EXPECT_TRUE(server.ok()) << server.status();
    return server.ok() ? std::move(*server) : nullptr;
  }

  static void PointEnvAt(const TrialApiServer& server,
                         const std::string& token) {
    setenv("DET_TRIAL_API_ADDR", server.address().c_str(), 1);
    setenv("DET_TRIAL_TOKEN", token.c_str(), 1);
  }

  Received received_;
};

TEST_F(TrialApiTest, RoundTripSpecMetricsAndCheckpoint) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  ASSERT_EQ(server->address().rfind("127.0.0.1:", 0), 0u);
  PointEnvAt(*server, server->RegisterRun(MakeSpec(7, 2)));
  setenv("DET_RANK", "0", 1);

  auto ctx = TrialContext::FromEnvironment(v1::TrialSpec());
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  EXPECT_EQ((*ctx)->spec().trial_id(), 7);
  EXPECT_EQ((*ctx)->spec().run_id(), 2);
  EXPECT_EQ((*ctx)->spec().target_batches(), 100);
  EXPECT_EQ((*ctx)->spec().hparams().fields().at("x").number_value(), 0.25);
  EXPECT_EQ((*ctx)->rank(), 0);
  EXPECT_EQ((*ctx)->world_size(), 1);

  ASSERT_TRUE((*ctx)->ReportTrainingMetrics(10, {{"loss", 1.5}}).ok());
  ASSERT_TRUE(
      (*ctx)->ReportValidationMetrics(50, {{"validation_accuracy", 0.6}}).ok());
  v1::Checkpoint c;
  c.set_uuid("abc-123");
  c.set_steps_completed(50);
  ASSERT_TRUE((*ctx)->ReportCheckpoint(c).ok());

  absl::MutexLock l(&received_.mu);
  ASSERT_EQ(received_.metrics.size(), 2u);
  EXPECT_EQ(received_.metrics[0].first, 2);
  EXPECT_EQ(received_.metrics[0].second.trial_id(), 7);
  EXPECT_EQ(received_.metrics[0].second.group(), v1::METRIC_GROUP_TRAINING);
  EXPECT_EQ(received_.metrics[0].second.steps_completed(), 10);
  EXPECT_EQ(received_.metrics[0].second.metrics().at("loss"), 1.5);
  EXPECT_GT(received_.metrics[0].second.time_us(), 0);
  EXPECT_EQ(received_.metrics[1].second.group(), v1::METRIC_GROUP_VALIDATION);
  EXPECT_EQ(received_.metrics[1].second.metrics().at("validation_accuracy"),
            0.6);
  ASSERT_EQ(received_.checkpoints.size(), 1u);
  EXPECT_EQ(received_.checkpoints[0].uuid(), "abc-123");
  EXPECT_EQ(received_.checkpoints[0].trial_id(), 7);
  EXPECT_EQ(received_.checkpoints[0].steps_completed(), 50);
}

TEST_F(TrialApiTest, RankAndWorldSizeComeFromEnvironment) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  v1::TrialSpec spec = MakeSpec(1, 0);
  spec.set_world_size(4);
  PointEnvAt(*server, server->RegisterRun(spec));
  setenv("DET_RANK", "3", 1);
  auto ctx = TrialContext::FromEnvironment(v1::TrialSpec());
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  EXPECT_EQ((*ctx)->rank(), 3);
  EXPECT_EQ((*ctx)->world_size(), 4);

  setenv("DET_RANK", "three", 1);
  auto bad = TrialContext::FromEnvironment(v1::TrialSpec());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("DET_RANK"), std::string::npos);
}

TEST_F(TrialApiTest, WrongTokenIsUnauthenticated) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  server->RegisterRun(MakeSpec(7, 0));
  PointEnvAt(*server, "not-the-token");
  auto ctx = TrialContext::FromEnvironment(v1::TrialSpec());
  ASSERT_FALSE(ctx.ok());
  EXPECT_EQ(ctx.status().code(), absl::StatusCode::kUnauthenticated)
      << ctx.status();

  // Raw calls without any token, and with a wrong one, are refused too.
  auto stub = v1::TrialService::NewStub(grpc::CreateChannel(
      server->address(), grpc::InsecureChannelCredentials()));
  {
    grpc::ClientContext cc;
    v1::ReportResponse resp;
    v1::MetricReport r;
    r.set_group(v1::METRIC_GROUP_TRAINING);
    EXPECT_EQ(stub->ReportMetrics(&cc, r, &resp).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    grpc::ClientContext cc;
    cc.AddMetadata("x-det-trial-token", "guess");
    v1::ShouldStopResponse resp;
    EXPECT_EQ(
        stub->ShouldStop(&cc, v1::ShouldStopRequest(), &resp).error_code(),
        grpc::StatusCode::UNAUTHENTICATED);
  }
  absl::MutexLock l(&received_.mu);
  EXPECT_TRUE(received_.metrics.empty());
}

TEST_F(TrialApiTest, UnregisteredOrReplacedRunLosesItsToken) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  std::string old_token = server->RegisterRun(MakeSpec(7, 0));
  std::string new_token = server->RegisterRun(MakeSpec(7, 0));
  EXPECT_NE(old_token, new_token);
  EXPECT_EQ(server->num_runs(), 1);
  PointEnvAt(*server, old_token);
  auto ctx = TrialContext::FromEnvironment(v1::TrialSpec());
  EXPECT_EQ(ctx.status().code(), absl::StatusCode::kUnauthenticated);

  PointEnvAt(*server, new_token);
  ctx = TrialContext::FromEnvironment(v1::TrialSpec());
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  server->UnregisterRun(7, 0);
  EXPECT_EQ(server->num_runs(), 0);
  absl::Status s = (*ctx)->ReportTrainingMetrics(1, {{"loss", 1}});
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
}

TEST_F(TrialApiTest, ShouldStopFollowsTheRunsFlag) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  PointEnvAt(*server, server->RegisterRun(MakeSpec(7, 1)));
  auto before = TrialContext::FromEnvironment(v1::TrialSpec());
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_FALSE((*before)->ShouldStop());

  EXPECT_TRUE(server->RequestStop(7, 1));
  EXPECT_FALSE(server->RequestStop(7, 99));
  // A fresh context polls on its first call.
  auto after = TrialContext::FromEnvironment(v1::TrialSpec());
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_TRUE((*after)->ShouldStop());
  EXPECT_TRUE((*after)->ShouldStop());  // sticky, no second poll needed
}

TEST_F(TrialApiTest, SpecFetchCountsAsTheFirstShouldStopPoll) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  PointEnvAt(*server, server->RegisterRun(MakeSpec(8, 1)));
  auto ctx = TrialContext::FromEnvironment(v1::TrialSpec());
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  // GetSpec said "no stop": no poll until a poll period has passed (a
  // worker that stops a trial also sends it SIGTERM at once).
  ASSERT_TRUE(server->RequestStop(8, 1));
  EXPECT_FALSE((*ctx)->ShouldStop());
  absl::SleepFor(absl::Seconds(1.1));
  EXPECT_TRUE((*ctx)->ShouldStop());
}

TEST_F(TrialApiTest, ReportsAreRetriedWhileTheWorkerIsUnavailable) {
  std::atomic<int> calls{0};
  auto server = StartServer([&](int64_t, int32_t, const v1::MetricReport&) {
    return ++calls <= 2 ? absl::UnavailableError("queue full")
                        : absl::OkStatus();
  });
  ASSERT_NE(server, nullptr);
  PointEnvAt(*server, server->RegisterRun(MakeSpec(7, 0)));
  auto ctx = TrialContext::FromEnvironment(v1::TrialSpec());
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  EXPECT_TRUE((*ctx)->ReportTrainingMetrics(1, {{"loss", 1}}).ok());
  EXPECT_EQ(calls.load(), 3);
}

TEST_F(TrialApiTest, OtherHandlerErrorsAreNotRetried) {
  std::atomic<int> calls{0};
  auto server = StartServer([&](int64_t, int32_t, const v1::MetricReport&) {
    ++calls;
    return absl::FailedPreconditionError("run is over");
  });
  ASSERT_NE(server, nullptr);
  PointEnvAt(*server, server->RegisterRun(MakeSpec(7, 0)));
  auto ctx = TrialContext::FromEnvironment(v1::TrialSpec());
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  absl::Status s = (*ctx)->ReportTrainingMetrics(1, {{"loss", 1}});
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("run is over"), std::string::npos);
  EXPECT_EQ(calls.load(), 1);
}

TEST_F(TrialApiTest, BadCheckpointUuidIsRejected) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  PointEnvAt(*server, server->RegisterRun(MakeSpec(7, 0)));
  auto ctx = TrialContext::FromEnvironment(v1::TrialSpec());
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  for (const char* uuid : {"", "..", "../escape", "a/b"}) {
    v1::Checkpoint c;
    c.set_uuid(uuid);
    EXPECT_EQ((*ctx)->ReportCheckpoint(c).code(),
              absl::StatusCode::kInvalidArgument)
        << uuid;
  }
  absl::MutexLock l(&received_.mu);
  EXPECT_TRUE(received_.checkpoints.empty());
}

TEST_F(TrialApiTest, MissingTokenWithAddressIsAnError) {
  setenv("DET_TRIAL_API_ADDR", "127.0.0.1:1", 1);
  auto ctx = TrialContext::FromEnvironment(v1::TrialSpec());
  ASSERT_FALSE(ctx.ok());
  EXPECT_NE(ctx.status().message().find("DET_TRIAL_TOKEN"), std::string::npos);
}

TEST_F(TrialApiTest, StandalonePrintsJsonLines) {
  v1::TrialSpec spec = MakeSpec(3, 0);
  auto ctx = TrialContext::FromEnvironment(spec);
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  EXPECT_EQ((*ctx)->spec().trial_id(), 3);
  EXPECT_EQ((*ctx)->world_size(), 1);
  testing::internal::CaptureStdout();
  ASSERT_TRUE(
      (*ctx)->ReportValidationMetrics(50, {{"validation_loss", 0.5}}).ok());
  v1::Checkpoint c;
  c.set_uuid("u1");
  ASSERT_TRUE((*ctx)->ReportCheckpoint(c).ok());
  std::string out = testing::internal::GetCapturedStdout();
  size_t nl = out.find('\n');
  ASSERT_NE(nl, std::string::npos);
  std::string first = out.substr(0, nl);
  std::string second = out.substr(nl + 1);
  EXPECT_EQ(first.rfind("{\"kind\":\"metrics\",\"report\":{", 0), 0u) << first;
  EXPECT_NE(first.find("\"validation_loss\":0.5"), std::string::npos) << first;
  EXPECT_NE(first.find("\"steps_completed\":\"50\""), std::string::npos)
      << first;
  EXPECT_EQ(second.rfind("{\"kind\":\"checkpoint\",\"report\":{", 0), 0u)
      << second;
  EXPECT_NE(second.find("\"uuid\":\"u1\""), std::string::npos) << second;
  EXPECT_FALSE((*ctx)->ShouldStop());
}

TEST_F(TrialApiTest, SigtermSetsTheStopFlag) {
  auto ctx = TrialContext::FromEnvironment(MakeSpec(1, 0));
  ASSERT_TRUE(ctx.ok()) << ctx.status();
  EXPECT_FALSE(StopRequestedBySignal());
  ASSERT_EQ(raise(SIGTERM), 0);  // the handler keeps the process alive
  EXPECT_TRUE(StopRequestedBySignal());
  EXPECT_TRUE((*ctx)->ShouldStop());
}

// What a run starts from, as Determined's latest_checkpoint: its own
// checkpoint (the step count continues), else its warm start (steps at 0).
TEST(StartingCheckpointTest, OwnCheckpointElseWarmStartElseNothing) {
  v1::TrialSpec spec;
  EXPECT_EQ(StartingCheckpointOf(spec).uuid, "");
  spec.set_checkpoint_dir("/own");
  spec.set_warm_start_dir("/source");
  spec.mutable_warm_start()->set_uuid("w");
  spec.mutable_warm_start()->set_steps_completed(500);
  StartingCheckpoint warm = StartingCheckpointOf(spec);
  EXPECT_EQ(warm.uuid, "w");
  EXPECT_EQ(warm.path, "/source/w");
  EXPECT_EQ(warm.steps_completed, 0);
  EXPECT_TRUE(warm.warm_start);
  v1::Checkpoint* own = spec.add_restore_candidates();
  own->set_uuid("r");
  own->set_steps_completed(30);
  spec.set_restore_uuid("r");
  StartingCheckpoint restored = StartingCheckpointOf(spec);
  EXPECT_EQ(restored.uuid, "r");
  EXPECT_EQ(restored.path, "/own/r");
  EXPECT_EQ(restored.steps_completed, 30);
  EXPECT_FALSE(restored.warm_start);
}

}  // namespace
}  // namespace det
