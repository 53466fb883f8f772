"""Non-blocking metric reports with a durability guarantee.

The guarantee: when report_training_metrics / report_validation_metrics
returns, the report has been written (one write(2), no fsync) to the
trial's report journal, `<checkpoint_dir>/.det-reports/trial-<id>.reports`,
and queued for a background sender thread. A write that returned is in the
kernel's page cache, so it survives the process being SIGKILLed (not the
machine losing power). The sender hands queued reports to the worker in
batches, up to BATCH calls in flight at once (the proto has one unary
ReportMetrics, so a batch is pipelined calls, not one message). A report
the sender could not deliver because the process died is delivered by the
trial's next run, which resends its journal before anything else; the
worker and master store a report once per (trial, group, steps_completed),
so a resent or replayed report is never duplicated and the first value
stored wins.

Reports are acknowledged (the worker has them) when flush() returns:
before every checkpoint is reported, and when core.init()'s context closes.
Once everything in the journal is acknowledged the journal is emptied.

A report the worker refuses (not a transient UNAVAILABLE) makes the next
report call, flush() or close raise TrialApiError: the trial fails rather
than run on with metrics lost.
"""

import base64
import collections
import os
import sys
import threading
import time

import grpc

from det import _trial_api

BATCH = 64


class ReportSender:
    def __init__(self, journal_path=None):
        self._cv = threading.Condition()
        self._queue = collections.deque()
        self._submitted = 0
        self._acked = 0
        self._error = None
        self._closed = False
        self._fd = None
        self._journal_path = journal_path
        old = []
        if journal_path:
            try:
                os.makedirs(os.path.dirname(journal_path), exist_ok=True)
                old = self._read_journal(journal_path)
                self._fd = os.open(journal_path,
                                   os.O_WRONLY | os.O_CREAT | os.O_APPEND |
                                   os.O_CLOEXEC, 0o644)
            except OSError as e:
                print(f"det: cannot keep a report journal at {journal_path}"
                      f" ({e.strerror}); reports not yet acknowledged are "
                      f"lost if this process is killed", file=sys.stderr)
                self._fd = None
        # Reports an earlier run journaled but may not have delivered go
        # first, so the values that run reported win over any replay.
        for r in old:
            self._queue.append(r)
            self._submitted += 1
        self._thread = threading.Thread(target=self._run, name="det-reports",
                                        daemon=True)
        self._thread.start()

    @staticmethod
    def _read_journal(path):
        from det.v1 import common_pb2
        out = []
        try:
            with open(path, "rb") as f:
                for line in f:
                    try:
                        r = common_pb2.MetricReport()
                        r.ParseFromString(base64.b64decode(line.strip(),
                                                           validate=True))
                        out.append(r)
                    except Exception:  # a torn line: skip it
                        continue
        except FileNotFoundError:
            pass
        return out

    def submit(self, report):
        line = base64.b64encode(report.SerializeToString()) + b"\n"
        with self._cv:
            self._raise_if_failed()
            if self._closed:
                raise RuntimeError("det.core context is closed")
            if self._fd is not None:
                os.write(self._fd, line)
            self._queue.append(report)
            self._submitted += 1
            self._cv.notify_all()

    def flush(self, timeout=None):
        """Waits until every report submitted so far is acknowledged."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            target = self._submitted
            while self._acked < target and self._error is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise TimeoutError(
                        f"{target - self._acked} metric reports not "
                        f"acknowledged by the worker within {timeout} s")
                self._cv.wait(left)
            self._raise_if_failed()

    def close(self):
        try:
            self.flush()
        finally:
            with self._cv:
                self._closed = True
                self._cv.notify_all()
            self._thread.join(timeout=5)
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def _raise_if_failed(self):
        if self._error is not None:
            raise self._error

    def _run(self):
        while True:
            with self._cv:
                while not self._queue and not self._closed:
                    self._cv.wait()
                if not self._queue:
                    return
                batch = [self._queue.popleft()
                         for _ in range(min(BATCH, len(self._queue)))]
            err = self._send(batch)
            with self._cv:
                if err is not None:
                    self._error = err
                    self._queue.clear()
                    self._cv.notify_all()
                    return
                self._acked += len(batch)
                if self._acked == self._submitted and self._fd is not None:
                    # Everything journaled is with the worker: start afresh.
                    os.ftruncate(self._fd, 0)
                self._cv.notify_all()

    def _send(self, batch):
        """Sends `batch` as pipelined calls, retrying the UNAVAILABLE ones;
        returns None or the TrialApiError that ends reporting."""
        stub = _trial_api.stub()
        give_up = time.monotonic() + _trial_api.RETRY_BUDGET_S
        backoff = 0.05
        pending = batch
        attempt = 0
        while pending:
            attempt += 1
            futures = [stub.ReportMetrics.future(
                r, metadata=_trial_api._metadata(),
                timeout=_trial_api.CALL_TIMEOUT_S) for r in pending]
            retry = []
            for r, f in zip(pending, futures):
                try:
                    f.result()
                except grpc.RpcError as e:
                    if (e.code() != grpc.StatusCode.UNAVAILABLE
                            or time.monotonic() + backoff > give_up):
                        return _trial_api.TrialApiError(
                            f"reporting metrics (steps_completed="
                            f"{r.steps_completed}) failed after {attempt} "
                            f"attempt{'s' if attempt > 1 else ''}: "
                            f"{_trial_api.describe(e)}")
                    retry.append(r)
            pending = retry
            if pending:
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
        return None


class PrintingSender:
    """Standalone: each report is printed as one JSON line on stdout."""

    def submit(self, report):
        import json
        group = {1: "training", 2: "validation"}.get(report.group, "?")
        print(json.dumps({"kind": f"{group}_metrics",
                          "steps_completed": report.steps_completed,
                          "metrics": dict(report.metrics)}), flush=True)

    def flush(self, timeout=None):
        pass

    def close(self):
        pass
