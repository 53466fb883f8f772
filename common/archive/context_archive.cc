// PackContext and UnpackContext on top of libarchive.
//
// Unpacking writes with *at() system calls relative to a directory file
// descriptor, opening every directory on the way with O_NOFOLLOW: no entry
// can be written through a symbolic link, whatever earlier entries created.
#include "common/archive/context_archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/archive/archive_paths.h"
#include "common/archive/detignore.h"

namespace det {
namespace {

namespace fs = std::filesystem;

constexpr size_t kChunk = 64 << 10;

std::string Mib(int64_t bytes) {
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

std::string Errno(int err) { return std::strerror(err); }

// Owns a file descriptor.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      if (fd_ >= 0) close(fd_);
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

struct ArchiveReadDeleter {
  void operator()(struct archive* a) const { archive_read_free(a); }
};
struct ArchiveWriteDeleter {
  void operator()(struct archive* a) const { archive_write_free(a); }
};
struct EntryDeleter {
  void operator()(struct archive_entry* e) const { archive_entry_free(e); }
};

// ---------------------------------------------------------------- packing

struct PackEntry {
  std::string rel;  // '/'-separated, relative to the context root
  fs::file_type type;
  int64_t size = 0;
  std::string link_target;
  fs::perms perms;
  std::string abs;
};

// Lists what PackContext will archive, in sorted order, pruning ignored
// directories and dropping links that point outside the root and files that
// are neither regular, directories nor links.
absl::Status Walk(const fs::path& root, const std::string& rel_dir,
                  const DetIgnore& ignore, std::vector<PackEntry>* out) {
  std::error_code ec;
  const fs::path dir = rel_dir.empty() ? root : root / rel_dir;
  std::vector<std::string> names;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end;
       it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  // Whatever is removed between listing and reading (a trial writing
  // checkpoints under the context, an editor's swap file) is left out:
  // the archive holds what was there when it was read.
  const auto vanished = [](const std::error_code& err) {
    return err == std::errc::no_such_file_or_directory;
  };
  if (ec && !rel_dir.empty() && vanished(ec)) return absl::OkStatus();
  if (ec) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot list '", dir.string(), "' while packing: ", ec.message()));
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) {
    PackEntry e;
    e.rel = rel_dir.empty() ? name : absl::StrCat(rel_dir, "/", name);
    e.abs = (root / e.rel).string();
    fs::file_status st = fs::symlink_status(e.abs, ec);
    if (ec && vanished(ec)) continue;
    if (ec) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot stat '", e.abs, "' while packing: ", ec.message()));
    }
    e.type = st.type();
    e.perms = st.permissions();
    const bool is_dir = e.type == fs::file_type::directory;
    if (ignore.Ignored(e.rel, is_dir)) continue;
    if (e.type == fs::file_type::regular) {
      e.size = static_cast<int64_t>(fs::file_size(e.abs, ec));
      if (ec && vanished(ec)) continue;
      if (ec) {
        return absl::FailedPreconditionError(absl::StrCat(
            "cannot stat '", e.abs, "' while packing: ", ec.message()));
      }
      out->push_back(std::move(e));
    } else if (e.type == fs::file_type::symlink) {
      e.link_target = fs::read_symlink(e.abs, ec).string();
      if (ec) continue;
      auto comps = SplitEntryPath(e.rel);
      if (comps.ok() && LinkStaysInside(*comps, e.link_target)) {
        out->push_back(std::move(e));
      }
    } else if (is_dir) {
      std::string rel = e.rel;
      out->push_back(std::move(e));
      absl::Status s = Walk(root, rel, ignore, out);
      if (!s.ok()) return s;
    }
    // Sockets, pipes and devices have no place in a context: skipped.
  }
  return absl::OkStatus();
}

la_ssize_t AppendToString(struct archive*, void* client, const void* buf,
                          size_t n) {
  static_cast<std::string*>(client)->append(static_cast<const char*>(buf), n);
  return static_cast<la_ssize_t>(n);
}

// Archives one listed entry. A regular file is opened before its header
// is written, so that one removed since the listing is left out instead of
// leaving a header without its bytes; its size is the one it has when
// opened.
absl::Status WriteEntry(struct archive* a, const PackEntry& e) {
  Fd fd;
  int64_t size = 0;
  if (e.type == fs::file_type::regular) {
    fd = Fd(open(e.abs.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd.ok() && errno == ENOENT) return absl::OkStatus();
    struct stat st;
    if (!fd.ok() || fstat(fd.get(), &st) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot read '", e.abs, "': ", Errno(errno)));
    }
    size = static_cast<int64_t>(st.st_size);
  }
  std::unique_ptr<struct archive_entry, EntryDeleter> entry(
      archive_entry_new());
  archive_entry_set_pathname(entry.get(), e.rel.c_str());
  archive_entry_set_perm(entry.get(), static_cast<mode_t>(e.perms) & 0777);
  switch (e.type) {
    case fs::file_type::regular:
      archive_entry_set_filetype(entry.get(), AE_IFREG);
      archive_entry_set_size(entry.get(), size);
      break;
    case fs::file_type::directory:
      archive_entry_set_filetype(entry.get(), AE_IFDIR);
      break;
    default:
      archive_entry_set_filetype(entry.get(), AE_IFLNK);
      archive_entry_set_symlink(entry.get(), e.link_target.c_str());
      break;
  }
  if (archive_write_header(a, entry.get()) != ARCHIVE_OK) {
    return absl::InternalError(absl::StrCat("cannot archive '", e.rel,
                                            "': ", archive_error_string(a)));
  }
  if (e.type != fs::file_type::regular) return absl::OkStatus();

  std::vector<char> buf(kChunk);
  int64_t left = size;
  while (left > 0) {
    ssize_t n = read(fd.get(), buf.data(),
                     static_cast<size_t>(std::min<int64_t>(left, kChunk)));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot read '", e.abs, "'",
          n < 0 ? ": " + Errno(errno) : ": it shrank while being packed"));
    }
    if (archive_write_data(a, buf.data(), static_cast<size_t>(n)) != n) {
      return absl::InternalError(absl::StrCat("cannot archive '", e.rel,
                                              "': ", archive_error_string(a)));
    }
    left -= n;
  }
  return absl::OkStatus();
}

