"""slots_per_trial: 2 with the Python API: both ranks join torch.distributed
from det's rendezvous, collectives work, only the chief's reports count.
Exits 77 (skipped) without python3-torch."""

import os
import sys
import unittest

from cluster import Cluster

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = {
    "name": "py-distributed",
    "entrypoint": "python3 train.py",
    "hyperparameters": {"x": 1},
    "resources": {"slots_per_trial": 2},
    "searcher": {"name": "single", "metric": "validation_accuracy",
                 "smaller_is_better": False, "max_length": {"batches": 5}},
    "max_restarts": 0,
}


class DistributedTest(unittest.TestCase):
    def test_two_ranks(self):
        from det.experimental import client
        with Cluster() as c:
            c.start_master()
            c.start_worker("w1", 2)
            client.login(master=c.address)
            exp = client.create_experiment(CONFIG,
                                           os.path.join(HERE, "dist_trial"))
            self.assertEqual(exp.wait(timeout=150),
                             client.ExperimentState.COMPLETED)
            (t,) = exp.list_trials()
            (v,) = list(t.metrics("validation"))
            self.assertEqual(v.metrics, {"validation_accuracy": 3.0,
                                         "size": 2.0, "gathered": 1.0,
                                         "world": 2.0})
            steps = [m.steps_completed for m in t.metrics("training")]
            self.assertEqual(steps, [1, 2, 3, 4, 5])
            logs = list(t.logs())
            for r in (0, 1):
                self.assertTrue(any(f"rank {r} of 2 done" in l for l in logs),
                                logs)
            self.assertIsNotNone(t.top_checkpoint())


if __name__ == "__main__":
    try:
        import torch  # noqa: F401
    except ImportError:
        print("python3-torch is not installed: skipped", file=sys.stderr)
        sys.exit(77)
    unittest.main()
