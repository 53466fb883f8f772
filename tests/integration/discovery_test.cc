// A real det-master with a token: gRPC reflection lists det.v1.Api for a
// client with the token and refuses a wrong one; the standard health
// service answers SERVING to a probe without any token.
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"
#include "tests/testing/reflection_client.h"

namespace det::testing {
namespace {

using ::testing::Contains;

TEST(DiscoveryTest, ReflectionBehindTokenHealthOpen) {
  Cluster cluster;
  cluster.StartMaster({"--token", "tok3n"});
  auto channel = grpc::CreateChannel(cluster.master_address(),
                                     grpc::InsecureChannelCredentials());

  auto wrong = ReflectionClient(channel, "nope").ListServices();
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated)
      << wrong.status();
  ReflectionClient client(channel, "tok3n");
  auto names = client.ListServices();
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_THAT(*names, Contains("det.v1.Api"));
  EXPECT_THAT(*names, Contains("grpc.health.v1.Health"));
  auto api = client.FindService("det.v1.Api");
  ASSERT_TRUE(api.ok()) << api.status();
  EXPECT_NE((*api)->FindMethodByName("CreateExperiment"), nullptr);

  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::health::v1::HealthCheckResponse resp;
  grpc::Status s =
      health->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING);
  if (HasFailure()) cluster.DumpLogs();
}

}  // namespace
}  // namespace det::testing
