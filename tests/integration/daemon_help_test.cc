// `det-master --help` and `det-worker --help` list the daemons' own flags
// (Abseil's default lists only flags from a file named like the binary,
// which printed "No flags matched").
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace {

std::string Output(const std::string& command) {
  std::string out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

TEST(DaemonHelpTest, MasterListsItsFlags) {
  std::string out = Output(std::string(DET_BIN_DIR) + "/det-master --help");
  EXPECT_THAT(out, ::testing::HasSubstr("--grpc_address"));
  EXPECT_THAT(out, ::testing::HasSubstr("--token"));
  EXPECT_THAT(out, ::testing::Not(::testing::HasSubstr("No flags matched")));
}

TEST(DaemonHelpTest, WorkerListsItsFlags) {
  std::string out = Output(std::string(DET_BIN_DIR) + "/det-worker --help");
  EXPECT_THAT(out, ::testing::HasSubstr("--slots"));
  EXPECT_THAT(out, ::testing::HasSubstr("--checkpoint_root"));
  EXPECT_THAT(out, ::testing::Not(::testing::HasSubstr("No flags matched")));
}

}  // namespace
