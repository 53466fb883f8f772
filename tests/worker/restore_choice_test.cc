// The worker's checks of what a run starts from: its own restore
// candidates (the newest intact one) and a warm start (another trial's
// checkpoint, under the directory the master named), each against the
// SHA-256s the master stored.
#include "worker/daemon/restore_choice.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/checksum/sha256.h"
#include "tests/testing/temp_dir.h"

namespace det::worker {
namespace {

using ::testing::HasSubstr;

// Writes checkpoint <root>/<uuid>/model.pt and returns its record.
v1::Checkpoint Write(const det::test::TempDir& dir, const std::string& root,
                     const std::string& uuid, int64_t steps) {
  const std::string path =
      dir.Write(root + "/" + uuid + "/model.pt", "weights of " + uuid);
  v1::Checkpoint c;
  c.set_uuid(uuid);
  c.set_steps_completed(steps);
  (*c.mutable_file_sha256())["model.pt"] = *Sha256OfFile(path);
  return c;
}

TEST(RestoreChoiceTest, NewestIntactCandidateWins) {
  det::test::TempDir dir("det-restore-choice");
  v1::TrialSpec spec;
  spec.set_checkpoint_dir(dir.File("own"));
  v1::Checkpoint newer = Write(dir, "own", "b", 20);
  v1::Checkpoint older = Write(dir, "own", "a", 10);
  (*newer.mutable_file_sha256())["model.pt"] = std::string(64, '0');
  *spec.add_restore_candidates() = newer;
  *spec.add_restore_candidates() = older;
  std::vector<std::string> notes;
  EXPECT_EQ(ChooseRestoreCheckpoint(spec, &notes), "a");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_THAT(notes[0], HasSubstr("checkpoint b (step 20) is unusable"));
}

TEST(RestoreChoiceTest, AnIntactWarmStartIsUsedWhenNothingIsRestored) {
  det::test::TempDir dir("det-restore-choice");
  v1::TrialSpec spec;
  spec.set_checkpoint_dir(dir.File("own"));
  *spec.mutable_warm_start() = Write(dir, "source", "src-1", 40);
  spec.set_warm_start_dir(dir.File("source"));
  EXPECT_TRUE(CheckWarmStart(spec).ok()) << CheckWarmStart(spec);
  EXPECT_EQ(WarmStartPath(spec), dir.File("source") + "/src-1");
  // A run that restores its own checkpoint ignores the warm start.
  spec.set_restore_uuid("a");
  EXPECT_EQ(WarmStartPath(spec), "");
  EXPECT_TRUE(CheckWarmStart(spec).ok());
  // No warm start at all.
  EXPECT_TRUE(CheckWarmStart(v1::TrialSpec()).ok());
  EXPECT_EQ(WarmStartPath(v1::TrialSpec()), "");
}

TEST(RestoreChoiceTest, AnUnusableWarmStartSaysWhichWhereAndWhy) {
  det::test::TempDir dir("det-restore-choice");
  v1::TrialSpec spec;
  spec.set_warm_start_dir(dir.File("source"));
  v1::Checkpoint c = Write(dir, "source", "src-1", 40);

  // Corrupt: a file whose hash differs.
  v1::Checkpoint corrupt = c;
  (*corrupt.mutable_file_sha256())["model.pt"] = std::string(64, 'f');
  *spec.mutable_warm_start() = corrupt;
  absl::Status s = CheckWarmStart(spec);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("warm-start checkpoint src-1"));
  EXPECT_THAT(s.message(), HasSubstr(dir.File("source")));
  EXPECT_THAT(s.message(), HasSubstr("model.pt"));

  // Missing: under another directory than the one it lies in.
  *spec.mutable_warm_start() = c;
  spec.set_warm_start_dir(dir.File("elsewhere"));
  s = CheckWarmStart(spec);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("does not exist"));

  // Deleted from the store: the master sent the uuid without files.
  spec.set_warm_start_dir(dir.File("source"));
  spec.mutable_warm_start()->clear_file_sha256();
  s = CheckWarmStart(spec);
  EXPECT_FALSE(s.ok());
  EXPECT_THAT(s.message(), HasSubstr("no record of its files"));

  // Not a checkpoint name.
  *spec.mutable_warm_start() = c;
  spec.mutable_warm_start()->set_uuid("../src-1");
  EXPECT_FALSE(CheckWarmStart(spec).ok());
}

}  // namespace
}  // namespace det::worker
