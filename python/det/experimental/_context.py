"""Packs a context directory as the det CLI does (common/archive/
context_archive.cc): a tar.gz of the regular files, directories and
inside-pointing symlinks under the directory, in sorted order, minus what
its .detignore lists (gitignore-style, matched with the C library's
fnmatch exactly as the CLI matches), within 96 MiB and 10,000 entries."""

import ctypes
import ctypes.util
import io
import os
import stat
import tarfile

MAX_BYTES = 96 << 20
MAX_FILES = 10000
_FNM_PATHNAME = 1

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
_libc.fnmatch.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]


def _fnmatch(pattern, name, flags):
    return _libc.fnmatch(pattern.encode(), name.encode(), flags) == 0


class DetIgnore:
    def __init__(self, text=""):
        self.patterns = []
        for line in text.split("\n"):
            if line.endswith("\r"):
                line = line[:-1]
            line = line.rstrip(" \t")
            if not line or line.startswith("#"):
                continue
            p = {"negate": False, "dir_only": False, "anchored": False,
                 "any_depth": False}
            if line.startswith("!"):
                p["negate"], line = True, line[1:]
            if line.endswith("/"):
                p["dir_only"], line = True, line[:-1]
            leading_stars = False
            while line.startswith("**/"):
                leading_stars, line = True, line[3:]
            if not leading_stars and line.startswith("/"):
                p["anchored"], line = True, line[1:]
            if "/" in line:
                p["anchored"], p["any_depth"] = True, leading_stars
            if not line:
                continue
            p["glob"] = line
            p["crosses_dirs"] = "**" in line
            self.patterns.append(p)

    def ignored(self, path, is_dir):
        base = path.rsplit("/", 1)[-1]
        ignored = False
        for p in self.patterns:
            if p["dir_only"] and not is_dir:
                continue
            flags = 0 if p["crosses_dirs"] else _FNM_PATHNAME
            hit = _fnmatch(p["glob"], path if p["anchored"] else base, flags)
            i = path.find("/")
            while not hit and p["any_depth"] and i != -1:
                hit = _fnmatch(p["glob"], path[i + 1:], flags)
                i = path.find("/", i + 1)
            if hit:
                ignored = not p["negate"]
        return ignored


def _link_stays_inside(rel, target):
    if not target or target.startswith("/"):
        return False
    depth = len(rel.split("/")) - 1
    descended = False
    for c in target.split("/"):
        if c in ("", "."):
            continue
        if c == "..":
            if descended or depth == 0:
                return False
            depth -= 1
        else:
            descended = True
    return True


def _walk(root, rel_dir, ignore, out):
    d = os.path.join(root, rel_dir) if rel_dir else root
    try:
        names = sorted(os.listdir(d))
    except OSError as e:
        raise ValueError(f"cannot list '{d}' while packing: {e.strerror}") \
            from None
    for name in names:
        rel = f"{rel_dir}/{name}" if rel_dir else name
        full = os.path.join(root, rel)
        st = os.lstat(full)
        is_dir = stat.S_ISDIR(st.st_mode)
        if ignore.ignored(rel, is_dir):
            continue
        if stat.S_ISREG(st.st_mode):
            out.append((rel, full, st))
        elif stat.S_ISLNK(st.st_mode):
            if _link_stays_inside(rel, os.readlink(full)):
                out.append((rel, full, st))
        elif is_dir:
            out.append((rel, full, st))
            _walk(root, rel, ignore, out)


def pack_context(directory):
    """The tar.gz bytes of `directory`; ValueError naming the limit."""
    if not os.path.isdir(directory):
        raise ValueError(f"context directory '{directory}' does not exist or "
                         f"is not a directory")
    ignore = DetIgnore()
    ignore_file = os.path.join(directory, ".detignore")
    if os.path.exists(ignore_file):
        with open(ignore_file, encoding="utf-8", errors="replace") as f:
            ignore = DetIgnore(f.read())
    entries = []
    _walk(directory, "", ignore, entries)
    total = sum(st.st_size for _, _, st in entries if stat.S_ISREG(st.st_mode))
    mib = lambda n: f"{n / (1 << 20):.1f} MiB"  # noqa: E731
    if total > MAX_BYTES:
        raise ValueError(
            f"context directory '{directory}' holds {mib(total)} of files, "
            f"over the limit of {mib(MAX_BYTES)} by {mib(total - MAX_BYTES)}; "
            f"list what the trial does not need in .detignore")
    if len(entries) > MAX_FILES:
        raise ValueError(
            f"context directory '{directory}' holds {len(entries)} files, "
            f"directories and links, over the limit of {MAX_FILES} by "
            f"{len(entries) - MAX_FILES}; list what the trial does not need "
            f"in .detignore")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz",
                      format=tarfile.PAX_FORMAT) as tar:
        for rel, full, st in entries:
            info = tarfile.TarInfo(rel)
            info.mode = st.st_mode & 0o777
            info.mtime = int(st.st_mtime)
            if stat.S_ISREG(st.st_mode):
                info.type = tarfile.REGTYPE
                info.size = st.st_size
                with open(full, "rb") as f:
                    tar.addfile(info, f)
            elif stat.S_ISLNK(st.st_mode):
                info.type = tarfile.SYMTYPE
                info.linkname = os.readlink(full)
                tar.addfile(info)
            else:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
    return buf.getvalue()
