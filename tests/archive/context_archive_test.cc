#include "common/archive/context_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace det {
namespace {

namespace fs = std::filesystem;

// One entry of a hand-made (possibly hostile) archive.
struct RawEntry {
  std::string path;
  mode_t type = AE_IFREG;
  std::string data;
  std::string symlink;   // for AE_IFLNK
  std::string hardlink;  // non-empty: a hard link entry
};

// Writes entries verbatim with libarchive: nothing is sanitised, so the
// archive can hold whatever an attacker could put there.
std::string BuildArchive(const std::vector<RawEntry>& entries,
                         bool gzip = true) {
  std::string out;
  struct archive* a = archive_write_new();
  if (gzip) archive_write_add_filter_gzip(a);
  archive_write_set_format_pax_restricted(a);
  archive_write_set_bytes_in_last_block(a, 1);
  archive_write_open(
      a, &out, nullptr,
      [](struct archive*, void* client, const void* buf, size_t n) {
        static_cast<std::string*>(client)->append(static_cast<const char*>(buf),
                                                  n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  for (const RawEntry& e : entries) {
    struct archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.path.c_str());
    archive_entry_set_filetype(entry, e.type);
    archive_entry_set_perm(entry, 0644);
    if (!e.hardlink.empty()) {
      archive_entry_set_hardlink(entry, e.hardlink.c_str());
    } else if (e.type == AE_IFREG) {
      archive_entry_set_size(entry, static_cast<la_int64_t>(e.data.size()));
    } else if (e.type == AE_IFLNK) {
      archive_entry_set_symlink(entry, e.symlink.c_str());
    } else if (e.type == AE_IFCHR || e.type == AE_IFBLK) {
      archive_entry_set_rdevmajor(entry, 1);
      archive_entry_set_rdevminor(entry, 3);
    }
    EXPECT_EQ(archive_write_header(a, entry), ARCHIVE_OK)
        << archive_error_string(a);
    if (e.type == AE_IFREG && e.hardlink.empty() && !e.data.empty()) {
      archive_write_data(a, e.data.data(), e.data.size());
    }
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
  return out;
}

RawEntry File(std::string path, std::string data = "x") {
  RawEntry e;
  e.path = std::move(path);
  e.data = std::move(data);
  return e;
}
RawEntry Dir(std::string path) {
  RawEntry e;
  e.path = std::move(path);
  e.type = AE_IFDIR;
  return e;
}
RawEntry Link(std::string path, std::string target) {
  RawEntry e;
  e.path = std::move(path);
  e.type = AE_IFLNK;
  e.symlink = std::move(target);
  return e;
}
RawEntry HardLink(std::string path, std::string target) {
  RawEntry e;
  e.path = std::move(path);
  e.hardlink = std::move(target);
  return e;
}
RawEntry Special(std::string path, mode_t type) {
  RawEntry e;
  e.path = std::move(path);
  e.type = type;
  return e;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p) << text;
}

class ContextArchiveTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "det-archive-XXXXXX");
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    tmp_ = tmpl;
    src_ = tmp_ / "src";
    dest_ = tmp_ / "dest";
    fs::create_directories(src_);
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }

  // Unpacking must fail with InvalidArgument, name `needle` in the message,
  // and leave nothing beside `dest_`.
  void ExpectRefused(const std::vector<RawEntry>& entries,
                     const std::string& needle,
                     const ArchiveLimits& limits = {}) {
    absl::Status s = UnpackContext(BuildArchive(entries), dest_, limits);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_NE(s.message().find(needle), std::string::npos)
        << "message: " << s.message() << "\nexpected to name: " << needle;
    for (const auto& e : fs::directory_iterator(tmp_)) {
      const std::string name = e.path().filename();
      EXPECT_TRUE(name == "src" || name == "dest") << "escaped: " << e.path();
    }
  }

  fs::path tmp_, src_, dest_;
};

