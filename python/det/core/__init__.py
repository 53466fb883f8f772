"""det.core: Determined's Core API on det's trial API.

    with det.core.init() as core:
        core.train.report_training_metrics(steps_completed=s, metrics={...})
        core.train.report_validation_metrics(steps_completed=s, metrics={...})
        with core.checkpoint.store_path({"steps_completed": s}) as (path, uuid):
            ...write files into path...
        if core.preempt.should_preempt():
            return

Report calls do not wait for the worker: see _reports.py for what a
returned call guarantees. Closing the context waits until the worker has
acknowledged every report.
"""

import os
import signal
import threading
import time

from det import _env
from det.core._checkpoint import CheckpointContext, CheckpointError
from det.core._distributed import DistributedContext
from det.core._searcher import SearcherContext, SearcherOperation

__all__ = ["CheckpointContext", "CheckpointError", "Context",
           "DistributedContext", "InvalidHP", "PreemptContext",
           "SearcherContext", "SearcherOperation", "TrainContext", "init"]

_signal_stop = threading.Event()
_handler_installed = False


class InvalidHP(Exception):
    """Raise inside `with det.core.init()` to reject the trial's
    hyperparameters: the process exits 3 and the trial ends INVALID_HP."""


def _install_sigterm_handler():
    global _handler_installed
    if _handler_installed or threading.current_thread() is not \
            threading.main_thread():
        return
    signal.signal(signal.SIGTERM, lambda *_: _signal_stop.set())
    _handler_installed = True


def _as_metrics(metrics, where):
    if not isinstance(metrics, dict):
        raise TypeError(f"{where}: metrics must be a dict of name -> number, "
                        f"got {type(metrics).__name__}")
    out = {}
    for k, v in metrics.items():
        if not isinstance(k, str):
            raise TypeError(f"{where}: metric name {k!r} is not a string")
        if isinstance(v, bool):
            v = float(v)
        try:
            out[k] = float(v)  # int, float, numpy scalar, 0-d tensor
        except (TypeError, ValueError):
            raise TypeError(
                f"{where}: metric {k!r} is {type(v).__name__} {v!r}; det "
                f"stores numbers only") from None
    return out


class TrainContext:
    """Determined's core.train."""

    def __init__(self, ctx):
        self._ctx = ctx
        self._validated_steps = set()

    def _report(self, group, steps_completed, metrics, where):
        if (not isinstance(steps_completed, int)
                or isinstance(steps_completed, bool) or steps_completed < 0):
            raise ValueError(f"{where}: steps_completed must be an int >= 0, "
                             f"got {steps_completed!r}")
        values = _as_metrics(metrics, where)
        if self._ctx.distributed.rank != 0:
            return  # as det-trial: only the chief reports
        from det.v1 import common_pb2
        r = common_pb2.MetricReport(trial_id=self._ctx._spec.trial_id,
                                    group=group,
                                    steps_completed=steps_completed,
                                    time_us=int(time.time() * 1e6))
        r.metrics.update(values)
        self._ctx._sender.submit(r)

    def report_training_metrics(self, steps_completed, metrics,
                                batch_metrics=None):
        self._report(1, steps_completed, metrics, "report_training_metrics")

    def report_validation_metrics(self, steps_completed, metrics):
        self._report(2, steps_completed, metrics, "report_validation_metrics")
        self._validated_steps.add(steps_completed)

    def report_metrics(self, group, steps_completed, metrics):
        groups = {"training": 1, "validation": 2}
        if group not in groups:
            raise ValueError(f"report_metrics: group must be 'training' or "
                             f"'validation' (det stores no others), got "
                             f"{group!r}")
        if group == "validation":
            self._validated_steps.add(steps_completed)
        self._report(groups[group], steps_completed, metrics,
                     "report_metrics")

    def report_progress(self, progress):
        """Accepted for compatibility; the master computes progress."""

    def set_status(self, status):
        """Accepted for compatibility; det shows no trial status line."""


