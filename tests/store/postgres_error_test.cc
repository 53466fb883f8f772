// SQLSTATEs -> Abseil codes (the same meaning as the SQLite store's), and
// the helpers that pick a store from master.yaml's `db`. No server needed.
#include "master/store/postgres_error.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "master/store/open_store.h"

namespace det::store {
namespace {

using C = absl::StatusCode;

TEST(PostgresErrorTest, ABadValueIsThePermanentKind) {
  EXPECT_EQ(PostgresErrorCode("23503"), C::kNotFound);         // foreign key
  EXPECT_EQ(PostgresErrorCode("23505"), C::kAlreadyExists);    // unique
  EXPECT_EQ(PostgresErrorCode("23502"), C::kInvalidArgument);  // not null
  EXPECT_EQ(PostgresErrorCode("23514"), C::kInvalidArgument);  // check
  EXPECT_EQ(PostgresErrorCode("22021"), C::kInvalidArgument);  // bad UTF-8
  EXPECT_EQ(PostgresErrorCode("22001"), C::kInvalidArgument);  // too long
  EXPECT_EQ(PostgresErrorCode("54000"), C::kInvalidArgument);  // over a limit
}

TEST(PostgresErrorTest, ADatabaseProblemIsTheTransientKind) {
  EXPECT_EQ(PostgresErrorCode(""), C::kUnavailable);       // connection broke
  EXPECT_EQ(PostgresErrorCode("08006"), C::kUnavailable);  // conn. failure
  EXPECT_EQ(PostgresErrorCode("08001"), C::kUnavailable);  // cannot connect
  EXPECT_EQ(PostgresErrorCode("57P01"), C::kUnavailable);  // admin shutdown
  EXPECT_EQ(PostgresErrorCode("57P02"), C::kUnavailable);  // crash shutdown
  EXPECT_EQ(PostgresErrorCode("57P03"), C::kUnavailable);  // starting up
  EXPECT_EQ(PostgresErrorCode("57014"), C::kUnavailable);  // cancelled
  EXPECT_EQ(PostgresErrorCode("40001"), C::kUnavailable);  // serialization
  EXPECT_EQ(PostgresErrorCode("40P01"), C::kUnavailable);  // deadlock
  EXPECT_EQ(PostgresErrorCode("55P03"), C::kUnavailable);  // lock timeout
  EXPECT_EQ(PostgresErrorCode("53300"), C::kUnavailable);  // too many conns
  EXPECT_EQ(PostgresErrorCode("58030"), C::kUnavailable);  // I/O error
  EXPECT_EQ(PostgresErrorCode("53100"), C::kResourceExhausted);  // disk full
  EXPECT_EQ(PostgresErrorCode("53200"), C::kResourceExhausted);  // memory
}

TEST(PostgresErrorTest, OtherKinds) {
  EXPECT_EQ(PostgresErrorCode("XX001"), C::kDataLoss);
  EXPECT_EQ(PostgresErrorCode("42501"), C::kPermissionDenied);
  EXPECT_EQ(PostgresErrorCode("28P01"), C::kPermissionDenied);  // password
  EXPECT_EQ(PostgresErrorCode("25006"), C::kPermissionDenied);  // read-only
  EXPECT_EQ(PostgresErrorCode("3D000"), C::kFailedPrecondition);
  EXPECT_EQ(PostgresErrorCode("42601"), C::kInternal);  // syntax: our bug
  EXPECT_EQ(PostgresErrorCode("42P01"), C::kInternal);  // no such table
}

TEST(PostgresErrorTest, MessageNamesTheOperationAndTheState) {
  absl::Status s = PostgresError("57P01", "adding a metric report of trial 3",
                                 "FATAL:  terminating connection\n");
  EXPECT_EQ(s.code(), C::kUnavailable);
  EXPECT_EQ(s.message(),
            "adding a metric report of trial 3: FATAL:  terminating "
            "connection [SQLSTATE 57P01]");
  absl::Status fk = PostgresError("23503", "adding a trial", "violates ...");
  EXPECT_THAT(fk.message(), ::testing::HasSubstr("does not exist"));
}

TEST(OpenStoreTest, PostgresUrlsAreRecognised) {
  EXPECT_TRUE(IsPostgresUrl("postgresql://det@db/det"));
  EXPECT_TRUE(IsPostgresUrl("postgres://db/det"));
  EXPECT_FALSE(IsPostgresUrl("/var/lib/det/master.db"));
  EXPECT_FALSE(IsPostgresUrl("postgresql.db"));
}

TEST(OpenStoreTest, PasswordsAreRedacted) {
  EXPECT_EQ(RedactDb("postgresql://det:s3cret@db:5432/det"),
            "postgresql://det:***@db:5432/det");
  EXPECT_EQ(RedactDb("postgresql://db/det?user=det&password=s3cret&x=1"),
            "postgresql://db/det?user=det&password=***&x=1");
  EXPECT_EQ(RedactDb("postgresql://det@db/det"), "postgresql://det@db/det");
  EXPECT_EQ(RedactDb("/tmp/master.db"), "/tmp/master.db");
}

TEST(OpenStoreTest, APlainPathOpensSqlite) {
  absl::StatusOr<std::unique_ptr<Store>> s = OpenStore(":memory:");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE((*s)->ClusterId().ok());
}

}  // namespace
}  // namespace det::store
