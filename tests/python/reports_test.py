"""The report guarantee of det.core (python/det/core/_reports.py), against
a stand-in worker (a TrialService served by this test) so the timing is
under the test's control:

- report calls return without waiting for the worker (here the worker
  refuses every call with UNAVAILABLE, so a call that waited would hang
  for the retry budget);
- a process SIGKILLed after its report calls returned loses nothing: the
  trial's next run resends the journal, and the worker gets every report;
- a report the worker refuses makes the script fail with the message.
"""

import concurrent.futures
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import unittest

import grpc

from det.v1 import common_pb2, trial_pb2, trial_pb2_grpc

TOKEN = "trial-token"
# The killed run's token: its reports are always refused as UNAVAILABLE,
# also those still queued in this server when the run died, so whatever
# arrives came from the journal the next run resent.
DOWN_TOKEN = "down-run-token"
N = 200


class FakeWorker(trial_pb2_grpc.TrialServiceServicer):
    def __init__(self, checkpoint_dir):
        self.checkpoint_dir = checkpoint_dir
        self.mode = "up"  # "up": accept; "refuse": INVALID_ARGUMENT
        self.lock = threading.Lock()
        self.received = []
        self.checkpoints = []

    def _auth(self, context):
        md = dict(context.invocation_metadata())
        token = md.get("x-det-trial-token")
        if token not in (TOKEN, DOWN_TOKEN):
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad trial token")
        return token

    def GetSpec(self, request, context):
        self._auth(context)
        s = common_pb2.TrialSpec(trial_id=5, experiment_id=2, run_id=0,
                                 target_batches=N,
                                 checkpoint_dir=self.checkpoint_dir)
        s.hparams.update({"lr": 0.1})
        return s

    def ReportMetrics(self, request, context):
        if self._auth(context) == DOWN_TOKEN:
            context.abort(grpc.StatusCode.UNAVAILABLE, "worker restarting")
        if self.mode == "refuse":
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          "metric report steps_completed is bad")
        with self.lock:
            self.received.append((request.group, request.steps_completed,
                                  dict(request.metrics)))
        return trial_pb2.ReportResponse()

    def ReportCheckpoint(self, request, context):
        self._auth(context)
        with self.lock:
            self.checkpoints.append(request)
        return trial_pb2.ReportResponse()

    def ShouldStop(self, request, context):
        self._auth(context)
        return trial_pb2.ShouldStopResponse(stop=False)


SCRIPT = textwrap.dedent("""
    import sys, time
    import det
    mode = sys.argv[1]
    with det.core.init() as core:
        if mode == "report":
            t0 = time.monotonic()
            for s in range(1, %d + 1):
                core.train.report_training_metrics(
                    steps_completed=s, metrics={"loss": 1.0 / s})
            elapsed = time.monotonic() - t0
            print(f"returned {elapsed:.6f}", flush=True)
            time.sleep(600)  # the test SIGKILLs us here
        elif mode == "refused":
            core.train.report_validation_metrics(
                steps_completed=1, metrics={"acc": 0.5})
            core.train.report_validation_metrics(
                steps_completed=2, metrics={"acc": 0.6})
        # mode "resume": nothing new; closing flushes the resent journal
""" % N)


class ReportsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="det-reports.")
        self.worker = FakeWorker(os.path.join(self.dir, "ckpt"))
        self.server = grpc.server(
            concurrent.futures.ThreadPoolExecutor(max_workers=8))
        trial_pb2_grpc.add_TrialServiceServicer_to_server(self.worker,
                                                          self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.env = dict(os.environ, DET_TRIAL_API_ADDR=f"127.0.0.1:{port}",
                        DET_TRIAL_TOKEN=TOKEN, DET_RANK="0",
                        DET_WORLD_SIZE="1")
        self.script = os.path.join(self.dir, "script.py")
        with open(self.script, "w") as f:
            f.write(SCRIPT)

    def tearDown(self):
        self.server.stop(0)

    def run_script(self, mode, timeout=60):
        return subprocess.run([sys.executable, self.script, mode],
                              env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def test_sigkill_after_return_loses_nothing(self):
        p = subprocess.Popen([sys.executable, self.script, "report"],
                             env=dict(self.env, DET_TRIAL_TOKEN=DOWN_TOKEN), stdout=subprocess.PIPE, text=True)
        try:
            line = p.stdout.readline()
            self.assertTrue(line.startswith("returned"), line)
            elapsed = float(line.split()[1])
            # The worker answered none of them, yet all returned.
            self.assertLess(elapsed, 5.0)
            print(f"{N} report calls returned in {elapsed * 1e3:.1f} ms "
                  f"({elapsed / N * 1e6:.0f} us each) with the worker down",
                  file=sys.stderr)
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=10)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        self.assertEqual(self.worker.received, [])
        r = self.run_script("resume")
        self.assertEqual(r.returncode, 0, r.stderr)
        steps = sorted(s for _, s, _ in self.worker.received)
        self.assertEqual(steps, list(range(1, N + 1)))
        self.assertEqual(self.worker.received[0][2], {"loss": 1.0})
        journal = os.path.join(self.dir, "ckpt", ".det-reports",
                               "trial-5.reports")
        self.assertEqual(os.path.getsize(journal), 0,
                         "journal not emptied once all was acknowledged")

    def test_refused_report_fails_the_script(self):
        self.worker.mode = "refuse"
        r = self.run_script("refused")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("metric report steps_completed is bad", r.stderr)
        self.assertIn("TrialApiError", r.stderr)


if __name__ == "__main__":
    unittest.main()