class PreemptContext:
    """Determined's core.preempt. should_preempt() is true once the worker
    asked the trial to stop (ASHA stopped it, pause, cancel, kill) or the
    process got SIGTERM. The worker is polled at most once a second."""

    POLL_PERIOD_S = 1.0

    def __init__(self, ctx):
        self._ctx = ctx
        self._seen = _env.on_cluster() and _env.stop_hint()
        self._last_poll = time.monotonic()

    def _local(self):
        if self._seen or _signal_stop.is_set():
            self._seen = True
            return True
        if not _env.on_cluster():
            return False
        now = time.monotonic()
        if now - self._last_poll < self.POLL_PERIOD_S:
            return False
        self._last_poll = now
        from det import _trial_api
        self._seen = _trial_api.should_stop()
        return self._seen

    def should_preempt(self, auto_ack=True):
        local = self._local()
        d = self._ctx.distributed
        if d.size > 1:
            import torch.distributed as dist
            if dist.is_initialized():
                # All ranks stop at the same step: the chief decides.
                return bool(d.broadcast(local))
        return local

    def acknowledge_preemption_signal(self):
        """Accepted for compatibility (det needs no acknowledgement)."""


class Context:
    """What det.core.init() returns: .train, .checkpoint, .preempt,
    .distributed, .searcher, .info. Close it (or leave the `with`) to wait
    for every report to be acknowledged."""

    def __init__(self, distributed=None, checkpoint_storage=None):
        self._spec = _env.spec()
        from det._info import ClusterInfo
        self._info = ClusterInfo(self._spec)
        self.info = self._info if (_env.on_cluster() or
                                   _env.standalone_requested()) else None
        self.distributed = distributed or DistributedContext.from_environment()
        directory = self._spec.checkpoint_dir
        if not _env.on_cluster() and isinstance(checkpoint_storage, str):
            directory = checkpoint_storage
        os.makedirs(directory, exist_ok=True)
        from det.core import _reports
        if _env.on_cluster():
            journal = None
            if self.distributed.rank == 0:
                journal = os.path.join(
                    directory, ".det-reports",
                    f"trial-{self._spec.trial_id}.reports")
            self._sender = _reports.ReportSender(journal)
        else:
            self._sender = _reports.PrintingSender()
        self.train = TrainContext(self)
        self.checkpoint = CheckpointContext(self, directory)
        self.preempt = PreemptContext(self)
        self.searcher = SearcherContext(self)
        self._closed = False
        # A script that never closes its context still delivers its
        # reports when the interpreter exits normally.
        import atexit
        atexit.register(self.close)

    def _report_checkpoint(self, checkpoint):
        self._sender.flush()
        if _env.on_cluster():
            from det import _trial_api
            _trial_api.report_checkpoint(checkpoint)
        else:
            import json
            print(json.dumps({"kind": "checkpoint", "uuid": checkpoint.uuid,
                              "steps_completed": checkpoint.steps_completed,
                              "path": os.path.join(self.checkpoint.directory,
                                                   checkpoint.uuid)}),
                  flush=True)

    def close(self):
        if not self._closed:
            self._closed = True
            self._sender.close()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        self.close()
        if exc_type is not None and issubclass(exc_type, InvalidHP):
            import sys
            print(f"invalid hyperparameters: {exc}", file=sys.stderr)
            raise SystemExit(3)
        return False


def init(*, distributed=None, checkpoint_storage=None, preempt_mode=None,
         tensorboard_mode=None, **unused):
    """Determined's det.core.init(). On a cluster everything comes from the
    worker; standalone, checkpoint_storage (a folder) overrides
    --checkpoint-dir / DET_CHECKPOINT_DIR (default ./checkpoints).
    preempt_mode and tensorboard_mode are accepted and ignored."""
    _install_sigterm_handler()
    return Context(distributed=distributed,
                   checkpoint_storage=checkpoint_storage)
