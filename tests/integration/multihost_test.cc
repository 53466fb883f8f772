// det across real network hops: the master and two workers each in a
// network namespace of its own, joined by veth pairs through a bridge (in a
// further namespace) with addresses of 10.231.0.0/24 (see net_lab.h), the
// master requiring a token and TLS. The test process itself runs on the
// master's "host" (it enters that namespace first), so the CLI and the
// gRPC checks reach the master on 127.0.0.1 as an operator on that machine
// would, and workers reach it on 10.231.0.1.
//
// Where namespaces cannot be made (not root, no iproute2) every test is
// reported SKIPPED with the reason.
#include <sqlite3.h>

#include <cstdlib>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/integration/cluster.h"
#include "tests/integration/net_lab.h"

namespace det::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kToken[] = "multihost-token";

class MultiHostTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!lab_.error().empty()) GTEST_SKIP() << lab_.error();
    ASSERT_TRUE(lab_.AddHost("m", "10.231.0.1/24").ok());
    ASSERT_TRUE(lab_.AddHost("w1", "10.231.0.2/24").ok());
    ASSERT_TRUE(lab_.AddHost("w2", "10.231.0.3/24").ok());
    ASSERT_TRUE(lab_.Enter("m").ok());
    dir_ = cluster_.dir();
    std::string cmd = absl::StrCat(
        "openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=det "
        "-addext subjectAltName=IP:127.0.0.1,IP:10.231.0.1,IP:10.231.1.1 "
        "-keyout ",
        dir_, "/key.pem -out ", dir_, "/cert.pem 2>/dev/null");
    if (std::system(cmd.c_str()) != 0) GTEST_SKIP() << "openssl not available";
    cluster_.SetSecurity(kToken, dir_ + "/cert.pem");
  }
  void TearDown() override {
    if (HasFailure()) cluster_.DumpLogs();
  }

  void StartMaster(const std::vector<std::string>& extra = {}) {
    std::vector<std::string> flags = {
        "--grpc_address",   "0.0.0.0:0",  // the namespace's own addresses
        "--token",          kToken,      "--tls_cert",
        dir_ + "/cert.pem", "--tls_key", dir_ + "/key.pem"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    cluster_.StartMaster(flags);
    port_ = cluster_.master_address().substr(
        cluster_.master_address().rfind(':') + 1);
  }
  // A worker on `host`, reaching the master at `master_ip`.
  int StartWorker(const std::string& host, int slots,
                  const std::string& master_ip = "10.231.0.1",
                  const std::vector<std::string>& extra = {}) {
    cluster_.SetWorkerPrefix(lab_.Exec(host));
    std::vector<std::string> flags = {"--master", master_ip + ":" + port_,
                                      "--token",  kToken,
                                      "--tls_ca", dir_ + "/cert.pem"};
    flags.insert(flags.end(), extra.begin(), extra.end());
    int i = cluster_.StartWorker(host, slots, flags);
    cluster_.SetWorkerPrefix({});
    return i;
  }
  bool AgentsConnected(size_t n) {
    CliResult r = cluster_.Cli({"agent", "list", "--json"});
    size_t count = 0;
    for (size_t at = r.out.find("\"connected\": true"); at != std::string::npos;
         at = r.out.find("\"connected\": true", at + 1)) {
      ++count;
    }
    return r.exit_code == 0 && count >= n;
  }
  // Rows of `sql` on the master's SQLite store, read by a separate
  // connection (as an operator would): each row's columns joined by '|'.
  std::vector<std::string> StoreRows(const std::string& sql) {
    std::vector<std::string> rows;
    sqlite3* db = nullptr;
    std::string path = dir_ + "/master.db";
    if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) !=
        SQLITE_OK) {
      ADD_FAILURE() << "cannot open " << path;
      sqlite3_close(db);
      return rows;
    }
    sqlite3_stmt* st = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    while (st != nullptr && sqlite3_step(st) == SQLITE_ROW) {
      std::string row;
      for (int c = 0; c < sqlite3_column_count(st); ++c) {
        if (c > 0) row += "|";
        const unsigned char* t = sqlite3_column_text(st, c);
        row += t != nullptr ? reinterpret_cast<const char*>(t) : "";
      }
      rows.push_back(row);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rows;
  }
  // The validation steps the store holds for a trial, in order.
  std::vector<std::string> StoredValidations(int64_t trial) {
    return StoreRows(absl::StrCat(
        "SELECT steps_completed FROM metrics WHERE trial_id = ", trial,
        " AND grp = 2 ORDER BY steps_completed"));
  }

  NetLab lab_;  // declared first: destroyed after the cluster's processes
  Cluster cluster_;
  std::string dir_;
  std::string port_;
};

