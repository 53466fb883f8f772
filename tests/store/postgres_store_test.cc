// PostgresStore against real servers: what only a server store has. A
// private server (scripts/pg-local.sh) that the test stops and restarts
// under the store, or whose connections it kills; bytes and text a server
// would refuse; connection strings that are wrong.
#include "master/store/postgres_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "tests/store/store_backend.h"

namespace det::store {
namespace {

using ::testing::HasSubstr;

// Runs scripts/pg-local.sh `cmd` on `state`; true on success.
bool PgLocal(const std::string& cmd, const std::string& state) {
  std::string line = absl::StrCat(DET_SOURCE_DIR, "/scripts/pg-local.sh ", cmd,
                                  " '", state, "' >/dev/null");
  return std::system(line.c_str()) == 0;
}

// A server of this test's own, stopped and removed when the test ends.
class PrivateServer {
 public:
  PrivateServer()
      : state_((std::filesystem::path(::testing::TempDir()) /
                absl::StrCat("det-pg-private-", getpid(), ".state"))
                   .string()) {
    ok_ = PgLocal("start", state_);
    if (ok_) url_ = ReadUrl();
  }
  ~PrivateServer() { PgLocal("stop", state_); }
  bool ok() const { return ok_; }
  const std::string& url() const { return url_; }
  bool Pause() { return PgLocal("pause", state_); }
  bool Resume() { return PgLocal("resume", state_); }

 private:
  std::string ReadUrl() {
    FILE* f = std::fopen(state_.c_str(), "r");
    char buf[4096];
    std::string lines[2];
    for (std::string& l : lines) {
      if (f != nullptr && std::fgets(buf, sizeof buf, f) != nullptr) l = buf;
      while (!l.empty() && l.back() == '\n') l.pop_back();
    }
    if (f != nullptr) std::fclose(f);
    return lines[1];
  }
  std::string state_;
  std::string url_;
  bool ok_ = false;
};

// Runs one statement on `url`; the first value of the first row.
std::string Sql(const std::string& url, const std::string& sql) {
  PGconn* c = PQconnectdb(url.c_str());
  PGresult* r = PQexec(c, sql.c_str());
  std::string out;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0) {
    out = PQgetvalue(r, 0, 0);
  }
  PQclear(r);
  PQfinish(c);
  return out;
}

TEST(PostgresStoreTest, ReconnectsAfterTheServerRestarts) {
  PrivateServer server;
  ASSERT_TRUE(server.ok()) << "scripts/pg-local.sh start failed";
  auto store = PostgresStore::Open(server.url());
  ASSERT_TRUE(store.ok()) << store.status();
  ExperimentRecord e;
  e.experiment.set_name("before");
  ASSERT_EQ(*(*store)->AddExperiment(e), 1);

  // Server down: every call fails, with the transient code, and says so.
  ASSERT_TRUE(server.Pause());
  absl::StatusOr<int64_t> down = (*store)->AddExperiment(e);
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.status().code(), absl::StatusCode::kUnavailable)
      << down.status();
  EXPECT_EQ((*store)->ListExperiments().status().code(),
            absl::StatusCode::kUnavailable);
  absl::Status tx = (*store)->RunInTransaction(
      [&]() -> absl::Status { return (*store)->AddExperiment(e).status(); });
  EXPECT_EQ(tx.code(), absl::StatusCode::kUnavailable) << tx;

  // Server back: the next call reconnects; nothing was lost or half-done.
  ASSERT_TRUE(server.Resume());
  absl::StatusOr<std::vector<v1::Experiment>> list =
      (*store)->ListExperiments();
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].name(), "before");
  e.experiment.set_name("after");
  absl::StatusOr<int64_t> id = (*store)->AddExperiment(e);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ((*store)->GetExperiment(*id)->experiment.name(), "after");
}

TEST(PostgresStoreTest, AKilledConnectionIsReplacedAndItsTransactionLost) {
  PrivateServer server;
  ASSERT_TRUE(server.ok()) << "scripts/pg-local.sh start failed";
  auto store = PostgresStore::Open(server.url());
  ASSERT_TRUE(store.ok()) << store.status();
  ExperimentRecord e;
  ASSERT_EQ(*(*store)->AddExperiment(e), 1);
  const std::string kill =
      "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
      "WHERE application_name = 'det-master'";

  // Killed while idle: noticed before the next statement is sent, so the
  // call succeeds on a new connection.
  ASSERT_EQ(Sql(server.url(), kill), "1");
  usleep(200 * 1000);  // the server's message reaches the socket
  absl::StatusOr<int64_t> idle = (*store)->AddExperiment(e);
  ASSERT_TRUE(idle.ok()) << idle.status();
  EXPECT_EQ(*idle, 2);

  // Killed inside a transaction: the transaction fails as UNAVAILABLE, its
  // first write is not committed, and the store works again afterwards.
  absl::Status tx = (*store)->RunInTransaction([&]() -> absl::Status {
    if (auto id = (*store)->AddExperiment(e); !id.ok()) return id.status();
    Sql(server.url(), kill);
    usleep(200 * 1000);
    return (*store)->AddExperiment(e).status();
  });
  EXPECT_EQ(tx.code(), absl::StatusCode::kUnavailable) << tx;
  absl::StatusOr<std::vector<v1::Experiment>> list =
      (*store)->ListExperiments();
  ASSERT_TRUE(list.ok()) << list.status();
  EXPECT_EQ(list->size(), 2u);
}

class PostgresSharedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = MakePostgresBackend();
    if (std::string why = backend_->Unavailable(); !why.empty()) {
      GTEST_SKIP() << why;
    }
    backend_->SetUp();
    auto s = backend_->Open();
    ASSERT_TRUE(s.ok()) << s.status();
    store_ = std::move(*s);
  }
  void TearDown() override {
    store_.reset();
    if (backend_ && backend_->Unavailable().empty()) backend_->TearDown();
  }
  std::unique_ptr<StoreBackend> backend_;
  std::unique_ptr<Store> store_;
};

// Log lines and searcher events are bytes: NUL and bytes that are not
// UTF-8 come back as they went in (SQLite keeps them too).
TEST_F(PostgresSharedTest, BytesThatAreNotTextAreKeptVerbatim) {
  ExperimentRecord e;
  int64_t exp = *store_->AddExperiment(e);
  TrialRecord t;
  t.trial.set_experiment_id(exp);
  int64_t trial = *store_->AddTrial(t);
  const std::string raw("a\0b\xff\xfe progress 50%\r", 19);
  v1::LogLine line;
  line.set_line(raw);
  line.set_source("stdout");
  ASSERT_TRUE(store_->AddLogs(trial, {line}).ok());
  EXPECT_EQ((*store_->GetLogs(trial, 0, 10))[0].line(), raw);
  ASSERT_TRUE(store_->AppendSearcherEvent(exp, raw).ok());
  EXPECT_EQ((*store_->ListSearcherEvents(exp))[0], raw);
}

// A text key the server would refuse is refused before it is sent, so a
// transaction that goes on after the error still commits its other
// writes, as on SQLite (a refused statement would abort a PostgreSQL
// transaction).
TEST_F(PostgresSharedTest, BadTextKeyIsRefusedWithoutSpoilingTheTransaction) {
  absl::Status s = store_->RunInTransaction([&]() -> absl::Status {
    v1::Agent bad;
    bad.set_id(std::string("w\0x", 3));
    absl::Status refused = store_->UpsertAgent(bad);
    EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument) << refused;
    EXPECT_THAT(refused.message(), HasSubstr("byte 1"));
    bad.set_id("\xc3\x28");
    EXPECT_EQ(store_->UpsertAgent(bad).code(),
              absl::StatusCode::kInvalidArgument);
    v1::Agent good;
    good.set_id("w\xc3\xa9");  // UTF-8 is fine
    return store_->UpsertAgent(good);
  });
  ASSERT_TRUE(s.ok()) << s;
  auto agents = store_->ListAgents();
  ASSERT_EQ(agents->size(), 1u);
  EXPECT_EQ((*agents)[0].id(), "w\xc3\xa9");
}

// Missing parents inside a transaction do not abort it either.
TEST_F(PostgresSharedTest, MissingParentInATransactionLeavesItUsable) {
  ExperimentRecord e;
  absl::Status s = store_->RunInTransaction([&]() -> absl::Status {
    TrialRecord orphan;
    orphan.trial.set_experiment_id(77);
    EXPECT_EQ(store_->AddTrial(orphan).status().code(),
              absl::StatusCode::kNotFound);
    v1::MetricReport r;
    r.set_trial_id(77);
    r.set_group(v1::METRIC_GROUP_TRAINING);
    EXPECT_EQ(store_->AddMetricReport(r).status().code(),
              absl::StatusCode::kNotFound);
    EXPECT_EQ(store_->AppendSearcherEvent(77, "x").code(),
              absl::StatusCode::kNotFound);
    return store_->AddExperiment(e).status();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(store_->ListExperiments()->size(), 1u);
}

TEST(PostgresOpenTest, BadConnectionStringsAreClearErrors) {
  auto empty = PostgresStore::Open("");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  auto bad = PostgresStore::Open("postgresql://det@/x?nosuchoption=1");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument)
      << bad.status();
  EXPECT_THAT(bad.status().message(), HasSubstr("nosuchoption"));
  // Nobody listens there: transient, and says where.
  auto absent = PostgresStore::Open(
      "postgresql://det@/postgres?host=/nonexistent-det-dir&connect_timeout=2");
  EXPECT_EQ(absent.status().code(), absl::StatusCode::kUnavailable)
      << absent.status();
  EXPECT_THAT(absent.status().message(), HasSubstr("/nonexistent-det-dir"));
}

}  // namespace
}  // namespace det::store
