// Experiment administration in the master: the label set rule, patches
// checked field by field, the config as it stands, and (in process, on a
// SQLite file) that a restarted master keeps every change, refuses to
// archive a live experiment, and kills one queued trial while the
// experiment goes on.
#include "master/core/experiment_admin.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "master/core/master.h"
#include "master/store/sqlite_store.h"
#include "tests/testing/temp_dir.h"

namespace det::master {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kConfig[] = R"(# the user's comment
name: base
entrypoint: python3 train.py
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0, count: 3}
searcher:
  name: grid
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 10}
resources:
  slots_per_trial: 2
)";

TEST(ApplyLabelChangesTest, AddsOnceKeepsOrderRemovesAbsentWithoutError) {
  auto out = ApplyLabelChanges({"a", "b"}, {"c", "a"}, {});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, ElementsAre("a", "b", "c"));
  out = ApplyLabelChanges({"a", "b", "c"}, {}, {"b", "zzz"});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_THAT(*out, ElementsAre("a", "c"));
  // Duplicates already stored collapse to one.
  out = ApplyLabelChanges({"a", "a"}, {}, {});
  ASSERT_TRUE(out.ok());
  EXPECT_THAT(*out, ElementsAre("a"));
  out = ApplyLabelChanges({"a"}, {" "}, {});
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(out.status().message(), HasSubstr("labels"));
}

TEST(ApplyPatchTest, EachBadFieldIsNamedAndChangesNothing) {
  auto config = ParseExperimentConfig(kConfig);
  ASSERT_TRUE(config.ok()) << config.status();
  v1::Experiment x;
  x.set_name("base");
  x.set_priority(42);
  auto refused = [&](void (*fill)(v1::PatchExperimentRequest*),
                     const std::string& field) {
    v1::PatchExperimentRequest p;
    fill(&p);
    v1::Experiment copy = x;
    absl::Status s = ApplyPatch(p, *config, &copy);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << field;
    EXPECT_THAT(s.message(), HasSubstr(field));
    EXPECT_EQ(copy.SerializeAsString(), x.SerializeAsString()) << field;
  };
  refused([](v1::PatchExperimentRequest* p) { p->set_name("  "); }, "name");
  refused([](v1::PatchExperimentRequest* p) { p->set_priority(0); },
          "resources.priority");
  refused([](v1::PatchExperimentRequest* p) { p->set_priority(100); },
          "resources.priority");
  refused([](v1::PatchExperimentRequest* p) { p->set_max_slots(-1); },
          "resources.max_slots");
  // slots_per_trial is 2: one slot could never run a trial.
  refused([](v1::PatchExperimentRequest* p) { p->set_max_slots(1); },
          "resources.max_slots");
  refused(
      [](v1::PatchExperimentRequest* p) {
        p->set_priority(10);
        p->add_add_labels("");
      },
      "labels");

  v1::PatchExperimentRequest ok;
  ok.set_priority(7);
  ok.set_max_slots(0);
  ok.set_description("d");
  ok.add_add_labels("l1");
  ASSERT_TRUE(ApplyPatch(ok, *config, &x).ok());
  EXPECT_EQ(x.priority(), 7);
  EXPECT_TRUE(x.has_max_slots());
  EXPECT_EQ(x.max_slots(), 0);
  EXPECT_EQ(x.description(), "d");
  EXPECT_EQ(x.name(), "base");
  EXPECT_THAT(x.labels(), ElementsAre("l1"));
}

