// Security through real processes: a master that requires a token refuses
// clients and workers without it; TLS with a CA file works end to end and
// plain-text clients are refused.
#include <cstdlib>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"

namespace det::testing {
namespace {

using ::testing::HasSubstr;

class SecurityTest : public ClusterTest {
 protected:
  std::string FakeSearch() {
    return absl::StrCat("entrypoint: ", Cluster::Bin("det-fake-trial"), R"(
name: secure
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0, count: 2}
searcher:
  name: grid
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 10}
)");
  }
};

TEST_F(SecurityTest, TokenRequiredFromClientsAndWorkers) {
  const std::string token = "s3cret-token";
  cluster_.StartMaster({"--token", token});

  // A client without the token, or with a wrong one, is refused.
  CliResult none = cluster_.Cli({"experiment", "list"});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_THAT(none.err, HasSubstr("token"));
  CliResult wrong =
      cluster_.Cli({"experiment", "list"}, {{"DET_TOKEN", "guess"}});
  EXPECT_NE(wrong.exit_code, 0);
  EXPECT_THAT(wrong.err, HasSubstr("does not match"));

  // A worker without it is refused for good and exits.
  int bad = cluster_.StartWorker("intruder", 1);
  EXPECT_TRUE(Cluster::WaitFor([&] { return !cluster_.worker(bad)->Running(); },
                               absl::Seconds(20)));

  // With the token, everything works.
  cluster_.StartWorker("w1", 1, {"--token", token});
  std::string path = cluster_.dir() + "/secure.yaml";
  std::ofstream(path) << FakeSearch();
  CliResult created = cluster_.Cli({"experiment", "create", path, "--follow"},
                                   {{"DET_TOKEN", token}});
  EXPECT_EQ(created.exit_code, 0) << created.out << created.err;
  EXPECT_THAT(created.out, HasSubstr("COMPLETED"));
  CliResult agents =
      cluster_.Cli({"agent", "list", "--json"}, {{"DET_TOKEN", token}});
  EXPECT_EQ(agents.exit_code, 0) << agents.err;
  EXPECT_THAT(agents.out, HasSubstr("w1"));
  // The refused worker never registered.
  EXPECT_THAT(agents.out, ::testing::Not(HasSubstr("intruder")));
}

TEST_F(SecurityTest, TlsWithCaFile) {
  std::string dir = cluster_.dir();
  std::string cmd = absl::StrCat(
      "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
      "-addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout ",
      dir, "/key.pem -out ", dir, "/cert.pem 2>/dev/null");
  if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "openssl not available";
  cluster_.StartMaster(
      {"--tls_cert", dir + "/cert.pem", "--tls_key", dir + "/key.pem"});
  std::map<std::string, std::string> tls = {
      {"DET_MASTER_CERT_FILE", dir + "/cert.pem"}};
  // Plain text is refused; TLS verified against the CA works.
  CliResult plain = cluster_.Cli({"master", "info"});
  EXPECT_NE(plain.exit_code, 0);
  CliResult info = cluster_.Cli({"master", "info"}, tls);
  EXPECT_EQ(info.exit_code, 0) << info.err;

  cluster_.StartWorker("w1", 1, {"--tls_ca", dir + "/cert.pem"});
  std::string path = dir + "/secure.yaml";
  std::ofstream(path) << FakeSearch();
  CliResult created =
      cluster_.Cli({"experiment", "create", path, "--follow"}, tls);
  EXPECT_EQ(created.exit_code, 0) << created.out << created.err;
  EXPECT_THAT(created.out, HasSubstr("COMPLETED"));
}

}  // namespace
}  // namespace det::testing
