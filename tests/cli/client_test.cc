#include "cli/client.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace det::cli {
namespace {

std::string TargetOf(const std::string& master) {
  ClientOptions options;
  options.master = master;
  auto client = Client::Create(options);
  if (!client.ok()) return "error: " + std::string(client.status().message());
  return (*client)->target();
}

TEST(ClientTest, MasterAddressForms) {
  EXPECT_EQ(TargetOf("127.0.0.1:8090"), "127.0.0.1:8090");
  EXPECT_EQ(TargetOf("master.example:9000"), "master.example:9000");
  // As Determined users write DET_MASTER: a scheme and no port.
  EXPECT_EQ(TargetOf("http://master.example"), "master.example:8090");
  EXPECT_EQ(TargetOf("grpc://10.0.0.1:7000/"), "10.0.0.1:7000");
  EXPECT_EQ(TargetOf(" localhost "), "localhost:8090");
  EXPECT_EQ(TargetOf("[::1]:8091"), "[::1]:8091");
  EXPECT_EQ(TargetOf("[::1]"), "[::1]:8090");
}

TEST(ClientTest, BadMasterAddresses) {
  EXPECT_THAT(TargetOf(""), ::testing::HasSubstr("empty"));
  EXPECT_THAT(TargetOf("host:port"), ::testing::HasSubstr("not a port"));
  EXPECT_THAT(TargetOf("host:70000"), ::testing::HasSubstr("not a port"));
  EXPECT_THAT(TargetOf("::1"), ::testing::HasSubstr("[ADDRESS]:PORT"));
  EXPECT_THAT(TargetOf("[::1"), ::testing::HasSubstr("missing ']'"));
  EXPECT_THAT(TargetOf(":8090"), ::testing::HasSubstr("no host"));
}

TEST(ClientTest, UnreadableCaFileIsAClearError) {
  ClientOptions options;
  options.tls_ca_file = "/nonexistent/ca.pem";
  auto client = Client::Create(options);
  ASSERT_FALSE(client.ok());
  EXPECT_THAT(client.status().message(),
              ::testing::HasSubstr("/nonexistent/ca.pem"));
  EXPECT_THAT(client.status().message(),
              ::testing::HasSubstr("DET_MASTER_CERT_FILE"));
}

TEST(ClientTest, ReadFile) {
  auto missing = ReadFile("/nonexistent/config.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(),
              ::testing::HasSubstr("/nonexistent/config.yaml"));
  auto dir = ReadFile("/");
  ASSERT_FALSE(dir.ok());
  EXPECT_THAT(dir.status().message(), ::testing::HasSubstr("is a directory"));
}

}  // namespace
}  // namespace det::cli
