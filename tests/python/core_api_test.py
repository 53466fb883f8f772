"""The Python API on real processes: a det master (with a token) and a
worker with 2 slots run tests/python/core_trial/train.py, a Core API
script, in an ASHA search created with det.experimental.client.

Checks: ASHA stops some trials early and the best metric is the best
validation; every trial process is SIGKILLed once, right after a report
returned, and resumes from its checkpoint with every training step
reported exactly once and the killed run's last reports kept (the report
journal); pause checkpoints and stops the trials and activate resumes
them; the client reads the best metrics, the top checkpoint, trials,
metrics and logs, and a wrong token raises UnauthenticatedException; the
older searcher-operations form runs to completion.
"""

import os
import subprocess
import sys
import time
import unittest

from cluster import Cluster, wait_for
from det.experimental import client

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = "py-test-token"
MAX_STEPS = 40

ASHA = {
    "name": "py-core-asha",
    "entrypoint": "python3 train.py",
    "hyperparameters": {
        "x": {"type": "double", "minval": -1.0, "maxval": 1.0},
        "sleep_ms": 40, "max_steps": MAX_STEPS, "validate_every": 10,
        "checkpoint_every": 5, "kill_on_run0_at": 7,
    },
    "searcher": {
        "name": "adaptive_asha", "metric": "validation_accuracy",
        "smaller_is_better": False, "max_trials": 6,
        "max_length": {"batches": MAX_STEPS}, "divisor": 4, "max_rungs": 2,
        "mode": "aggressive", "max_concurrent_trials": 2,
    },
    "max_restarts": 3,
    "reproducibility": {"experiment_seed": 11},
}

OLD_FORM = {
    "name": "py-core-old-form",
    "entrypoint": "python3 train.py",
    "hyperparameters": {"x": 0.3, "old_form": True, "checkpoint_every": 100},
    "searcher": {"name": "single", "metric": "validation_accuracy",
                 "smaller_is_better": False, "max_length": {"batches": 20}},
    "min_validation_period": {"batches": 10},
}