TEST_F(ContextArchiveTest, PackAndUnpackRoundTrip) {
  WriteFile(src_ / "model.py", "print('hi')\n");
  WriteFile(src_ / "sub" / "deep" / "data.txt", "123");
  WriteFile(src_ / "run.sh", "#!/bin/sh\necho ok\n");
  fs::permissions(src_ / "run.sh", fs::perms::owner_all);
  fs::create_directories(src_ / "empty_dir");
  fs::create_symlink("sub/deep/data.txt", src_ / "inner_link");
  fs::create_symlink("/etc/passwd", src_ / "absolute_link");
  fs::create_symlink("../outside", src_ / "escaping_link");
  WriteFile(src_ / ".detignore", "*.log\nbig/\n/only_top.txt\n");
  WriteFile(src_ / "train.log", "noise");
  WriteFile(src_ / "big" / "blob", std::string(1000, 'b'));
  WriteFile(src_ / "only_top.txt", "ignored");
  WriteFile(src_ / "sub" / "only_top.txt", "kept");

  auto packed = PackContext(src_);
  ASSERT_TRUE(packed.ok()) << packed.status();
  ASSERT_TRUE(UnpackContext(*packed, dest_).ok());

  EXPECT_EQ(ReadFile(dest_ / "model.py"), "print('hi')\n");
  EXPECT_EQ(ReadFile(dest_ / "sub" / "deep" / "data.txt"), "123");
  EXPECT_EQ(ReadFile(dest_ / "sub" / "only_top.txt"), "kept");
  EXPECT_TRUE(fs::exists(dest_ / ".detignore"));
  EXPECT_TRUE(fs::is_directory(dest_ / "empty_dir"));
  EXPECT_NE(fs::status(dest_ / "run.sh").permissions() & fs::perms::owner_exec,
            fs::perms::none);
  ASSERT_TRUE(fs::is_symlink(dest_ / "inner_link"));
  EXPECT_EQ(fs::read_symlink(dest_ / "inner_link"), "sub/deep/data.txt");
  EXPECT_EQ(ReadFile(dest_ / "inner_link"), "123");
  EXPECT_FALSE(fs::exists(fs::symlink_status(dest_ / "absolute_link")));
  EXPECT_FALSE(fs::exists(fs::symlink_status(dest_ / "escaping_link")));
  EXPECT_FALSE(fs::exists(dest_ / "train.log"));
  EXPECT_FALSE(fs::exists(dest_ / "big"));
  EXPECT_FALSE(fs::exists(dest_ / "only_top.txt"));
}

TEST_F(ContextArchiveTest, PackingIsDeterministicInOrder) {
  WriteFile(src_ / "b", "2");
  WriteFile(src_ / "a", "1");
  auto one = PackContext(src_);
  auto two = PackContext(src_);
  ASSERT_TRUE(one.ok() && two.ok());
  EXPECT_EQ(*one, *two);
}

// A trial writing checkpoints under the context directory while the CLI
// packs it: what goes away between the listing and the reading is left out,
// and what changed is packed as it is when read.
TEST_F(ContextArchiveTest, PackLeavesOutWhatIsRemovedWhilePacking) {
  WriteFile(src_ / "train.py", "print('hi')\n");
  WriteFile(src_ / "checkpoints" / ".tmp-1" / "SHA256SUMS", "sums");
  WriteFile(src_ / "checkpoints" / ".tmp-1" / "state.pt", "weights");
  WriteFile(src_ / "notes.txt", "short");
  ArchiveLimits limits;
  limits.after_listing = [&] {
    fs::remove_all(src_ / "checkpoints" / ".tmp-1");
    WriteFile(src_ / "notes.txt", "grown since the listing");
  };
  auto packed = PackContext(src_, limits);
  ASSERT_TRUE(packed.ok()) << packed.status();
  ASSERT_TRUE(UnpackContext(*packed, dest_).ok());
  EXPECT_EQ(ReadFile(dest_ / "train.py"), "print('hi')\n");
  EXPECT_EQ(ReadFile(dest_ / "notes.txt"), "grown since the listing");
  EXPECT_TRUE(fs::is_directory(dest_ / "checkpoints"));
  EXPECT_FALSE(fs::exists(dest_ / "checkpoints" / ".tmp-1" / "SHA256SUMS"));
  EXPECT_FALSE(fs::exists(dest_ / "checkpoints" / ".tmp-1" / "state.pt"));
}

