"""core.checkpoint: checkpoints as folders under the trial's checkpoint
storage (TrialSpec.checkpoint_dir), named by a UUID.

store_path() hands out a hidden temporary folder `.tmp-<uuid>` beside the
final one; on exit every file is hashed (SHA-256) and synced, a SHA256SUMS
manifest and metadata.json are added, the folder is renamed to `<uuid>`
(so a half-written checkpoint never has a checkpoint's name) and, on a
cluster, reported to the worker after every earlier metric report was
acknowledged. restore_path() checks the files against the hashes the
master stored for that checkpoint (TrialSpec.restore_candidates, or
TrialSpec.warm_start for a warm start, which lies under warm_start_dir),
or against the folder's SHA256SUMS when the master sent none.
"""

import contextlib
import hashlib
import json
import os
import shutil
import time
import uuid as uuidlib

from det import _env

MANIFEST = "SHA256SUMS"
METADATA = "metadata.json"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, or whose files do not match their
    hashes."""


def _sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
        os.fsync(f.fileno())
    return h.hexdigest()


def _files(root):
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            if os.path.isfile(full) and not os.path.islink(full):
                out.append(os.path.relpath(full, root).replace(os.sep, "/"))
    return out


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def verify(directory, expected):
    """Raises CheckpointError unless every file in `expected` (relative
    path -> hex SHA-256) is in `directory` with that hash."""
    for rel, want in sorted(expected.items()):
        path = os.path.join(directory, rel)
        if not os.path.isfile(path):
            raise CheckpointError(f"checkpoint {directory}: file {rel} is "
                                  f"missing")
        got = _sha256_file(path)
        if got != want:
            raise CheckpointError(
                f"checkpoint {directory}: file {rel} does not match its "
                f"stored SHA-256 (stored {want[:12]}..., found {got[:12]}...)")


def read_manifest(directory):
    path = os.path.join(directory, MANIFEST)
    out = {}
    try:
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                line = line.rstrip("\n")
                if not line:
                    continue
                sha, sep, rel = line.partition("  ")
                if not sep or len(sha) != 64:
                    raise CheckpointError(f"{path}:{n}: not '<sha256>  "
                                          f"<file>'")
                out[rel] = sha
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {directory} has no {MANIFEST} "
                              f"and the master sent no hashes for it") from None
    return out


class CheckpointContext:
    """Determined's core.checkpoint: store_path, restore_path, upload,
    download, get_metadata."""

    def __init__(self, ctx, directory):
        self._ctx = ctx
        self._dir = directory

    @property
    def directory(self):
        """The checkpoint storage folder (det addition)."""
        return self._dir

    @contextlib.contextmanager
    def store_path(self, metadata=None, shard=False):
        """Yields (path, storage_id): a fresh folder to write into. On a
        clean exit the checkpoint is sealed and reported; on an exception
        the folder is removed and nothing is reported."""
        if shard:
            raise NotImplementedError(
                "det has no sharded checkpoints: store from rank 0 only")
        if self._ctx.distributed.rank != 0:
            raise RuntimeError("only rank 0 (the chief) stores checkpoints")
        metadata = dict(metadata or {})
        steps = metadata.get("steps_completed")
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ValueError(
                "checkpoint metadata needs 'steps_completed' (an int >= 0, "
                f"the batches trained so far); got {steps!r}")
        storage_id = str(uuidlib.uuid4())
        tmp = os.path.join(self._dir, ".tmp-" + storage_id)
        os.makedirs(tmp)
        try:
            yield tmp, storage_id
            self._seal(tmp, storage_id, metadata, steps)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    def _seal(self, tmp, storage_id, metadata, steps):
        with open(os.path.join(tmp, METADATA), "w", encoding="utf-8") as f:
            json.dump(metadata, f, sort_keys=True, default=str)
        hashes = {}
        size = 0
        for rel in _files(tmp):
            if rel == MANIFEST:
                continue
            hashes[rel] = _sha256_file(os.path.join(tmp, rel))
            size += os.path.getsize(os.path.join(tmp, rel))
        manifest = "".join(f"{sha}  {rel}\n" for rel, sha in
                           sorted(hashes.items()))
        with open(os.path.join(tmp, MANIFEST), "w", encoding="utf-8") as f:
            f.write(manifest)
        hashes[MANIFEST] = _sha256_file(os.path.join(tmp, MANIFEST))
        size += len(manifest.encode())
        final = os.path.join(self._dir, storage_id)
        os.rename(tmp, final)
        _fsync_dir(self._dir)
        from det.v1 import common_pb2
        c = common_pb2.Checkpoint(
            trial_id=_env.spec().trial_id, uuid=storage_id,
            steps_completed=steps, time_us=int(time.time() * 1e6),
            size_bytes=size)
        c.file_sha256.update(hashes)
        self._ctx._report_checkpoint(c)

    @contextlib.contextmanager
    def restore_path(self, storage_id, selector=None):
        """Yields the folder of checkpoint `storage_id` after checking its
        files against their SHA-256s. Read it; do not write into it."""
        if selector is not None:
            raise NotImplementedError("det restores whole checkpoints only")
        if not storage_id or "/" in storage_id or ".." in storage_id:
            raise CheckpointError(f"{storage_id!r} is not a checkpoint id")
        spec = _env.spec()
        from det._info import warm_start_uuid
        root = self._dir
        expected = None
        if storage_id == warm_start_uuid(spec) and spec.warm_start_dir:
            # Another trial's checkpoint (a warm start): it lies under its
            # own experiment's checkpoint storage.
            root = spec.warm_start_dir
            if spec.warm_start.file_sha256:
                expected = dict(spec.warm_start.file_sha256)
        path = os.path.join(root, storage_id)
        if not os.path.isdir(path):
            raise CheckpointError(f"checkpoint {storage_id} not found under "
                                  f"{root}")
        for c in spec.restore_candidates:
            if c.uuid == storage_id and c.file_sha256:
                expected = dict(c.file_sha256)
        if expected is None:
            expected = read_manifest(path)
        verify(path, expected)
        yield path

    def upload(self, ckpt_dir, metadata=None, shard=False):
        """Copies `ckpt_dir` into a new checkpoint; returns its id."""
        with self.store_path(metadata, shard=shard) as (path, storage_id):
            shutil.copytree(ckpt_dir, path, dirs_exist_ok=True)
        return storage_id

    def download(self, storage_id, ckpt_dir, selector=None):
        """Copies checkpoint `storage_id` (verified) into `ckpt_dir`."""
        with self.restore_path(storage_id, selector) as path:
            shutil.copytree(path, ckpt_dir, dirs_exist_ok=True)

    def get_metadata(self, storage_id):
        with self.restore_path(storage_id) as path:
            with open(os.path.join(path, METADATA), encoding="utf-8") as f:
                return json.load(f)