class CoreApiTest(unittest.TestCase):
    def test_core_api_on_a_cluster(self):
        with Cluster(token=TOKEN) as c:
            c.start_master()
            c.start_worker("w1", 2)
            self.check_wrong_token(c)
            client.login(master=c.address, token=TOKEN)
            self.run_asha(c)
            self.run_old_form()

    def check_wrong_token(self, c):
        client.login(master=c.address, token="not-the-token")
        with self.assertRaises(client.UnauthenticatedException) as cm:
            client.get_experiment(1)
        self.assertIn("token", str(cm.exception))
        self.assertEqual(cm.exception.code, "UNAUTHENTICATED")

    def run_asha(self, c):
        t0 = time.monotonic()
        exp = client.create_experiment(ASHA, os.path.join(HERE, "core_trial"))
        with self.assertRaises(client.NotFoundException):
            client.get_experiment(exp.id + 1000)

        # Pause once a trial is past its SIGKILL and restart, then activate.
        def some_trial_resumed():
            return any(t.reload()._proto.restarts >= 1 and
                       t._proto.steps_completed >= 8
                       for t in exp.list_trials())
        wait_for(some_trial_resumed, 90, "a trial to be resumed after SIGKILL")
        exp.pause()
        wait_for(lambda: exp.reload()._proto.trials_running == 0 and
                 exp.state == client.ExperimentState.PAUSED, 60,
                 "the paused experiment's trials to stop")
        paused = [t for t in exp.list_trials()
                  if t._proto.state == client.ExperimentState.PAUSED.value]
        print("at pause:", [(t.id, client.ExperimentState(t._proto.state).name,
                             t._proto.steps_completed) for t in
                            exp.list_trials()], file=sys.stderr)
        self.assertTrue(paused, "no trial was paused")
        # A trial that had trained checkpointed when it was stopped; one
        # paused before its first step (created by ASHA just then, or still
        # starting) has nothing to keep.
        trained = [t for t in paused if t._proto.steps_completed > 0]
        self.assertTrue(trained, "no paused trial had trained")
        for t in trained:
            self.assertTrue(t._proto.latest_checkpoint.uuid,
                            f"paused trial {t.id} has no checkpoint")
        exp.activate()
        self.assertEqual(exp.wait(timeout=150),
                         client.ExperimentState.COMPLETED)
        print(f"ASHA experiment: {time.monotonic() - t0:.1f} s",
              file=sys.stderr)

        trials = exp.list_trials()
        self.assertEqual(len(trials), 6)
        best_value = None
        killed_and_resumed = 0
        for t in trials:
            p = t.reload()._proto
            train = list(t.metrics("training"))
            steps = [m.steps_completed for m in train]
            # Nothing duplicated, nothing lost: steps 1..N, once each.
            self.assertEqual(steps, list(range(1, p.steps_completed + 1)),
                             f"trial {t.id}")
            by_step = {m.steps_completed: m.metrics for m in train}
            if p.steps_completed >= 7 and by_step[7]["run"] == 0:
                # The first run was SIGKILLed right after reporting step 7;
                # its reports of steps 6 and 7 survived (the restarted run,
                # resuming from the checkpoint at 5, re-reported them with
                # run 1, which the store ignores).
                self.assertEqual(by_step[6]["run"], 0)
                self.assertGreaterEqual(p.restarts, 1)
                if p.steps_completed >= 8:
                    self.assertGreaterEqual(by_step[8]["run"], 1)
                    killed_and_resumed += 1
            for m in t.metrics("validation"):
                v = m.metrics["validation_accuracy"]
                best_value = v if best_value is None else max(best_value, v)
        self.assertGreaterEqual(killed_and_resumed, 1)
        finals = [t._proto.steps_completed for t in trials]
        print("final steps:", finals, "restarts:",
              [t._proto.restarts for t in trials], file=sys.stderr)
        self.assertTrue(any(s < MAX_STEPS for s in finals),
                        f"ASHA stopped no trial early: {finals}")
        self.assertIn(MAX_STEPS, finals)

        best = exp.best_validation_metrics
        self.assertAlmostEqual(best["validation_accuracy"], best_value)
        top = exp.top_checkpoint()
        self.assertIsNotNone(top)
        self.assertEqual(top.trial_id, exp.best_trial_id)
        # The best checkpoint (checkpoints every 5 steps, validations every
        # 10, so the best validation has one) and one GC kept.
        self.assertAlmostEqual(top.searcher_metric, best_value)
        self.assertEqual(top.validation_metrics["validation_accuracy"],
                         top.searcher_metric)
        self.assertEqual(exp.list_checkpoints(max_results=1)[0].uuid,
                         top.uuid)
        best_trial = client.get_trial(top.trial_id)
        self.assertEqual(best_trial.top_checkpoint().uuid, top.uuid)
        latest = best_trial.latest_checkpoint()
        self.assertTrue(os.path.isdir(os.path.join(c.checkpoints,
                                                   latest.uuid)),
                        f"no folder for the latest checkpoint {latest.uuid}")
        self.assertTrue(os.path.isdir(os.path.join(c.checkpoints, top.uuid)),
                        f"no checkpoint folder {top.uuid}")
        self.assertIn("state.json", top.file_sha256)
        resumed = client.get_trial(
            next(t for t in trials if t._proto.restarts >= 1).id)
        logs = list(resumed.logs(follow=True))  # ends: the trial has ended
        self.assertTrue(any("resumed from" in line for line in logs), logs)

        # examples/query_best/query_best.py, as a user would run it.
        r = subprocess.run(
            [sys.executable, os.path.join(HERE, "..", "..", "examples",
                                          "query_best", "query_best.py"),
             str(exp.id)], capture_output=True, text=True, timeout=60,
            env=dict(os.environ, DET_MASTER=c.address, DET_TOKEN=TOKEN))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("state: COMPLETED", r.stdout)
        self.assertIn(f"top checkpoint: {top.uuid}", r.stdout)
        self.assertIn("'validation_accuracy': ", r.stdout)

    def run_old_form(self):
        exp = client.create_experiment(OLD_FORM,
                                       os.path.join(HERE, "core_trial"))
        self.assertEqual(exp.wait(timeout=60),
                         client.ExperimentState.COMPLETED)
        (t,) = exp.list_trials()
        val = [m.steps_completed for m in t.metrics("validation")]
        self.assertEqual(val, [10, 20])
        self.assertEqual(t.reload()._proto.steps_completed, 20)
        self.assertIsNotNone(t.top_checkpoint())


if __name__ == "__main__":
    unittest.main()