TEST_F(ContextArchiveTest, PackRefusesTreesOverTheByteLimit) {
  WriteFile(src_ / "a.bin", std::string(3 << 20, 'a'));
  ArchiveLimits limits;
  limits.max_bytes = 1 << 20;
  auto packed = PackContext(src_, limits);
  ASSERT_FALSE(packed.ok());
  EXPECT_EQ(packed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(packed.status().message().find("3.0 MiB"), std::string::npos)
      << packed.status();
  EXPECT_NE(packed.status().message().find("by 2.0 MiB"), std::string::npos)
      << packed.status();
  EXPECT_NE(packed.status().message().find(".detignore"), std::string::npos);

  // Ignoring the big file brings it under the limit.
  WriteFile(src_ / ".detignore", "*.bin\n");
  EXPECT_TRUE(PackContext(src_, limits).ok());
}

TEST_F(ContextArchiveTest, PackRefusesTreesOverTheFileLimit) {
  for (int i = 0; i < 5; ++i) WriteFile(src_ / std::to_string(i), "x");
  ArchiveLimits limits;
  limits.max_files = 3;
  auto packed = PackContext(src_, limits);
  ASSERT_FALSE(packed.ok());
  EXPECT_NE(packed.status().message().find("holds 5"), std::string::npos)
      << packed.status();
  EXPECT_NE(packed.status().message().find("limit of 3 by 2"),
            std::string::npos)
      << packed.status();
}

TEST_F(ContextArchiveTest, PackRefusesAMissingDirectory) {
  auto packed = PackContext((tmp_ / "nope").string());
  EXPECT_EQ(packed.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(ContextArchiveTest, UnpacksPlainTarToo) {
  ASSERT_TRUE(UnpackContext(BuildArchive({Dir("d"), File("d/f", "abc")},
                                         /*gzip=*/false),
                            dest_)
                  .ok());
  EXPECT_EQ(ReadFile(dest_ / "d" / "f"), "abc");
}

TEST_F(ContextArchiveTest, RefusesAbsolutePaths) {
  ExpectRefused({File((tmp_ / "evil").string())}, "absolute path");
}

TEST_F(ContextArchiveTest, RefusesDotDot) {
  ExpectRefused({File("../evil")}, "'../evil' has a '..' component");
  ExpectRefused({Dir("a"), File("a/../../evil")}, "'a/../../evil'");
}

TEST_F(ContextArchiveTest, RefusesSymlinksEscapingDest) {
  ExpectRefused({Link("l", "../evil")}, "'l' is a link to '../evil'");
  ExpectRefused({Link("l", "/etc/passwd")}, "'l' is a link to '/etc/passwd'");
  ExpectRefused({Dir("a"), Link("a/l", "x/../../..")}, "'a/l' is a link");
}

TEST_F(ContextArchiveTest, AllowsSymlinksInsideDest) {
  ASSERT_TRUE(
      UnpackContext(BuildArchive({Dir("a"), File("a/f", "in"), Link("a/l", "f"),
                                  Link("up", "a/f"), Link("a/b", "../a/f")}),
                    dest_)
          .ok());
  EXPECT_EQ(ReadFile(dest_ / "a" / "l"), "in");
  EXPECT_EQ(ReadFile(dest_ / "up"), "in");
  EXPECT_EQ(ReadFile(dest_ / "a" / "b"), "in");
}

TEST_F(ContextArchiveTest, RefusesWritingThroughALink) {
  // "l" itself points inside, but a later entry must not be written through
  // it (the classic two-step escape when the link points elsewhere).
  fs::create_directories(dest_ / "sub");
  ExpectRefused({Link("l", "sub"), File("l/f")}, "'l/f' goes through 'l'");
  EXPECT_FALSE(fs::exists(dest_ / "sub" / "f"));
}

TEST_F(ContextArchiveTest, ReplacesALinkInsteadOfWritingThroughIt) {
  fs::create_directories(dest_);
  fs::create_symlink(tmp_ / "outside", dest_ / "f");
  ASSERT_TRUE(UnpackContext(BuildArchive({File("f", "new")}), dest_).ok());
  EXPECT_FALSE(fs::exists(tmp_ / "outside"));
  EXPECT_FALSE(fs::is_symlink(dest_ / "f"));
  EXPECT_EQ(ReadFile(dest_ / "f"), "new");
}

TEST_F(ContextArchiveTest, RefusesHardLinksOutsideDest) {
  ExpectRefused({HardLink("h", "../../etc/passwd")}, "'h' is a hard link");
  ExpectRefused({HardLink("h", "/etc/passwd")}, "'h' is a hard link");
}

TEST_F(ContextArchiveTest, AllowsHardLinksInsideDest) {
  ASSERT_TRUE(UnpackContext(
                  BuildArchive({File("f", "same"), HardLink("h", "f")}), dest_)
                  .ok());
  EXPECT_EQ(ReadFile(dest_ / "h"), "same");
}

TEST_F(ContextArchiveTest, RefusesDeviceFilesPipesAndSockets) {
  ExpectRefused({Special("null", AE_IFCHR)}, "'null' is a character device");
  ExpectRefused({Special("disk", AE_IFBLK)}, "'disk' is a block device");
  ExpectRefused({Special("pipe", AE_IFIFO)}, "'pipe' is a named pipe");
}

TEST_F(ContextArchiveTest, RefusesArchivesOverTheLimits) {
  ArchiveLimits bytes;
  bytes.max_bytes = 100;
  ExpectRefused({File("small", std::string(60, 's')),
                 File("large", std::string(60, 'l'))},
                "at entry 'large'", bytes);
  ArchiveLimits files;
  files.max_files = 2;
  ExpectRefused({File("a"), File("b"), File("c")}, "more than 2 entries",
                files);
}

TEST_F(ContextArchiveTest, RefusesGarbageAndEmptyInput) {
  EXPECT_EQ(UnpackContext("", dest_).code(),
            absl::StatusCode::kInvalidArgument);
  absl::Status s = UnpackContext(std::string(4096, '\x7f'), dest_);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
  // A truncated gzip stream fails cleanly too.
  std::string good = BuildArchive({File("f", std::string(100000, 'z'))});
  s = UnpackContext(good.substr(0, good.size() / 2), dest_);
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace det
