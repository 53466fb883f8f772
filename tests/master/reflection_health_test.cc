// The master's reflection service and health setting, in process on a
// loopback port: reflection lists and describes det.v1.Api (what grpcurl
// asks), refuses a wrong token; SetStoreHealth flips the standard health
// answer between SERVING and NOT_SERVING.
#include <memory>

#include "det/v1/api.grpc.pb.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "master/api/health.h"
#include "master/api/reflection_service.h"
#include "tests/testing/reflection_client.h"

namespace det::master {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
namespace hv = grpc::health::v1;

class ReflectionHealthTest : public ::testing::Test {
 protected:
  void Start(const std::string& token) {
    // Links det/v1/api.pb.o from the static det_proto, so its descriptors
    // are in the generated pool, as in det-master (which calls its stubs).
    ASSERT_EQ(v1::Experiment::descriptor()->file()->name(), "det/v1/api.proto");
    reflection_ = std::make_unique<ReflectionService>(
        std::vector<std::string>{v1::Api::service_full_name()}, token);
    EnableHealthService();
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(reflection_.get());
    server_ = b.BuildAndStart();
    ASSERT_TRUE(server_ && port > 0);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials());
  }
  hv::HealthCheckResponse::ServingStatus Health(grpc::StatusCode* code) {
    auto stub = hv::Health::NewStub(channel_);
    grpc::ClientContext ctx;
    hv::HealthCheckResponse resp;
    *code = stub->Check(&ctx, hv::HealthCheckRequest(), &resp).error_code();
    return resp.status();
  }
  void TearDown() override {
    if (server_) server_->Shutdown();
  }
  std::unique_ptr<ReflectionService> reflection_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(ReflectionHealthTest, ListsAndDescribesTheApi) {
  Start("");
  testing::ReflectionClient client(channel_, "");
  auto names = client.ListServices();
  ASSERT_TRUE(names.ok()) << names.status();
  EXPECT_THAT(*names, Contains("det.v1.Api"));
  EXPECT_THAT(*names, Contains("grpc.reflection.v1alpha.ServerReflection"));
  auto api = client.FindService("det.v1.Api");
  ASSERT_TRUE(api.ok()) << api.status();
  ASSERT_NE((*api)->FindMethodByName("GetExperiment"), nullptr);
  EXPECT_EQ(
      (*api)->FindMethodByName("GetExperiment")->output_type()->full_name(),
      "det.v1.Experiment");
  auto missing = client.FindService("det.v1.NoSuchService");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr("NoSuchService"));
}

TEST_F(ReflectionHealthTest, TokenGuardsReflectionNotHealth) {
  Start("tok");
  auto none = testing::ReflectionClient(channel_, "").ListServices();
  EXPECT_EQ(none.status().code(), absl::StatusCode::kUnauthenticated);
  auto wrong = testing::ReflectionClient(channel_, "guess").ListServices();
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(wrong.status().message(), HasSubstr("does not match"));
  auto right = testing::ReflectionClient(channel_, "tok").ListServices();
  ASSERT_TRUE(right.ok()) << right.status();
  EXPECT_THAT(*right, Contains("det.v1.Api"));
  grpc::StatusCode code;
  EXPECT_EQ(Health(&code), hv::HealthCheckResponse::SERVING);
  EXPECT_EQ(code, grpc::StatusCode::OK);
}

TEST_F(ReflectionHealthTest, StoreHealthDrivesServingStatus) {
  Start("");
  grpc::StatusCode code;
  EXPECT_EQ(Health(&code), hv::HealthCheckResponse::SERVING);
  SetStoreHealth(server_.get(), false);
  EXPECT_EQ(Health(&code), hv::HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(code, grpc::StatusCode::OK);
  SetStoreHealth(server_.get(), true);
  EXPECT_EQ(Health(&code), hv::HealthCheckResponse::SERVING);
  SetStoreHealth(nullptr, false);  // no server: nothing to do, no crash
}

}  // namespace
}  // namespace det::master
