// An experiment's first trials (as many as the searcher may run at once)
// are created in chunks, each committed and scheduled before the next, and
// the placements of one scheduling pass are saved in one transaction. These
// tests would fail if the burst went back to one transaction before any
// StartTrial, if a pass saved its placements one commit each, or if a
// master stopped between two chunks lost or duplicated trials on restart.
#include <algorithm>
#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/version.h"
#include "gtest/gtest.h"
#include "master/core/master.h"
#include "master/store/sqlite_store.h"
#include "tests/master/forwarding_store.h"
#include "tests/master/worker_hello.h"
#include "tests/testing/temp_dir.h"

namespace det::master {
namespace {

using ::det::testing::MakeHello;

constexpr int kTrials = 100;

// {SEARCHER} is filled in per test; both create kTrials trials at once.
constexpr char kYaml[] = R"(name: burst
entrypoint: /bin/true
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0}
  y: {type: int, minval: 1, maxval: 1000000}
reproducibility: {experiment_seed: 7}
searcher:
{SEARCHER}
max_restarts: 0
)";

constexpr char kRandom[] = R"(  name: random
  metric: validation_accuracy
  smaller_is_better: false
  max_trials: 100
  max_concurrent_trials: 100
  max_length: {batches: 1000})";

constexpr char kAsha[] = R"(  name: adaptive_asha
  mode: standard
  divisor: 4
  max_rungs: 3
  metric: validation_accuracy
  smaller_is_better: false
  max_trials: 400
  max_concurrent_trials: 100
  max_length: {batches: 16})";

std::string Yaml(const char* searcher) {
  return absl::StrReplaceAll(kYaml, {{"{SEARCHER}", searcher}});
}

// A store that passes everything to a SQLite store, and can fail one
// AddTrial (the n-th, from 1) or call a hook before each.
class TestStore : public testing::ForwardingStore {
 public:
  using ForwardingStore::ForwardingStore;
  int fail_add_trial_at = 0;
  std::function<void(int)> before_add_trial;  // with the call's number
  int add_trials = 0;
  int list_checkpoints = 0;

  absl::StatusOr<int64_t> AddTrial(const store::TrialRecord& t) override {
    ++add_trials;
    if (before_add_trial) before_add_trial(add_trials);
    if (add_trials == fail_add_trial_at) {
      return absl::UnavailableError("injected: disk gone");
    }
    return ForwardingStore::AddTrial(t);
  }
  absl::StatusOr<std::vector<v1::Checkpoint>> ListCheckpoints(
      int64_t id) override {
    ++list_checkpoints;
    return ForwardingStore::ListCheckpoints(id);
  }
};

// Every trial's hyperparameters, as text, sorted (one entry per trial).
std::vector<std::string> Hparams(const std::vector<v1::Trial>& v) {
  std::vector<std::string> out;
  for (const v1::Trial& t : v) {
    std::map<std::string, std::string> hp;
    for (const auto& [k, val] : t.hparams().fields()) {
      hp[k] = val.ShortDebugString();
    }
    std::string s;
    for (const auto& [k, val] : hp) absl::StrAppend(&s, k, "=", val, ";");
    out.push_back(s);
  }
  std::sort(out.begin(), out.end());
  return out;
}

class CreateBurstTest : public ::testing::Test {
 protected:
  void TearDown() override {
    master_.reset();  // before dir_ goes
  }

  // Opens a master on dir_/name; store_ points at its TestStore.
  void Open(const std::string& name) {
    master_.reset();
    auto sq = store::SqliteStore::Open(dir_.File(name));
    ASSERT_TRUE(sq.ok()) << sq.status();
    (*sq)->SetWriteObserver([this](absl::Duration) { writes_++; });
    auto ts = std::make_unique<TestStore>(std::move(*sq));
    store_ = ts.get();
    MasterOptions opts;
    opts.checkpoint_root = dir_.File("checkpoints");
    opts.store_probe_initial = absl::ZeroDuration();  // Tick probes at once
    auto m = Master::Create(std::move(ts), opts);
    ASSERT_TRUE(m.ok()) << m.status();
    master_ = std::move(*m);
  }

