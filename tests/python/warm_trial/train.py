"""A Core API script for the warm-start test: "weights" are a number in
state.json. A fresh start begins at w=0; a run that has a latest
checkpoint (its own, or the one it warm-starts from, as Determined gives
it) loads w from it. Each step adds hp["delta"] to w and reports it, so the
test can tell where a run's weights came from and where its step count
began. One line differs from Determined: `import det`."""

import json
import os

import det


def main():
    info = det.get_cluster_info()
    hp = info.trial.hparams
    w = 0.0
    with det.core.init() as core:
        if info.latest_checkpoint is not None:
            with core.checkpoint.restore_path(info.latest_checkpoint) as path:
                with open(os.path.join(path, "state.json")) as f:
                    w = json.load(f)["w"]
        steps = info.trial.steps_completed
        print(f"start: latest_checkpoint={info.latest_checkpoint} "
              f"steps={steps} w={w}", flush=True)
        while steps < hp["max_steps"]:
            steps += 1
            w += hp["delta"]
            core.train.report_training_metrics(steps_completed=steps,
                                               metrics={"w": w})
        core.train.report_validation_metrics(steps_completed=steps,
                                             metrics={"w": w})
        with core.checkpoint.store_path({"steps_completed": steps}) as (
                path, _):
            with open(os.path.join(path, "state.json"), "w") as f:
                json.dump({"w": w}, f)


if __name__ == "__main__":
    main()
