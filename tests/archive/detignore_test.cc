#include "common/archive/detignore.h"

#include "gtest/gtest.h"

namespace det {
namespace {

TEST(DetIgnoreTest, NamesMatchAtAnyDepth) {
  DetIgnore ig = DetIgnore::Parse("# comment\n\n*.pyc\ndata\n");
  EXPECT_TRUE(ig.Ignored("a.pyc", false));
  EXPECT_TRUE(ig.Ignored("x/y/a.pyc", false));
  EXPECT_TRUE(ig.Ignored("data", true));
  EXPECT_TRUE(ig.Ignored("sub/data", false));
  EXPECT_FALSE(ig.Ignored("a.py", false));
  EXPECT_FALSE(ig.Ignored("mydata", false));
  EXPECT_FALSE(ig.Ignored("# comment", false));
}

TEST(DetIgnoreTest, TrailingSlashMatchesDirectoriesOnly) {
  DetIgnore ig = DetIgnore::Parse("build/\n");
  EXPECT_TRUE(ig.Ignored("build", true));
  EXPECT_TRUE(ig.Ignored("a/build", true));
  EXPECT_FALSE(ig.Ignored("build", false));
}

TEST(DetIgnoreTest, LeadingOrInnerSlashAnchorsToRoot) {
  DetIgnore ig = DetIgnore::Parse("/top.txt\nlogs/*.log\n");
  EXPECT_TRUE(ig.Ignored("top.txt", false));
  EXPECT_FALSE(ig.Ignored("sub/top.txt", false));
  EXPECT_TRUE(ig.Ignored("logs/a.log", false));
  EXPECT_FALSE(ig.Ignored("x/logs/a.log", false));
  EXPECT_FALSE(ig.Ignored("logs/deep/a.log", false));  // '*' stops at '/'
}

TEST(DetIgnoreTest, DoubleStarCrossesDirectories) {
  DetIgnore ig = DetIgnore::Parse("**/cache\nout/**\n**/a/b.bin\n");
  EXPECT_TRUE(ig.Ignored("cache", true));
  EXPECT_TRUE(ig.Ignored("x/y/cache", true));
  EXPECT_TRUE(ig.Ignored("out/deep/file", false));
  EXPECT_TRUE(ig.Ignored("a/b.bin", false));
  EXPECT_TRUE(ig.Ignored("z/a/b.bin", false));
  EXPECT_FALSE(ig.Ignored("za/b.bin", false));
}

TEST(DetIgnoreTest, NegationReincludesAndLastMatchWins) {
  DetIgnore ig = DetIgnore::Parse("*.bin\n!keep.bin\n");
  EXPECT_TRUE(ig.Ignored("a.bin", false));
  EXPECT_FALSE(ig.Ignored("keep.bin", false));
  EXPECT_FALSE(ig.Ignored("d/keep.bin", false));
}

TEST(DetIgnoreTest, EmptyTextIgnoresNothing) {
  DetIgnore ig = DetIgnore::Parse("\r\n   \n");
  EXPECT_TRUE(ig.empty());
  EXPECT_FALSE(ig.Ignored("anything", false));
}

}  // namespace
}  // namespace det