// -------------------------------------------------------------- unpacking

// Opens (creating when `create`) the directories comps[0..n-2] under
// `root`, never following a link. Returns the innermost one.
absl::StatusOr<Fd> OpenParent(int root, const std::string& entry,
                              const std::vector<std::string>& comps,
                              bool create) {
  Fd cur(dup(root));
  if (!cur.ok()) return absl::InternalError("dup: " + Errno(errno));
  for (size_t i = 0; i + 1 < comps.size(); ++i) {
    if (create && mkdirat(cur.get(), comps[i].c_str(), 0755) != 0 &&
        errno != EEXIST) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create directory for archive entry '", entry,
                       "': ", Errno(errno)));
    }
    Fd next(openat(cur.get(), comps[i].c_str(),
                   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!next.ok()) {
      const std::string where =
          absl::StrJoin(comps.begin(), comps.begin() + i + 1, "/");
      if (errno == ELOOP || errno == ENOTDIR) {
        return absl::InvalidArgumentError(absl::StrCat(
            "archive entry '", entry, "' goes through '", where,
            "', which is a link or a file, not a directory; refusing it"));
      }
      return absl::FailedPreconditionError(
          absl::StrCat("archive entry '", entry, "': cannot open '", where,
                       "': ", Errno(errno)));
    }
    cur = std::move(next);
  }
  return cur;
}

// Removes a non-directory at `name`, so that a later entry replaces an
// earlier one (as tar does) without ever writing through a link.
absl::Status ClearSpot(int dir, const std::string& name,
                       const std::string& entry) {
  struct stat st;
  if (fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return absl::OkStatus();
  }
  if (S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "archive entry '", entry, "' would replace a directory; refusing it"));
  }
  if (unlinkat(dir, name.c_str(), 0) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "archive entry '", entry, "': cannot replace: ", Errno(errno)));
  }
  return absl::OkStatus();
}

const char* TypeName(mode_t type) {
  switch (type) {
    case AE_IFCHR:
      return "a character device";
    case AE_IFBLK:
      return "a block device";
    case AE_IFIFO:
      return "a named pipe";
    case AE_IFSOCK:
      return "a socket";
    default:
      return "of an unsupported type";
  }
}

class Unpacker {
 public:
  Unpacker(struct archive* a, int root, const ArchiveLimits& limits)
      : a_(a), root_(root), limits_(limits) {}