TEST_F(MultiHostTest, AshaSearchCompletesAcrossHostsWithTokenAndTls) {
  StartMaster();
  StartWorker("w1", 1);
  StartWorker("w2", 1);
  ASSERT_TRUE(
      Cluster::WaitFor([&] { return AgentsConnected(2); }, absl::Seconds(30)));
  int64_t id = cluster_.CreateExperiment(Cluster::FakeTrialConfig(R"(
name: multihost-asha
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0}
  y: {type: double, minval: 0.0, maxval: 1.0}
  sleep_ms: 20
searcher:
  name: adaptive_asha
  metric: validation_accuracy
  smaller_is_better: false
  max_trials: 8
  max_length: {batches: 32}
  divisor: 4
  mode: aggressive
  max_concurrent_trials: 2
reproducibility: {experiment_seed: 5}
)"));
  ASSERT_GT(id, 0);
  auto x = cluster_.WaitTerminal(id, absl::Minutes(3));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  auto trials = cluster_.Trials(id);
  EXPECT_EQ(trials.size(), 8u);
  std::set<std::string> agents;
  for (const auto& t : trials) {
    EXPECT_EQ(t.restarts(), 0) << "trial " << t.id() << ": " << t.message();
    // Each validation once, in order, in the store.
    std::vector<std::string> steps = StoredValidations(t.id());
    EXPECT_FALSE(steps.empty()) << "trial " << t.id();
    EXPECT_EQ(std::set<std::string>(steps.begin(), steps.end()).size(),
              steps.size());
  }
  // Both workers, each on its own host, ran trials.
  CliResult agents_json = cluster_.Cli({"agent", "list", "--json"});
  EXPECT_THAT(agents_json.out, HasSubstr("10.231.0.2"));
  EXPECT_THAT(agents_json.out, HasSubstr("10.231.0.3"));
  auto ran = StoreRows("SELECT count(*) FROM trials WHERE run_id = 1");
  ASSERT_EQ(ran.size(), 1u);
  EXPECT_EQ(ran[0], "8");  // every trial started exactly once
}

TEST_F(MultiHostTest, CutLinkMidTrialHealsWithoutRunningTwiceOrLosingMetrics) {
  StartMaster({"--agent_timeout_s", "30"});
  StartWorker("w1", 1);
  ASSERT_TRUE(
      Cluster::WaitFor([&] { return AgentsConnected(1); }, absl::Seconds(30)));
  int64_t id = cluster_.CreateExperiment(Cluster::FakeTrialConfig(R"(
name: multihost-cut
max_restarts: 5
hyperparameters:
  x: 0.3
  y: 0.6
  sleep_ms: 80
searcher:
  name: single
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 60}
min_validation_period: {batches: 10}
min_checkpoint_period: {batches: 10}
)"));
  ASSERT_GT(id, 0);
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        auto t = cluster_.Trials(id);
        return !t.empty() && t[0].latest_checkpoint().steps_completed() > 15;
      },
      absl::Seconds(60)));
  auto before = cluster_.Trials(id);
  ASSERT_EQ(before.size(), 1u);
  ASSERT_EQ(before[0].state(), v1::STATE_ACTIVE);  // cut mid-trial
  ASSERT_LT(before[0].steps_completed(), 60);
  // w1's link goes down inside its host for 6 s (reports and heartbeats
  // cannot leave; the trial goes on), then comes back.
  ASSERT_TRUE(lab_.Ip("w1", "link set eth0 down").ok());
  absl::SleepFor(absl::Seconds(6));
  ASSERT_TRUE(lab_.Ip("w1", "link set eth0 up").ok());
  auto x = cluster_.WaitTerminal(id, absl::Minutes(3));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  auto trials = cluster_.Trials(id);
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(trials[0].restarts(), 0) << trials[0].message();
  EXPECT_EQ(StoredValidations(trials[0].id()),
            (std::vector<std::string>{"10", "20", "30", "40", "50", "60"}));
  // Started once: the store's run counter, and the trial's own log lines.
  EXPECT_EQ(StoreRows(absl::StrCat("SELECT run_id FROM trials WHERE id = ",
                                   trials[0].id())),
            (std::vector<std::string>{"1"}));
  EXPECT_EQ(StoreRows(absl::StrCat("SELECT count(*) FROM logs WHERE trial_id "
                                   "= ",
                                   trials[0].id(),
                                   " AND line LIKE 'fake trial % run %'")),
            (std::vector<std::string>{"1"}));
}

