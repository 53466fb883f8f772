// The master's store on a small tmpfs that fills mid-search and then gets
// room again: the master refuses writes meanwhile (and says so), nobody
// restarts it, and the search completes with every trial trained to its
// length and every metric stored exactly once. Also with the worker's
// stream cut while the disk is full. Needs root (mount); skipped, with the
// reason, without it.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "tests/integration/cluster.h"
#include "tests/integration/tcp_proxy.h"

namespace det::testing {
namespace {

using ::testing::HasSubstr;

constexpr int kTrials = 12;
constexpr int kLength = 120;

// A tmpfs mounted on `path` for the test's life.
class Tmpfs {
 public:
  Tmpfs(const std::string& path, const std::string& size) : path_(path) {
    std::filesystem::create_directories(path);
    std::string opts = absl::StrCat("size=", size, ",mode=0755");
    if (mount("tmpfs", path.c_str(), "tmpfs", 0, opts.c_str()) == 0) {
      mounted_ = true;
    } else {
      error_ = std::strerror(errno);
    }
  }
  ~Tmpfs() {
    if (mounted_) umount2(path_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }
  bool Resize(const std::string& size) {
    std::string opts = absl::StrCat("size=", size, ",mode=0755");
    return mount("tmpfs", path_.c_str(), "tmpfs", MS_REMOUNT, opts.c_str()) ==
           0;
  }
  // Writes a file until the filesystem is full; returns the bytes written.
  int64_t Fill(const std::string& name) {
    int fd = open(absl::StrCat(path_, "/", name).c_str(),
                  O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return 0;
    std::vector<char> block(64 << 10, 'x');
    int64_t total = 0;
    while (true) {
      ssize_t n = write(fd, block.data(), block.size());
      if (n <= 0) break;
      total += n;
    }
    close(fd);
    return total;
  }

 private:
  std::string path_;
  bool mounted_ = false;
  std::string error_;
};

class StoreOutageTest : public ClusterTest {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to mount a tmpfs";
    tmpfs_ = std::make_unique<Tmpfs>(cluster_.dir() + "/small", "8m");
    if (!tmpfs_->mounted()) {
      GTEST_SKIP() << "cannot mount a tmpfs here: " << tmpfs_->error();
    }
  }

  std::string Config() {
    return absl::StrCat("entrypoint: ", Cluster::Bin("det-fake-trial"), R"(
name: outage
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0}
  y: 0.5
  sleep_ms: 4
searcher:
  name: random
  metric: validation_accuracy
  smaller_is_better: false
  max_trials: )",
                        kTrials, R"(
  max_length: {batches: )",
                        kLength, R"(}
min_validation_period: {batches: 1}
min_checkpoint_period: {batches: 30}
max_restarts: 3
)");
  }

