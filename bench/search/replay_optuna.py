#!/usr/bin/python3
"""Optuna replayed in virtual time on the replay table, the peer of
det-bench-replay (bench/search/replay.cc): the same table, the same
workers, the same costs.

    replay_optuna.py --table bench/search/table/cifar10.csv \
        --sampler tpe --workers 4 --budget-s 192 --seeds 50 \
        --rungs 8,32,128 --divisor 4 > out.json

Optuna's ask/tell interface with --workers trials in flight: a free worker
asks for a trial (each hyperparameter by suggest_categorical over the
table's values), which then "trains": it reaches each validation point
(the pruner's rungs, the last one its full length) at the table's time for
that point (the recorded wall time from process start, less the
validations this trial does not make), reports the table's accuracy there
(trial.report) and asks should_prune(); a pruned trial is told PRUNED and
its worker takes the next one at once; a finished one is told its final
accuracy. --sampler tpe: TPESampler(seed) (Optuna's defaults), random:
RandomSampler(seed); --pruner sh: SuccessiveHalvingPruner(min_resource =
the first rung, reduction_factor = --divisor), none: trials run to the end.
No time passes for Optuna itself.

Prints JSON with the same fields as det-bench-replay.
"""
import argparse
import csv
import heapq
import json
import sys

import optuna


def read_table(path):
    """{key: {"acc": {b: a}, "wall": {b: s}, "val": {b: s}}}, names, values."""
    with open(path) as f:
        rd = csv.DictReader(f)
        cols = rd.fieldnames
        names = cols[cols.index("config") + 1:cols.index("batches")]
        runs, values = {}, {n: set() for n in names}
        for r in rd:
            key = tuple(canon(r[n]) for n in names)
            for n in names:
                values[n].add(parse(r[n]))
            run = runs.setdefault(key, {"acc": {}, "wall": {}, "val": {}})
            b = int(r["batches"])
            run["acc"][b] = float(r["accuracy"])
            run["wall"][b] = float(r["wall_s"])
            run["val"][b] = float(r["val_s"])
    return runs, names, {n: sorted(v, key=lambda x: (isinstance(x, str), x))
                         for n, v in values.items()}


def parse(text):
    for t in (int, float):
        try:
            return t(text)
        except ValueError:
            pass
    return text


def canon(v):
    """As det-bench-replay keys the table: numbers by %.6g."""
    if isinstance(v, str):
        try:
            return "%.6g" % float(v)
        except ValueError:
            return v
    return "%.6g" % v


def times(run, points):
    """Seconds from a trial's start to each of `points`."""
    keep = set(points)
    out = []
    for p in points:
        if p not in run["wall"]:
            sys.exit(f"the table has no validation at {p} batches")
        t = run["wall"][p] - sum(v for q, v in run["val"].items()
                                 if q <= p and q not in keep)
        out.append(t)
    return out


def replay(runs, names, values, args, seed):
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = (optuna.samplers.TPESampler(seed=seed) if args.sampler == "tpe"
               else optuna.samplers.RandomSampler(seed=seed))
    rungs = [int(x) for x in args.rungs.split(",")]
    pruner = (optuna.pruners.SuccessiveHalvingPruner(
        min_resource=rungs[0], reduction_factor=args.divisor,
        min_early_stopping_rate=0) if args.pruner == "sh"
        else optuna.pruners.NopPruner())
    study = optuna.create_study(direction="maximize", sampler=sampler,
                                pruner=pruner)
    events = []  # (time, seq, trial number)
    flight = {}  # number -> (trial, run, at_s, next)
    seq = 0
    curve, validations, created = [], 0, 0
    seen = set()
    now = 0.0

    def start():
        nonlocal seq, created
        trial = study.ask()
        key = tuple(canon(trial.suggest_categorical(n, values[n])) for n in names)
        if key not in runs:
            sys.exit(f"{dict(zip(names, key))} is not in the table")
        run = runs[key]
        seen.add(key)
        at = times(run, rungs)
        created += 1
        flight[trial.number] = [trial, run, at, 0, now]
        heapq.heappush(events, (now + at[0], seq, trial.number))
        seq += 1

    for _ in range(args.workers):
        start()
    ended = None
    while events:
        t, _, num = heapq.heappop(events)
        if t > args.budget_s:
            break
        now = t
        trial, run, at, i, t0 = flight[num]
        p = rungs[i]
        acc = run["acc"][p]
        validations += 1
        if not curve or acc > curve[-1][1]:
            curve.append([round(now, 3), acc])
        trial.report(acc, p)
        if i + 1 == len(rungs):
            study.tell(trial, acc)
            del flight[num]
            start()
        elif trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            del flight[num]
            start()
        else:
            flight[num][3] = i + 1
            heapq.heappush(events, (t0 + at[i + 1], seq, num))
            seq += 1
    else:
        ended = now
    return {"seed": seed, "trials": created, "distinct": len(seen),
            "validations": validations,
            "end_s": ended, "curve": curve}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table", required=True)
    ap.add_argument("--sampler", choices=["tpe", "random"], default="tpe")
    ap.add_argument("--pruner", choices=["sh", "none"], default="sh")
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--budget-s", type=float, default=300)
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--seed-base", type=int, default=1)
    ap.add_argument("--rungs", default="8,32,128",
                    help="validation points (batches); the last is the length")
    ap.add_argument("--divisor", type=int, default=4)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    runs, names, values = read_table(args.table)
    out = {"label": args.label, "workers": args.workers, "budget_s": args.budget_s,
           "configs_in_table": len(runs), "optuna": optuna.__version__,
           "seeds": [replay(runs, names, values, args, args.seed_base + i)
                     for i in range(args.seeds)]}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
