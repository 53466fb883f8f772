#include "worker/trainer/checkpoint_files.h"

#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/trainer/synthetic_cifar.h"

namespace det::trainer {
namespace {

using ::det::trainer::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;

absl::Status WriteTwoFiles(const std::string& dir) {
  std::ofstream(dir + "/a.bin") << "hello";
  std::ofstream(dir + "/b.txt") << "";
  return absl::OkStatus();
}

TEST(Sha256OfFile, KnownDigests) {
  TempDir dir;
  dir.Write("abc", "abc");
  dir.Write("empty", "");
  EXPECT_EQ(*Sha256OfFile(dir.File("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(*Sha256OfFile(dir.File("empty")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(NewUuid, Version4Format) {
  std::string a = NewUuid(), b = NewUuid();
  EXPECT_NE(a, b);
  EXPECT_THAT(a, ::testing::MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-"
                                         "[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
}

TEST(WriteCheckpoint, PublishesADirectoryWithAManifest) {
  TempDir dir;
  absl::StatusOr<CheckpointInfo> info =
      WriteCheckpoint(dir.File("ck"), 12, WriteTwoFiles);
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->steps_completed, 12);
  EXPECT_EQ(info->path, dir.File("ck") + "/" + info->uuid);
  EXPECT_EQ(info->file_sha256.size(), 2u);
  EXPECT_EQ(info->file_sha256.at("a.bin"),
            *Sha256OfFile(info->path + "/a.bin"));
  EXPECT_GT(info->size_bytes, 5);
  // Nothing but the published checkpoint is left behind.
  int entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.File("ck"))) {
    ++entries;
    EXPECT_EQ(e.path().filename().string(), info->uuid);
  }
  EXPECT_EQ(entries, 1);
  absl::StatusOr<std::string> verified =
      VerifyCheckpoint(dir.File("ck"), info->uuid);
  ASSERT_TRUE(verified.ok()) << verified.status();
  EXPECT_EQ(*verified, info->path);
}

TEST(WriteCheckpoint, FailedWriterLeavesNothing) {
  TempDir dir;
  absl::StatusOr<CheckpointInfo> info =
      WriteCheckpoint(dir.path(), 1, [](const std::string& d) {
        std::ofstream(d + "/partial") << "x";
        return absl::InternalError("disk full");
      });
  EXPECT_EQ(info.status().message(), "disk full");
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(VerifyCheckpoint, CorruptMissingAndUnknown) {
  TempDir dir;
  absl::StatusOr<CheckpointInfo> info =
      WriteCheckpoint(dir.path(), 1, WriteTwoFiles);
  ASSERT_TRUE(info.ok());
  std::ofstream(info->path + "/a.bin") << "HELLO";
  absl::StatusOr<std::string> v = VerifyCheckpoint(dir.path(), info->uuid);
  EXPECT_EQ(v.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(v.status().message(),
              AllOf(HasSubstr(info->path + "/a.bin"), HasSubstr("corrupt")));

  std::filesystem::remove(info->path + "/a.bin");
  v = VerifyCheckpoint(dir.path(), info->uuid);
  EXPECT_THAT(v.status().message(),
              AllOf(HasSubstr("a.bin"), HasSubstr("missing")));

  std::filesystem::remove(info->path + "/" + kManifestName);
  EXPECT_EQ(VerifyCheckpoint(dir.path(), info->uuid).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(VerifyCheckpoint(dir.path(), "no-such-uuid").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(VerifyCheckpoint(dir.path(), "../escape").status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace det::trainer