  absl::Status Entry(struct archive_entry* e) {
    const char* raw = archive_entry_pathname(e);
    const std::string name = raw == nullptr ? "" : raw;
    auto comps = SplitEntryPath(name);
    if (!comps.ok()) return comps.status();
    if (++entries_ > limits_.max_files) {
      return absl::InvalidArgumentError(
          absl::StrCat("context archive has more than ", limits_.max_files,
                       " entries (the limit), at entry '", name, "'"));
    }
    const char* hardlink = archive_entry_hardlink(e);
    if (hardlink != nullptr) return HardLink(name, *comps, hardlink);
    const mode_t type = archive_entry_filetype(e);
    const mode_t perm = archive_entry_perm(e) & 0777;
    switch (type) {
      case AE_IFDIR:
        return Directory(name, *comps, perm);
      case AE_IFREG:
        return RegularFile(name, *comps, perm, archive_entry_size(e));
      case AE_IFLNK: {
        const char* target = archive_entry_symlink(e);
        return SymLink(name, *comps, target == nullptr ? "" : target);
      }
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            "archive entry '", name, "' is ", TypeName(type),
            "; a context may hold only files, directories and links"));
    }
  }

 private:
  absl::Status Directory(const std::string& name,
                         const std::vector<std::string>& comps, mode_t perm) {
    auto parent = OpenParent(root_, name, comps, /*create=*/true);
    if (!parent.ok()) return parent.status();
    const std::string& last = comps.back();
    if (mkdirat(parent->get(), last.c_str(), perm | 0700) != 0 &&
        errno != EEXIST) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create directory '", name, "': ", Errno(errno)));
    }
    Fd check(openat(parent->get(), last.c_str(),
                    O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!check.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("archive entry '", name,
                       "' is a directory where a link or file already is; "
                       "refusing it"));
    }
    return absl::OkStatus();
  }

  absl::Status RegularFile(const std::string& name,
                           const std::vector<std::string>& comps, mode_t perm,
                           int64_t declared) {
    if (declared > limits_.max_bytes - bytes_) {
      return OverBytes(name, declared);
    }
    auto parent = OpenParent(root_, name, comps, /*create=*/true);
    if (!parent.ok()) return parent.status();
    absl::Status s = ClearSpot(parent->get(), comps.back(), name);
    if (!s.ok()) return s;
    Fd fd(openat(parent->get(), comps.back().c_str(),
                 O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                 perm | 0600));
    if (!fd.ok()) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create '", name, "': ", Errno(errno)));
    }
    std::vector<char> buf(kChunk);
    for (;;) {
      la_ssize_t n = archive_read_data(a_, buf.data(), buf.size());
      if (n == 0) break;
      if (n < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("cannot read archive entry '", name,
                         "': ", archive_error_string(a_)));
      }
      bytes_ += n;
      if (bytes_ > limits_.max_bytes) return OverBytes(name, 0);
      for (la_ssize_t done = 0; done < n;) {
        ssize_t w =
            write(fd.get(), buf.data() + done, static_cast<size_t>(n - done));
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
          return absl::FailedPreconditionError(
              absl::StrCat("cannot write '", name, "': ", Errno(errno)));
        }
        done += w;
      }
    }
    return absl::OkStatus();
  }

  absl::Status SymLink(const std::string& name,
                       const std::vector<std::string>& comps,
                       const std::string& target) {
    if (!LinkStaysInside(comps, target)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "archive entry '", name, "' is a link to '", target,
          "', which points outside the context directory; refusing it"));
    }
    auto parent = OpenParent(root_, name, comps, /*create=*/true);
    if (!parent.ok()) return parent.status();
    absl::Status s = ClearSpot(parent->get(), comps.back(), name);
    if (!s.ok()) return s;
    if (symlinkat(target.c_str(), parent->get(), comps.back().c_str()) != 0) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create link '", name, "': ", Errno(errno)));
    }
    return absl::OkStatus();
  }

  absl::Status HardLink(const std::string& name,
                        const std::vector<std::string>& comps,
                        const std::string& target) {
    auto target_comps = SplitEntryPath(target);
    if (!target_comps.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("archive entry '", name, "' is a hard link to '", target,
                       "', which points outside the context directory; "
                       "refusing it"));
    }
    auto tparent = OpenParent(root_, name, *target_comps, /*create=*/false);
    if (!tparent.ok()) return tparent.status();
    auto parent = OpenParent(root_, name, comps, /*create=*/true);
    if (!parent.ok()) return parent.status();
    absl::Status s = ClearSpot(parent->get(), comps.back(), name);
    if (!s.ok()) return s;
    // Flags 0: a link to a symbolic link stays a link to that link.
    if (linkat(tparent->get(), target_comps->back().c_str(), parent->get(),
               comps.back().c_str(), 0) != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("archive entry '", name, "': cannot hard-link to '",
                       target, "': ", Errno(errno)));
    }
    return absl::OkStatus();
  }

  absl::Status OverBytes(const std::string& name, int64_t declared) {
    return absl::InvalidArgumentError(absl::StrCat(
        "context archive unpacks to more than ", Mib(limits_.max_bytes),
        " (the limit), at entry '", name, "'",
        declared > 0 ? absl::StrCat(" (", declared, " bytes)") : ""));
  }

  struct archive* const a_;
  const int root_;
  const ArchiveLimits limits_;
  int64_t entries_ = 0;
  int64_t bytes_ = 0;
};

}  // namespace

