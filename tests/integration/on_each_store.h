// Integration tests that run once per master store: OnEachStore<Fixture>
// is Fixture with the store as its parameter. Which stores a binary runs
// is StoresUnderTest(), defined by the binary's stores_*.cc: "sqlite" for
// the plain integration binaries, "postgres" for postgres_cluster_test,
// which has the server of the CTest fixture 'postgres'.
#ifndef DET_TESTS_INTEGRATION_ON_EACH_STORE_H_
#define DET_TESTS_INTEGRATION_ON_EACH_STORE_H_

#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/postgres_schema.h"

namespace det::testing {

std::vector<std::string> StoresUnderTest();

template <typename Fixture>
class OnEachStore : public Fixture,
                    public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    Fixture::SetUp();
    if (this->GetParam() == "postgres") {
      pg_ = std::make_unique<det::test::PostgresSchema>();
      if (!pg_->error().empty()) GTEST_SKIP() << pg_->error();
      this->cluster_.SetDb(pg_->url());
    }
  }
  void TearDown() override {
    Fixture::TearDown();
    this->cluster_.StopMaster(SIGKILL);  // before its schema is dropped
  }

  // The PostgreSQL schema of this test (null on SQLite): tests read what
  // the store holds through it.
  std::unique_ptr<det::test::PostgresSchema> pg_;
};

// The test name suffix: the store's name.
inline std::string StoreName(const ::testing::TestParamInfo<std::string>& i) {
  return i.param;
}

}  // namespace det::testing

#endif  // DET_TESTS_INTEGRATION_ON_EACH_STORE_H_
