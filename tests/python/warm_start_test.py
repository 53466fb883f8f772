"""Warm starts through the Python Core API on real processes: a trial of an
experiment with searcher.source_trial_id sees the source trial's latest
checkpoint as det.get_cluster_info().latest_checkpoint (as in Determined),
opens it with core.checkpoint.restore_path (its files checked against the
SHA-256s the master sent, under the source experiment's checkpoint
storage) and starts its step count at 0; DET_WARM_START_DIR names the
folder."""

import os
import tempfile
import unittest

from cluster import Cluster
from det.experimental import client

HERE = os.path.dirname(os.path.abspath(__file__))


def config(name, storage, delta, extra=None):
    c = {
        "name": name,
        "entrypoint": "python3 train.py",
        "hyperparameters": {"delta": delta, "max_steps": 4},
        "searcher": {"name": "single", "metric": "w",
                     "smaller_is_better": False,
                     "max_length": {"batches": 4}},
        "checkpoint_storage": {"type": "shared_fs", "host_path": storage},
        "max_restarts": 0,
    }
    c["searcher"].update(extra or {})
    return c


class WarmStartTest(unittest.TestCase):
    def test_core_api_sees_the_warm_start_as_latest_checkpoint(self):
        ctx = os.path.join(HERE, "warm_trial")
        with Cluster() as c, tempfile.TemporaryDirectory() as d:
            c.start_master()
            c.start_worker("w1", 1)
            client.login(master=c.address)
            src = client.create_experiment(
                config("src", os.path.join(d, "src"), 1.0), ctx)
            self.assertEqual(src.wait(timeout=120),
                             client.ExperimentState.COMPLETED)
            src_trial = src.list_trials()[0]
            uuid = src_trial.reload()._proto.latest_checkpoint.uuid
            self.assertTrue(uuid)

            # Another checkpoint storage: the warm start is found under the
            # source's.
            warm = client.create_experiment(
                config("warm", os.path.join(d, "warm"), 0.5,
                       {"source_trial_id": src_trial.id}), ctx)
            self.assertEqual(warm.wait(timeout=120),
                             client.ExperimentState.COMPLETED)
            t = warm.list_trials()[0]
            self.assertEqual(t.reload()._proto.warm_start_uuid, uuid)
            train = list(t.metrics("training"))
            # Steps from 1 (the step count started at 0), weights from the
            # source's 4.0.
            self.assertEqual([m.steps_completed for m in train], [1, 2, 3, 4])
            self.assertEqual([m.metrics["w"] for m in train],
                             [4.5, 5.0, 5.5, 6.0])
            logs = "\n".join(t.logs())
            self.assertIn(f"latest_checkpoint={uuid} steps=0 w=4.0", logs)
            # Its own checkpoint went to its own storage.
            own = t.reload()._proto.latest_checkpoint.uuid
            self.assertTrue(os.path.isdir(os.path.join(d, "warm", own)))
            self.assertFalse(os.path.exists(os.path.join(d, "warm", uuid)))


if __name__ == "__main__":
    unittest.main()
