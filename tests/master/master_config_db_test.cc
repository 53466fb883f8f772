// master.yaml's `db`: a SQLite file or a PostgreSQL URL, under either name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "master/master_config.h"

namespace det::master {
namespace {

TEST(MasterConfigDbTest, DbTakesAPostgresUrl) {
  auto c = ParseMasterConfig("db: postgresql://det@db.example:5432/det\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->db_path, "postgresql://det@db.example:5432/det");
}

TEST(MasterConfigDbTest, DbPathStillWorks) {
  auto c = ParseMasterConfig("db_path: /var/lib/det/master.db\n");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->db_path, "/var/lib/det/master.db");
}

TEST(MasterConfigDbTest, BothNamesAtOnceIsAnErrorWithItsLine) {
  auto c = ParseMasterConfig("db_path: a.db\ndb: b.db\n");
  ASSERT_FALSE(c.ok());
  EXPECT_THAT(c.status().message(), ::testing::HasSubstr("not both"));
  EXPECT_THAT(c.status().message(), ::testing::HasSubstr("line 2"));
}

}  // namespace
}  // namespace det::master
