// A master reloads every experiment it once accepted, even when a check
// added since would refuse its config as a new experiment: here a value the
// built-in trainer refuses (dropout 1.5), which creation now rejects.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "master/core/master.h"
#include "master/store/sqlite_store.h"
#include "tests/testing/temp_dir.h"

namespace det::master {
namespace {

constexpr char kConfig[] = R"(searcher:
  name: single
  metric: validation_accuracy
  smaller_is_better: false
  max_length: {batches: 10}
hyperparameters:
  dropout: 1.5
)";

TEST(StoredConfigTest, ExperimentStoredBeforeANewCheckStillLoads) {
  ASSERT_FALSE(ParseExperimentConfig(kConfig).ok())
      << "the premise: a new experiment with this config is refused";

  det::test::TempDir dir{"det-stored-config"};
  int64_t id = 0;
  {
    auto store = store::SqliteStore::Open(dir.File("master.db"));
    ASSERT_TRUE(store.ok()) << store.status();
    store::ExperimentRecord rec;
    rec.experiment.set_config_yaml(kConfig);
    rec.experiment.set_state(v1::STATE_PAUSED);
    auto added = (*store)->AddExperiment(rec);
    ASSERT_TRUE(added.ok()) << added.status();
    id = *added;
  }
  auto store = store::SqliteStore::Open(dir.File("master.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  MasterOptions opts;
  opts.checkpoint_root = dir.File("checkpoints");
  auto m = Master::Create(std::move(*store), opts);
  ASSERT_TRUE(m.ok()) << m.status();
  auto x = (*m)->GetExperiment(id);
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->state(), v1::STATE_PAUSED);
}

}  // namespace
}  // namespace det::master
