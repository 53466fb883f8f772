// The searcher journal: events kept in order per experiment until the next
// snapshot, which empties it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/store/store_backend.h"

namespace det::store {
namespace {

class SearcherJournalTest : public ::testing::TestWithParam<BackendParam> {
 protected:
  void SetUp() override {
    backend_ = GetParam().make();
    if (std::string why = backend_->Unavailable(); !why.empty()) {
      GTEST_SKIP() << why;
    }
    backend_->SetUp();
    ready_ = true;
  }
  void TearDown() override {
    if (ready_) backend_->TearDown();
  }
  std::unique_ptr<StoreBackend> backend_;
  bool ready_ = false;
};

TEST_P(SearcherJournalTest, KeepsEventsInOrderUntilTheNextSnapshot) {
  auto store = backend_->Open();
  ASSERT_TRUE(store.ok()) << store.status();
  ExperimentRecord r;
  r.experiment.set_name("a");
  auto a = (*store)->AddExperiment(r);
  auto b = (*store)->AddExperiment(r);
  ASSERT_TRUE(a.ok() && b.ok());
  for (const char* ev : {"one", "two", "three"}) {
    ASSERT_TRUE((*store)->AppendSearcherEvent(*a, ev).ok());
  }
  ASSERT_TRUE((*store)->AppendSearcherEvent(*b, "other").ok());
  auto events = (*store)->ListSearcherEvents(*a);
  ASSERT_TRUE(events.ok());
  EXPECT_THAT(*events, ::testing::ElementsAre("one", "two", "three"));

  ASSERT_TRUE((*store)->SaveSearcherSnapshot(*a, "snap").ok());
  EXPECT_TRUE((*store)->ListSearcherEvents(*a)->empty());
  EXPECT_THAT(*(*store)->ListSearcherEvents(*b),
              ::testing::ElementsAre("other"));
  ASSERT_TRUE((*store)->AppendSearcherEvent(*a, "four").ok());
  EXPECT_THAT(*(*store)->ListSearcherEvents(*a),
              ::testing::ElementsAre("four"));
  EXPECT_EQ((*store)->GetExperiment(*a)->searcher_snapshot, "snap");
}

TEST_P(SearcherJournalTest, RolledBackWithItsTransaction) {
  auto store = backend_->Open();
  ASSERT_TRUE(store.ok());
  ExperimentRecord r;
  auto a = (*store)->AddExperiment(r);
  ASSERT_TRUE(a.ok());
  absl::Status st = (*store)->RunInTransaction([&]() -> absl::Status {
    EXPECT_TRUE((*store)->AppendSearcherEvent(*a, "lost").ok());
    return absl::AbortedError("crash");
  });
  EXPECT_FALSE(st.ok());
  EXPECT_TRUE((*store)->ListSearcherEvents(*a)->empty());
}

INSTANTIATE_TEST_SUITE_P(Store, SearcherJournalTest,
                         ::testing::ValuesIn(TestBackends(false)), BackendName);

}  // namespace
}  // namespace det::store
