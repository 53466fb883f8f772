"""examples/pytorch_cifar10 on a small CIFAR-10 subset, on real det-master
and det-worker processes: two trials in an ASHA search (one may be stopped
at the first rung), paused after the first validation and activated again
(the paused trial resumes from its checkpoint), validation metrics with
the "batches" time metric, and a best checkpoint that holds the model.

Needs python3-torch and CIFAR-10 (DET_TEST_DATA_DIR, as the other
trainer tests); exits 77 (CTest: skipped) without them."""

import os
import sys
import time
import unittest

from cluster import Cluster, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
EXAMPLE = os.path.join(HERE, "..", "..", "examples", "pytorch_cifar10")
DATA = os.environ.get("DET_TEST_DATA_DIR", "")

CONFIG = {
    "name": "pytorch-cifar10-test",
    "entrypoint": "python3 train.py",
    "hyperparameters": {
        "global_batch_size": 32,
        "learning_rate": {"type": "categorical", "vals": [0.001, 0.003]},
        "n_filters1": 8, "n_filters2": 16, "hidden_units": 32,
        "dropout": 0.2, "max_batches": 64, "report_every": 4,
        "validate_every": 8,
    },
    # max_length form until det parses searcher.time_metric/max_time.
    "searcher": {"name": "adaptive_asha", "metric": "validation_accuracy",
                 "smaller_is_better": False, "max_trials": 2,
                 "max_length": {"batches": 64}, "divisor": 2,
                 "max_rungs": 2, "mode": "aggressive",
                 "max_concurrent_trials": 2},
    "max_restarts": 1,
    "data": {"train_files": 1, "train_limit": 2048,
             "validation_limit": 500},
}


class PyTorchExampleTest(unittest.TestCase):
    def test_example_on_a_subset(self):
        from det.experimental import client
        with Cluster() as c:
            c.start_master()
            c.start_worker("w1", 2, data_dir=DATA)
            client.login(master=c.address)
            t0 = time.monotonic()
            exp = client.create_experiment(CONFIG, EXAMPLE)
            wait_for(lambda: any(t.reload()._proto.has_best_metric
                                 for t in exp.list_trials()), 150,
                     "a first validation")
            exp.pause()
            wait_for(lambda: exp.reload()._proto.trials_running == 0, 60,
                     "the trials to stop on pause")
            exp.activate()
            state = exp.wait(timeout=200)
            print(f"example experiment: {time.monotonic() - t0:.1f} s",
                  file=sys.stderr)
            self.assertEqual(state, client.ExperimentState.COMPLETED)
            trials = exp.list_trials()
            self.assertEqual(len(trials), 2)
            for t in trials:
                val = list(t.metrics("validation"))
                self.assertTrue(val, f"trial {t.id} never validated")
                for m in val:
                    self.assertEqual(m.metrics["batches"], m.steps_completed)
                    self.assertTrue(0.0 <= m.metrics["validation_accuracy"]
                                    <= 1.0)
                steps = [m.steps_completed for m in t.metrics("training")]
                self.assertEqual(steps, sorted(set(steps)))
            finals = sorted(t._proto.steps_completed for t in trials)
            self.assertEqual(finals[-1], 64, finals)
            logs = [line for t in trials for line in t.logs()]
            resumed = [l for l in logs if "resumed from checkpoint" in l]
            preempted = [l for l in logs if "preempted at batch" in l]
            self.assertTrue(preempted, "no trial honoured the pause")
            self.assertTrue(resumed, "no trial resumed after activate")
            top = exp.top_checkpoint()
            self.assertIsNotNone(top)
            self.assertIn("state.pt", top.file_sha256)
            self.assertAlmostEqual(
                exp.best_validation_metrics["validation_accuracy"],
                max(m.metrics["validation_accuracy"] for t in trials
                    for m in t.metrics("validation")))


if __name__ == "__main__":
    try:
        import torch  # noqa: F401
    except ImportError:
        print("python3-torch is not installed: skipped", file=sys.stderr)
        sys.exit(77)
    if not DATA or not os.path.isfile(os.path.join(DATA, "test_batch.bin")):
        print("DET_TEST_DATA_DIR is not a CIFAR-10 folder: skipped",
              file=sys.stderr)
        sys.exit(77)
    unittest.main()