absl::StatusOr<std::string> PackContext(const std::string& dir,
                                        const ArchiveLimits& limits) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "context directory '", dir, "' does not exist or is not a directory"));
  }
  DetIgnore ignore;
  const fs::path ignore_file = fs::path(dir) / ".detignore";
  if (fs::exists(ignore_file, ec)) {
    std::ifstream in(ignore_file);
    if (!in) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot read '", ignore_file.string(), "'"));
    }
    std::stringstream text;
    text << in.rdbuf();
    ignore = DetIgnore::Parse(text.str());
  }

  std::vector<PackEntry> entries;
  absl::Status s = Walk(dir, "", ignore, &entries);
  if (!s.ok()) return s;
  int64_t total = 0;
  for (const PackEntry& e : entries) total += e.size;
  const int64_t count = static_cast<int64_t>(entries.size());
  if (total > limits.max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("context directory '", dir, "' holds ", Mib(total),
                     " of files, over the limit of ", Mib(limits.max_bytes),
                     " by ", Mib(total - limits.max_bytes),
                     "; list what the trial does not need in .detignore"));
  }
  if (count > limits.max_files) {
    return absl::InvalidArgumentError(
        absl::StrCat("context directory '", dir, "' holds ", count,
                     " files, directories and links, over the limit of ",
                     limits.max_files, " by ", count - limits.max_files,
                     "; list what the trial does not need in .detignore"));
  }

  std::string out;
  std::unique_ptr<struct archive, ArchiveWriteDeleter> a(archive_write_new());
  if (archive_write_add_filter_gzip(a.get()) != ARCHIVE_OK ||
      archive_write_set_format_pax_restricted(a.get()) != ARCHIVE_OK ||
      archive_write_set_bytes_in_last_block(a.get(), 1) != ARCHIVE_OK ||
      archive_write_open(a.get(), &out, nullptr, AppendToString, nullptr) !=
          ARCHIVE_OK) {
    return absl::InternalError(absl::StrCat("cannot start the archive: ",
                                            archive_error_string(a.get())));
  }
  if (limits.after_listing) limits.after_listing();
  for (const PackEntry& e : entries) {
    s = WriteEntry(a.get(), e);
    if (!s.ok()) return s;
  }
  if (archive_write_close(a.get()) != ARCHIVE_OK) {
    return absl::InternalError(absl::StrCat("cannot finish the archive: ",
                                            archive_error_string(a.get())));
  }
  return out;
}

absl::Status UnpackContext(const std::string& archive, const std::string& dest,
                           const ArchiveLimits& limits) {
  if (archive.empty()) {
    return absl::InvalidArgumentError("context archive is empty");
  }
  std::error_code ec;
  fs::create_directories(dest, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create directory '", dest, "': ", ec.message()));
  }
  Fd root(open(dest.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!root.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open directory '", dest, "': ", Errno(errno)));
  }

  std::unique_ptr<struct archive, ArchiveReadDeleter> a(archive_read_new());
  archive_read_support_filter_gzip(a.get());
  archive_read_support_filter_none(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_memory(a.get(), archive.data(), archive.size()) !=
      ARCHIVE_OK) {
    return absl::InvalidArgumentError(
        absl::StrCat("context archive is not a tar or tar.gz file: ",
                     archive_error_string(a.get())));
  }
  Unpacker unpacker(a.get(), root.get(), limits);
  for (;;) {
    struct archive_entry* entry = nullptr;
    int r = archive_read_next_header(a.get(), &entry);
    if (r == ARCHIVE_EOF) break;
    if (r < ARCHIVE_WARN) {
      return absl::InvalidArgumentError(absl::StrCat(
          "context archive is corrupt: ", archive_error_string(a.get())));
    }
    absl::Status s = unpacker.Entry(entry);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace det