// Cut for longer than agent_timeout: the master gives the trial to w2,
// and w1, still cut off, stops its own copy, so the two never run at once;
// after the link is back w1 rejoins. Each validation is stored once.
TEST_F(MultiHostTest, LongCutMovesTheTrialAndTheCutOffCopyStops) {
  StartMaster({"--agent_timeout_s", "3", "--heartbeat_interval_s", "0.5"});
  int w1 = StartWorker("w1", 1);
  ASSERT_TRUE(
      Cluster::WaitFor([&] { return AgentsConnected(1); }, absl::Seconds(30)));
  int64_t id = cluster_.CreateExperiment(Cluster::FakeTrialConfig(R"(
name: multihost-long-cut
max_restarts: 5
hyperparameters:
  x: 0.3
  y: 0.6
  sleep_ms: 80
searcher:
  name: single
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 60}
min_validation_period: {batches: 10}
min_checkpoint_period: {batches: 10}
)"));
  ASSERT_GT(id, 0);
  ASSERT_TRUE(Cluster::WaitFor(
      [&] {
        auto t = cluster_.Trials(id);
        return !t.empty() && t[0].latest_checkpoint().steps_completed() > 15;
      },
      absl::Seconds(60)));
  pid_t w1_pid = cluster_.worker(w1)->pid();
  ASSERT_FALSE(Cluster::ChildrenOf(w1_pid).empty());
  ASSERT_TRUE(lab_.Ip("w1", "link set eth0 down").ok());
  StartWorker("w2", 1);
  // w1 stops its copy on its own while it cannot reach the master.
  EXPECT_TRUE(Cluster::WaitFor(
      [&] { return Cluster::ChildrenOf(w1_pid).empty(); }, absl::Seconds(15)));
  EXPECT_TRUE(cluster_.worker(w1)->Running());
  absl::SleepFor(absl::Seconds(2));
  ASSERT_TRUE(lab_.Ip("w1", "link set eth0 up").ok());
  auto x = cluster_.WaitTerminal(id, absl::Minutes(3));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  auto trials = cluster_.Trials(id);
  ASSERT_EQ(trials.size(), 1u);
  EXPECT_EQ(trials[0].restarts(), 1) << trials[0].message();
  EXPECT_EQ(StoredValidations(trials[0].id()),
            (std::vector<std::string>{"10", "20", "30", "40", "50", "60"}));
  EXPECT_TRUE(Cluster::WaitFor([&] { return AgentsConnected(2); },
                               absl::Seconds(30)));  // w1 is back
}

// w1 reaches the master over a link of its own (10.231.1.0/24, which w2
// cannot route to), so the master sees it as 10.231.1.2; it advertises
// its address on the shared network, 10.231.0.2. A 2-slot trial spans w1
// and w2: rank 1 on w2 must reach rank 0 at the advertised address.
TEST_F(MultiHostTest, AdvertisedAddressIsReachableForMultiSlotRendezvous) {
  ASSERT_TRUE(
      lab_.AddDirectLink("m", "10.231.1.1/24", "w1", "10.231.1.2/24").ok());
  StartMaster();
  StartWorker("w1", 1, "10.231.1.1", {"--advertise_host", "10.231.0.2"});
  StartWorker("w2", 1);
  ASSERT_TRUE(
      Cluster::WaitFor([&] { return AgentsConnected(2); }, absl::Seconds(30)));
  CliResult agents = cluster_.Cli({"agent", "list", "--json"});
  EXPECT_THAT(agents.out, HasSubstr("10.231.1.2"));  // w1 as the master sees it
  // The address the master sees is of no use to w2: no route to it.
  EXPECT_FALSE(lab_.Ip("w2", "route get 10.231.1.2").ok());
  EXPECT_TRUE(lab_.Ip("w2", "route get 10.231.0.2").ok());
  const std::string out = dir_ + "/rendezvous.txt";
  int64_t id = cluster_.CreateExperiment(
      absl::StrCat("entrypoint: ", Cluster::Bin("det-rendezvous-probe"), " ",
                   out, " ", Cluster::Bin("det-fake-trial"), R"(
name: multihost-rendezvous
max_restarts: 0
resources: {slots_per_trial: 2}
hyperparameters:
  x: 0.5
  y: 0.5
  sleep_ms: 10
searcher:
  name: single
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 10}
)"));
  ASSERT_GT(id, 0);
  auto x = cluster_.WaitTerminal(id, absl::Minutes(2));
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_COMPLETED);
  std::ifstream in(out);
  std::string got((std::istreambuf_iterator<char>(in)),
                  std::istreambuf_iterator<char>());
  // Rank 0 listened on the advertised address and rank 1 (on w2) reached it.
  EXPECT_THAT(got, HasSubstr("rank 0 at 10.231.0.2:"));
  EXPECT_THAT(got, HasSubstr("from 10.231.0.3"));
}

}  // namespace
}  // namespace det::testing