  // The standard health service's answer (no token needed).
  bool Serving() {
    auto stub = grpc::health::v1::Health::NewStub(grpc::CreateChannel(
        cluster_.master_address(), grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    grpc::health::v1::HealthCheckResponse resp;
    return stub->Check(&ctx, grpc::health::v1::HealthCheckRequest(), &resp)
               .ok() &&
           resp.status() == grpc::health::v1::HealthCheckResponse::SERVING;
  }

  bool StoreAvailable() {
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    v1::GetMasterInfoRequest req;
    v1::MasterInfo info;
    grpc::Status st = cluster_.api()->GetMasterInfo(&ctx, req, &info);
    return !st.ok() || info.store_available();
  }

  // Fills the store's disk once trials run, waits for the outage, checks
  // what users see during it, runs `during` and gives the disk room again.
  void RunOutage(int64_t id, const std::function<void()>& during) {
    ASSERT_TRUE(Cluster::WaitFor(
        [&] {
          for (const v1::Trial& t : cluster_.Trials(id)) {
            if (t.steps_completed() > 10) return true;
          }
          return false;
        },
        absl::Seconds(60)));
    ASSERT_GT(tmpfs_->Fill("filler"), 0);
    ASSERT_TRUE(
        Cluster::WaitFor([&] { return !StoreAvailable(); }, absl::Seconds(60)))
        << "the master never noticed the full disk";
    int unfinished = 0;
    for (const v1::Trial& t : cluster_.Trials(id)) {
      unfinished += t.steps_completed() < kLength ? 1 : 0;
    }
    EXPECT_GT(unfinished, 0) << "the disk filled mid-search";
    CliResult info = cluster_.Cli({"master", "info"});
    EXPECT_EQ(info.exit_code, 0) << info.err;
    EXPECT_THAT(info.out, HasSubstr("UNAVAILABLE since"));
    EXPECT_TRUE(Cluster::WaitFor([&] { return !Serving(); }, absl::Seconds(5)))
        << "the health service still says SERVING during the outage";
    std::string path = cluster_.dir() + "/outage.yaml";
    {
      FILE* f = fopen(path.c_str(), "w");
      ASSERT_NE(f, nullptr);
      std::string yaml = Config();
      fwrite(yaml.data(), 1, yaml.size(), f);
      fclose(f);
    }
    // Its own context: the test's directory holds the store's disk and the
    // checkpoints the trials are writing.
    const std::string context = cluster_.dir() + "/outage-context";
    std::filesystem::create_directories(context);
    CliResult refused = cluster_.Cli({"experiment", "create", path, context});
    EXPECT_NE(refused.exit_code, 0) << "created during the outage";
    EXPECT_THAT(refused.err, HasSubstr("store"));
    if (during) during();
    absl::SleepFor(absl::Seconds(2));
    std::filesystem::remove(cluster_.dir() + "/small/filler");
    ASSERT_TRUE(tmpfs_->Resize("64m"));
  }

  void ExpectCompleteAndExact(int64_t id) {
    auto x = cluster_.WaitTerminal(id, absl::Minutes(4));
    ASSERT_TRUE(x.ok()) << x.status();
    EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
    EXPECT_TRUE(cluster_.master()->Running()) << "nobody restarted the master";
    std::ifstream log(cluster_.master()->log_path());
    std::string text((std::istreambuf_iterator<char>(log)),
                     std::istreambuf_iterator<char>());
    EXPECT_THAT(text, HasSubstr("database or disk is full"));
    EXPECT_THAT(text, HasSubstr("store available again"));
    EXPECT_TRUE(Serving()) << "the health service did not come back";
    auto trials = cluster_.Trials(id);
    ASSERT_EQ(trials.size(), static_cast<size_t>(kTrials));
    std::vector<int64_t> every;
    for (int64_t s = 1; s <= kLength; ++s) every.push_back(s);
    for (const v1::Trial& t : trials) {
      SCOPED_TRACE(absl::StrCat("trial ", t.id()));
      EXPECT_EQ(t.state(), v1::STATE_COMPLETED) << t.message();
      EXPECT_EQ(t.steps_completed(), kLength);
      std::vector<int64_t> steps;
      for (const auto& r :
           cluster_.Metrics(t.id(), v1::METRIC_GROUP_VALIDATION)) {
        steps.push_back(r.steps_completed());
      }
      EXPECT_EQ(steps, every) << "each validation stored exactly once";
    }
    // The experiment created during the outage does not exist.
    auto all = cluster_.Cli({"experiment", "list", "--json"});
    EXPECT_EQ(all.exit_code, 0);
    EXPECT_THAT(all.out, ::testing::Not(HasSubstr("\"id\": \"2\"")));
  }

  std::unique_ptr<Tmpfs> tmpfs_;
};

TEST_F(StoreOutageTest, FullDiskThenRoomAgainAndTheSearchGoesOn) {
  cluster_.StartMaster({"--db", cluster_.dir() + "/small/master.db"});
  cluster_.StartWorker("w1", 4);
  int64_t id = cluster_.CreateExperiment(Config());
  ASSERT_GT(id, 0);
  ASSERT_NO_FATAL_FAILURE(RunOutage(id, nullptr));
  ExpectCompleteAndExact(id);
}

TEST_F(StoreOutageTest, WorkerStreamCutWhileTheDiskIsFull) {
  cluster_.StartMaster({"--db", cluster_.dir() + "/small/master.db"});
  TcpProxy proxy(cluster_.master_address());
  cluster_.StartWorker("w1", 4, {"--master", proxy.address()});
  int64_t id = cluster_.CreateExperiment(Config());
  ASSERT_GT(id, 0);
  ASSERT_NO_FATAL_FAILURE(RunOutage(id, [&] {
    proxy.CutAll();
    proxy.Refuse(absl::Seconds(1));
  }));
  ExpectCompleteAndExact(id);
}

}  // namespace
}  // namespace det::testing