  std::vector<v1::Trial> Trials(int64_t experiment_id) {
    auto t = master_->ListTrials(experiment_id);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? *t : std::vector<v1::Trial>();
  }

  // The StartTrials on the outbox now, by trial id (counting repeats).
  static std::map<int64_t, int> Drain(WorkerOutbox& out) {
    std::map<int64_t, int> starts;
    while (auto m = out.Pop(absl::ZeroDuration())) {
      if (m->has_start_trial()) starts[m->start_trial().spec().trial_id()]++;
    }
    return starts;
  }

  det::test::TempDir dir_{"det-create-burst"};  // removed last
  std::atomic<int> writes_{0};
  TestStore* store_ = nullptr;
  std::unique_ptr<Master> master_;
};

TEST_F(CreateBurstTest, FirstTrialsStartWhileTheRestAreCreated) {
  Open("master.db");
  auto out = std::make_shared<WorkerOutbox>();
  ASSERT_TRUE(
      master_->WorkerConnected(MakeHello("w0", kTrials), "ipv4:1", out).ok());
  std::map<int64_t, int> early;
  store_->before_add_trial = [&](int n) {
    if (n == kTrials) early = Drain(*out);
  };
  std::vector<std::string> warnings;
  auto x = master_->CreateExperiment(Yaml(kRandom), "", true, false, &warnings);
  ASSERT_TRUE(x.ok()) << x.status();
  // StartTrials were on the worker's stream before the last trial of the
  // burst was created.
  EXPECT_GE(early.size(), static_cast<size_t>(kTrials / 2));
  std::map<int64_t, int> starts = Drain(*out);
  for (const auto& [id, n] : early) starts[id] += n;
  EXPECT_EQ(starts.size(), static_cast<size_t>(kTrials));
  for (const auto& [id, n] : starts) EXPECT_EQ(n, 1) << "trial " << id;
  // Nothing has run before: no checkpoint to look up.
  EXPECT_EQ(store_->list_checkpoints, 0);
  // The snapshot the chunks left out is taken once all are created: the
  // journal of the burst's events is cleared.
  auto journal = store_->ListSearcherEvents(x->id());
  ASSERT_TRUE(journal.ok()) << journal.status();
  EXPECT_TRUE(journal->empty()) << journal->size() << " events left";
  std::vector<v1::Trial> trials = Trials(x->id());
  ASSERT_EQ(trials.size(), static_cast<size_t>(kTrials));
  for (const v1::Trial& t : trials) {
    EXPECT_EQ(t.state(), v1::STATE_ACTIVE) << t.id();
  }
}

TEST_F(CreateBurstTest, OneSchedulingPassSavesItsPlacementsInOneTransaction) {
  Open("master.db");
  std::vector<std::string> warnings;
  auto x = master_->CreateExperiment(Yaml(kRandom), "", true, false, &warnings);
  ASSERT_TRUE(x.ok()) << x.status();
  ASSERT_EQ(Trials(x->id()).size(), static_cast<size_t>(kTrials));
  // One worker with a slot for every trial: one pass places them all.
  auto out = std::make_shared<WorkerOutbox>();
  const int before = writes_.load();
  ASSERT_TRUE(
      master_->WorkerConnected(MakeHello("w0", kTrials), "ipv4:1", out).ok());
  // The worker's registration, and the placements.
  EXPECT_LE(writes_.load() - before, 2) << "transactions and lone writes";
  EXPECT_EQ(Drain(*out).size(), static_cast<size_t>(kTrials));
  // Saved: a restarted master finds every trial placed on w0.
  Open("master.db");
  std::vector<v1::Trial> trials = Trials(x->id());
  ASSERT_EQ(trials.size(), static_cast<size_t>(kTrials));
  for (const v1::Trial& t : trials) {
    EXPECT_EQ(t.state(), v1::STATE_ACTIVE) << t.id();
    EXPECT_EQ(t.agent_id(), "w0") << t.id();
  }
}

// A master that stops between two chunks of the burst (here: the store
// fails the 51st trial insert, rolling back the second chunk) leaves the
// searcher's journal holding the request for the rest; the restarted
// master creates exactly those, with the hyperparameters an uninterrupted
// master gives them, and no trial twice.
class CreateBurstRestartTest : public CreateBurstTest,
                               public ::testing::WithParamInterface<bool> {};