TEST(EffectiveConfigYamlTest, UnchangedKeepsTheTextChangedSetsTheFields) {
  auto config = ParseExperimentConfig(kConfig);
  ASSERT_TRUE(config.ok());
  v1::Experiment x;
  x.set_config_yaml(kConfig);
  x.set_name("base");
  x.set_priority(42);
  auto same = EffectiveConfigYaml(x);
  ASSERT_TRUE(same.ok()) << same.status();
  EXPECT_EQ(*same, kConfig);  // comments and all

  x.set_name("renamed: with a colon");
  x.set_priority(5);
  x.set_max_slots(4);
  x.add_labels("l1");
  auto changed = EffectiveConfigYaml(x);
  ASSERT_TRUE(changed.ok()) << changed.status();
  auto reparsed = ParseExperimentConfig(*changed);
  ASSERT_TRUE(reparsed.ok()) << reparsed.status() << "\n" << *changed;
  EXPECT_EQ(reparsed->name, "renamed: with a colon");
  EXPECT_EQ(reparsed->resources.priority, 5);
  EXPECT_EQ(reparsed->resources.max_slots, 4);
  EXPECT_EQ(reparsed->resources.slots_per_trial, 2);
  EXPECT_THAT(reparsed->labels, ElementsAre("l1"));
  EXPECT_EQ(reparsed->entrypoint, "python3 train.py");

  // max_slots 0: the limit goes.
  x.set_max_slots(0);
  auto unlimited = EffectiveConfigYaml(x);
  ASSERT_TRUE(unlimited.ok());
  reparsed = ParseExperimentConfig(*unlimited);
  ASSERT_TRUE(reparsed.ok()) << reparsed.status();
  EXPECT_FALSE(reparsed->resources.max_slots.has_value());
}

TEST(ApplyRecordToConfigTest, RecordDecidesPriorityAndPatchedMaxSlots) {
  auto config = ParseExperimentConfig(
      "searcher: {name: single, metric: m, max_length: {batches: 1}}\n"
      "resources: {max_slots: 3, priority: 50}\n");
  ASSERT_TRUE(config.ok()) << config.status();
  v1::Experiment x;
  x.set_priority(50);
  ExperimentConfig c = *config;
  ApplyRecordToConfig(x, &c);
  EXPECT_EQ(c.resources.max_slots, 3);  // never patched: the config's
  x.set_priority(9);
  x.set_max_slots(0);
  ApplyRecordToConfig(x, &c);
  EXPECT_EQ(c.resources.priority, 9);
  EXPECT_FALSE(c.resources.max_slots.has_value());
}

// ---- in process, on a SQLite file ----

constexpr char kGrid[] = R"(name: grid
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0, count: 3}
searcher:
  name: grid
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 10}
)";

class MasterAdminTest : public ::testing::Test {
 protected:
  std::unique_ptr<Master> Start() {
    auto store = store::SqliteStore::Open(dir_.File("master.db"));
    EXPECT_TRUE(store.ok()) << store.status();
    MasterOptions opts;
    opts.checkpoint_root = dir_.File("checkpoints");
    opts.tick_interval = absl::ZeroDuration();
    auto m = Master::Create(std::move(*store), opts);
    EXPECT_TRUE(m.ok()) << m.status();
    return std::move(*m);
  }
  det::test::TempDir dir_{"det-experiment-admin"};
};

