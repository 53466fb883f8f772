"""Standalone mode: a Core API script run by hand (no worker) takes its
hyperparameters from --hparams, prints its reports as JSON lines, keeps
checkpoints in a local folder and resumes from one with --restore; bad
input is a clear error."""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "core_trial", "train.py")
HP = {"x": 0.3, "max_steps": 12, "validate_every": 6, "checkpoint_every": 5}


def run(args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DET_")}
    return subprocess.run([sys.executable, SCRIPT] + args, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60)


class StandaloneTest(unittest.TestCase):
    def test_run_by_hand_then_resume(self):
        with tempfile.TemporaryDirectory() as d:
            ckpt = os.path.join(d, "ckpts")
            r = run(["--hparams", json.dumps(HP), "--checkpoint-dir", ckpt], d)
            self.assertEqual(r.returncode, 0, r.stderr)
            lines = [json.loads(l) for l in r.stdout.splitlines()
                     if l.startswith("{")]
            train = [l["steps_completed"] for l in lines
                     if l["kind"] == "training_metrics"]
            self.assertEqual(train, list(range(1, 13)))
            val = [l for l in lines if l["kind"] == "validation_metrics"]
            self.assertEqual([v["steps_completed"] for v in val], [6, 12])
            self.assertIn("validation_accuracy", val[0]["metrics"])
            cks = [l for l in lines if l["kind"] == "checkpoint"]
            self.assertEqual([c["steps_completed"] for c in cks], [5, 10, 12])
            first = cks[0]["uuid"]
            folder = os.path.join(ckpt, first)
            self.assertEqual(sorted(os.listdir(folder)),
                             ["SHA256SUMS", "metadata.json", "state.json"])
            with open(os.path.join(folder, "metadata.json")) as f:
                self.assertEqual(json.load(f), {"steps_completed": 5})

            r = run(["--hparams", json.dumps(HP), "--checkpoint-dir", ckpt,
                     "--restore", first], d)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn(f"resumed from {first} at step 5", r.stdout)
            train = [json.loads(l)["steps_completed"]
                     for l in r.stdout.splitlines()
                     if '"training_metrics"' in l]
            self.assertEqual(train, list(range(6, 13)))

            # A corrupted checkpoint is refused, naming the file.
            with open(os.path.join(folder, "state.json"), "a") as f:
                f.write(" ")
            r = run(["--hparams", json.dumps(HP), "--checkpoint-dir", ckpt,
                     "--restore", first], d)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("state.json does not match its stored SHA-256",
                          r.stderr)

    def test_bad_hparams_are_a_clear_error(self):
        with tempfile.TemporaryDirectory() as d:
            r = run(["--hparams", "{x: 1"], d)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("are not valid JSON", r.stderr)
            self.assertIn("line 1 column 2", r.stderr)

    def test_plain_run_has_no_cluster_info(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("DET_")}
        r = subprocess.run(
            [sys.executable, "-c", "import det; print(det.get_cluster_info())"],
            env=env, capture_output=True, text=True, timeout=30)
        self.assertEqual(r.stdout.strip(), "None", r.stderr)


if __name__ == "__main__":
    unittest.main()