TEST_P(CreateBurstRestartTest, RestartMidBurstCreatesExactlyTheRest) {
  const std::string yaml = Yaml(GetParam() ? kAsha : kRandom);
  std::vector<std::string> warnings;
  // The reference: the same experiment, uninterrupted.
  Open("reference.db");
  auto ref = master_->CreateExperiment(yaml, "", true, false, &warnings);
  ASSERT_TRUE(ref.ok()) << ref.status();
  std::vector<std::string> want = Hparams(Trials(ref->id()));
  ASSERT_EQ(want.size(), static_cast<size_t>(kTrials));
  ASSERT_EQ(std::set<std::string>(want.begin(), want.end()).size(), want.size())
      << "distinct hyperparameters, so a duplicate would show";

  Open("master.db");
  store_->fail_add_trial_at = 51;
  auto x = master_->CreateExperiment(yaml, "", true, false, &warnings);
  EXPECT_FALSE(x.ok()) << "the injected failure is reported";
  master_.reset();
  // What the store holds: the chunks committed before the failure.
  int64_t id = 0;
  size_t stored = 0;
  {
    auto sq = store::SqliteStore::Open(dir_.File("master.db"));
    ASSERT_TRUE(sq.ok()) << sq.status();
    auto listed = (*sq)->ListExperiments();
    ASSERT_TRUE(listed.ok()) << listed.status();
    ASSERT_EQ(listed->size(), 1u);
    id = listed->front().id();
    auto trials = (*sq)->ListTrials(id);
    ASSERT_TRUE(trials.ok()) << trials.status();
    stored = trials->size();
  }
  EXPECT_GT(stored, 0u) << "the chunks before the failure are stored";
  EXPECT_LT(stored, 51u) << "the failed chunk is not";
  Open("master.db");
  EXPECT_EQ(store_->add_trials, kTrials - static_cast<int>(stored))
      << "the restarted master creates the trials not yet stored";
  std::vector<std::string> got = Hparams(Trials(id));
  ASSERT_EQ(got.size(), want.size());
  EXPECT_EQ(got, want);
  // And once more: nothing is created again.
  Open("master.db");
  EXPECT_EQ(store_->add_trials, 0);
  EXPECT_EQ(Hparams(Trials(id)), want);
}

// The same failure without a restart: the master reloads from the store,
// refuses writes until a probe succeeds, then creates exactly the trials
// the failed chunk had not stored.
TEST_P(CreateBurstRestartTest, FailedChunkIsCreatedAfterTheOutageInProcess) {
  const std::string yaml = Yaml(GetParam() ? kAsha : kRandom);
  std::vector<std::string> warnings;
  Open("reference.db");
  auto ref = master_->CreateExperiment(yaml, "", true, false, &warnings);
  ASSERT_TRUE(ref.ok()) << ref.status();
  std::vector<std::string> want = Hparams(Trials(ref->id()));

  Open("master.db");
  store_->fail_add_trial_at = 51;
  auto x = master_->CreateExperiment(yaml, "", true, false, &warnings);
  ASSERT_FALSE(x.ok());
  EXPECT_NE(x.status().message().find("once the store takes writes again"),
            std::string::npos)
      << x.status();
  EXPECT_FALSE(master_->GetStoreHealth().available);
  auto during = master_->CreateExperiment(yaml, "", true, false, &warnings);
  ASSERT_FALSE(during.ok()) << "refused during the outage";
  EXPECT_EQ(during.status().code(), absl::StatusCode::kUnavailable);
  auto listed = master_->ListExperiments();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u) << "nothing half-made by the refused create";
  const int64_t id = listed->front().id();
  EXPECT_LT(Trials(id).size(), 51u) << "memory holds only what was stored";
  master_->Tick();  // the probe succeeds; the pending creations follow
  EXPECT_TRUE(master_->GetStoreHealth().available);
  EXPECT_EQ(Hparams(Trials(id)), want);
}

INSTANTIATE_TEST_SUITE_P(Searchers, CreateBurstRestartTest,
                         ::testing::Values(false, true), [](const auto& info) {
                           return info.param ? "Asha" : "Random";
                         });

}  // namespace
}  // namespace det::master
