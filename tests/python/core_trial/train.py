"""A Determined Core API script (0.38 form, plus the older searcher
operations form) that "trains" a quadratic without torch, for the Python
tests. One line differs from Determined: `import det`.

Hyperparameters: x (the point; best at 0.3), sleep_ms per step,
max_steps, validate_every, checkpoint_every (steps), kill_on_run0_at (SIGKILL itself right after the
training report at that step returned, in a run that did not resume from a
checkpoint), old_form (use
core.searcher.operations()).
"""

import json
import os
import signal
import time

import det


def accuracy(x, steps):
    return max(0.0, 0.9 - (x - 0.3) ** 2 - 5.0 / (10.0 + steps))


def main():
    info = det.get_cluster_info()
    assert info is not None, "run under a det worker, or give --hparams"
    hp = info.trial.hparams
    # Whether this run resumed from a checkpoint (reported as a metric so
    # the test can tell which run reported a step).
    run = 0 if info.latest_checkpoint is None else 1
    x = hp["x"]
    with det.core.init() as core:
        assert core.distributed.rank == 0 and core.distributed.size == 1
        steps = 0
        if info.latest_checkpoint is not None:
            with core.checkpoint.restore_path(info.latest_checkpoint) as path:
                with open(os.path.join(path, "state.json")) as f:
                    steps = json.load(f)["steps"]
            print(f"run {run}: resumed from {info.latest_checkpoint} at step "
                  f"{steps}", flush=True)

        def checkpoint():
            with core.checkpoint.store_path({"steps_completed": steps}) as (
                    path, uuid):
                with open(os.path.join(path, "state.json"), "w") as f:
                    json.dump({"steps": steps, "x": x}, f)

        def step():
            nonlocal steps
            time.sleep(hp.get("sleep_ms", 0) / 1000.0)
            steps += 1
            core.train.report_training_metrics(
                steps_completed=steps,
                metrics={"loss": 1.0 - accuracy(x, steps), "run": run})
            if run == 0 and steps == hp.get("kill_on_run0_at", -1):
                os.kill(os.getpid(), signal.SIGKILL)
            if steps % hp.get("checkpoint_every", 5) == 0:
                checkpoint()

        def validate():
            core.train.report_validation_metrics(
                steps_completed=steps,
                metrics={"validation_accuracy": accuracy(x, steps),
                         "run": run})

        if hp.get("old_form"):
            for op in core.searcher.operations():
                while steps < op.length:
                    step()
                    if core.preempt.should_preempt():
                        checkpoint()
                        return
                validate()
                op.report_completed(accuracy(x, steps))
            checkpoint()
            return

        # The 0.38 form: the script owns its length and validation cadence;
        # det's ASHA reads the validations and stops the trial through
        # preemption.
        while steps < hp["max_steps"]:
            step()
            if steps % hp["validate_every"] == 0 or steps == hp["max_steps"]:
                validate()
            if core.preempt.should_preempt():
                checkpoint()
                print(f"run {run}: preempted at step {steps}", flush=True)
                return
        checkpoint()


if __name__ == "__main__":
    main()