TEST_F(MasterAdminTest, ChangesSurviveARestart) {
  int64_t id = 0;
  {
    auto m = Start();
    auto x = m->CreateExperiment(kGrid, "", /*activate=*/true, false, nullptr);
    ASSERT_TRUE(x.ok()) << x.status();
    id = x->id();
    v1::PatchExperimentRequest p;
    p.set_experiment_id(id);
    p.set_priority(11);
    p.set_max_slots(2);
    p.set_name("renamed");
    p.set_description("about it");
    p.add_add_labels("keep");
    p.add_add_labels("drop");
    ASSERT_TRUE(m->PatchExperiment(p).ok());
    v1::PatchExperimentRequest remove;
    remove.set_experiment_id(id);
    remove.add_remove_labels("drop");
    auto after = m->PatchExperiment(remove);
    ASSERT_TRUE(after.ok()) << after.status();
    EXPECT_THAT(after->labels(), ElementsAre("keep"));
    // Live: not archivable.
    auto archived = m->SetExperimentArchived(id, true);
    EXPECT_EQ(archived.status().code(), absl::StatusCode::kFailedPrecondition);
  }
  auto m = Start();
  auto x = m->GetExperiment(id);
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->priority(), 11);
  EXPECT_EQ(x->max_slots(), 2);
  EXPECT_EQ(x->name(), "renamed");
  EXPECT_EQ(x->description(), "about it");
  EXPECT_THAT(x->labels(), ElementsAre("keep"));
  auto yaml = m->GetExperimentConfig(id);
  ASSERT_TRUE(yaml.ok()) << yaml.status();
  auto config = ParseExperimentConfig(*yaml);
  ASSERT_TRUE(config.ok()) << config.status() << "\n" << *yaml;
  EXPECT_EQ(config->resources.priority, 11);
  EXPECT_EQ(config->resources.max_slots, 2);
  EXPECT_EQ(config->name, "renamed");

  // Ended, it may be archived (once) and unarchived; its resources no
  // longer change.
  ASSERT_TRUE(m->KillExperiment(id).ok());
  auto ended = m->GetExperiment(id);
  ASSERT_TRUE(ended.ok());
  ASSERT_EQ(ended->state(), v1::STATE_CANCELED);
  v1::PatchExperimentRequest late;
  late.set_experiment_id(id);
  late.set_priority(3);
  EXPECT_EQ(m->PatchExperiment(late).status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(m->SetExperimentArchived(id, true).ok());
  EXPECT_EQ(m->SetExperimentArchived(id, true).status().code(),
            absl::StatusCode::kFailedPrecondition);
  m.reset();
  m = Start();
  auto listed = m->ListExperiments();
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_TRUE(listed->front().archived());
  ASSERT_TRUE(m->SetExperimentArchived(id, false).ok());
  EXPECT_EQ(m->SetExperimentArchived(id, false).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(m->SetExperimentArchived(999, true).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(MasterAdminTest, KillingAQueuedTrialCancelsItAndTheSearchGoesOn) {
  auto m = Start();
  auto x = m->CreateExperiment(kGrid, "", /*activate=*/true, false, nullptr);
  ASSERT_TRUE(x.ok()) << x.status();
  auto trials = m->ListTrials(x->id());
  ASSERT_TRUE(trials.ok());
  ASSERT_EQ(trials->size(), 3u);
  const int64_t victim = trials->front().id();
  auto killed = m->KillTrial(victim);
  ASSERT_TRUE(killed.ok()) << killed.status();
  EXPECT_EQ(killed->state(), v1::STATE_CANCELED);
  EXPECT_EQ(killed->exit_reason(), v1::EXIT_REASON_KILLED);
  EXPECT_EQ(m->KillTrial(victim).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(m->KillTrial(12345).status().code(), absl::StatusCode::kNotFound);
  auto after = m->GetExperiment(x->id());
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->state(), v1::STATE_ACTIVE);
  EXPECT_EQ(after->trials_canceled(), 1);
  EXPECT_EQ(after->trials_queued(), 2);

  // A fork takes the config it is given and notes its parent.
  auto fork = m->ForkExperiment(x->id(), kGrid, /*activate=*/false, nullptr);
  ASSERT_TRUE(fork.ok()) << fork.status();
  EXPECT_EQ(fork->parent_id(), x->id());
  EXPECT_EQ(m->ForkExperiment(777, kGrid, false, nullptr).status().code(),
            absl::StatusCode::kNotFound);
}

// Random search one trial at a time: the killed trial's place goes to the
// next one (the search goes on, as Determined's).
TEST_F(MasterAdminTest, AKilledTrialMakesRoomForTheNext) {
  auto m = Start();
  auto x = m->CreateExperiment(R"(name: random
hyperparameters:
  x: {type: double, minval: 0.0, maxval: 1.0}
searcher:
  name: random
  metric: validation_accuracy
  max_trials: 2
  max_concurrent_trials: 1
  max_length: {batches: 10}
)",
                               "", /*activate=*/true, false, nullptr);
  ASSERT_TRUE(x.ok()) << x.status();
  auto trials = m->ListTrials(x->id());
  ASSERT_TRUE(trials.ok());
  ASSERT_EQ(trials->size(), 1u);
  ASSERT_TRUE(m->KillTrial(trials->front().id()).ok());
  trials = m->ListTrials(x->id());
  ASSERT_TRUE(trials.ok());
  ASSERT_EQ(trials->size(), 2u);
  EXPECT_EQ((*trials)[0].state(), v1::STATE_CANCELED);
  EXPECT_EQ((*trials)[1].state(), v1::STATE_QUEUED);
  // Killing the last one too ends the search: CANCELED, no failure.
  ASSERT_TRUE(m->KillTrial((*trials)[1].id()).ok());
  auto ended = m->GetExperiment(x->id());
  ASSERT_TRUE(ended.ok());
  EXPECT_EQ(ended->state(), v1::STATE_CANCELED);
  EXPECT_EQ(ended->trials_canceled(), 2);
}

}  // namespace
}  // namespace det::master
