#!/usr/bin/python3
"""Optuna's orchestration overhead: trials that do no training.

The peer of det's overhead benchmark: N trials, each sampling the same two
hyperparameters as det-fake-trial (x, y uniform in [0, 1]), reporting R
intermediate values (trial.report + trial.should_prune, as a pruned search
does at each validation) and returning the last one. No training, so the
time measured is Optuna's own: sampler, pruner, storage.

    optuna_overhead.py --trials 1000 --reports 5 --storage memory
    optuna_overhead.py --trials 1000 --reports 5 --storage sqlite --jobs 1

Prints one JSON object: trials, seconds, trials_per_s, storage, sampler.
Run with Debian's python3 (/usr/bin/python3), which has python3-optuna.
"""
import argparse
import json
import os
import tempfile
import time

import optuna


def objective_for(reports):
    def objective(trial):
        x = trial.suggest_float("x", 0.0, 1.0)
        y = trial.suggest_float("y", 0.0, 1.0)
        acc = 0.0
        for step in range(1, reports + 1):
            # The fake trial's model (examples/fake_trial/fake_model.h).
            acc = 0.8 - (x - 0.3) ** 2 - 0.5 * (y - 0.6) ** 2 + 0.15 * (
                1 - 100 / (100 + step))
            trial.report(acc, step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return acc
    return objective


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--trials", type=int, default=1000)
    p.add_argument("--reports", type=int, default=5)
    p.add_argument("--storage", choices=["memory", "sqlite"], default="memory")
    p.add_argument("--sampler", choices=["random", "tpe"], default="random")
    p.add_argument("--pruner", choices=["none", "sha"], default="none")
    p.add_argument("--jobs", type=int, default=1,
                   help="optuna's n_jobs (threads in this process)")
    p.add_argument("--dir", default=None, help="where the SQLite file goes")
    args = p.parse_args()

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tmp = None
    storage = None
    if args.storage == "sqlite":
        tmp = tempfile.mkdtemp(prefix="optuna-overhead.", dir=args.dir)
        storage = "sqlite:///" + os.path.join(tmp, "optuna.db")
    sampler = (optuna.samplers.RandomSampler(seed=7) if args.sampler == "random"
               else optuna.samplers.TPESampler(seed=7))
    pruner = (optuna.pruners.NopPruner() if args.pruner == "none"
              else optuna.pruners.SuccessiveHalvingPruner())
    study = optuna.create_study(direction="maximize", storage=storage,
                                sampler=sampler, pruner=pruner,
                                study_name="overhead")
    start = time.perf_counter()
    study.optimize(objective_for(args.reports), n_trials=args.trials,
                   n_jobs=args.jobs, gc_after_trial=False)
    seconds = time.perf_counter() - start
    n = len(study.trials)
    print(json.dumps({
        "peer": "optuna", "optuna_version": optuna.__version__,
        "storage": args.storage, "sampler": args.sampler,
        "pruner": args.pruner, "jobs": args.jobs, "trials": n,
        "reports_per_trial": args.reports, "seconds": seconds,
        "trials_per_s": n / seconds, "reports_per_s": n * args.reports / seconds,
        "best_value": study.best_value,
    }))
    if tmp:
        for f in os.listdir(tmp):
            os.remove(os.path.join(tmp, f))
        os.rmdir(tmp)


if __name__ == "__main__":
    main()
