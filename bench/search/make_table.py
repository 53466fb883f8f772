#!/usr/bin/python3
"""Records the replay table: real CIFAR-10 trainings of every point of a
discrete search space over det-trial's CNN, each validated every
--period batches up to --max-length, with the time of every step.

    bench/search/make_table.py --trainer BUILD/worker/trainer/det-trial \
        --data ~/.cache/det/cifar-10-batches-bin [--out bench/search/table]

Each configuration runs alone (one det-trial process, DET_NUM_THREADS=1,
as a det worker slot runs a trial) with the same trial seed, from the
first batch to --max-length, validating every --period batches. The
table (bench/search/table/cifar10.csv) has a row per configuration and
validation point:

    config, <hyperparameters...>, batches, accuracy, loss,
    wall_s   seconds from the process start to this validation's report
             (process start, data load, training and every validation so far),
    val_s    this validation's own duration (its report minus the training
             report just before it),
    train_s  training time alone up to here (the trainer's samples/s).

A replay that validates a trial at a subset S of the points charges
wall_s(p) - sum(val_s(q) for q <= p, q not in S): the real run's time less
the validations that trial would not have made.

Resumable: rows are appended one configuration at a time (after its run);
a rerun skips the configurations already in the CSV. --budget-min stops
starting new runs after that many minutes; the grid is run in a fixed
shuffled order (--order-seed), so a partial table is a uniform sample, but
the replay needs the whole product (bench/search/replay.cc refuses a
table that misses points).
"""
import argparse
import csv
import itertools
import json
import os
import platform
import random
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

# The search space: configs/cifar10/adaptive.yaml's hyperparameters, each
# on a few discrete values (the full product is the table).
SPACE = {
    "optimizer": ["adam", "sgd"],
    "learning_rate": [0.0003, 0.001, 0.003, 0.01],
    "n_filters1": [16, 32],
    "n_filters2": [32, 64],
    "hidden_units": [128, 512],
    "dropout": [0.1, 0.4],
    "conv_layers": [2, 3],
}
# The rest as adaptive.yaml fixes them (weight_decay at 0 as const.yaml).
FIXED = {
    "global_batch_size": 64,
    "batch_norm": True,
    "momentum": 0.9,
    "lr_schedule": "cosine",
    "kernel_size": 3,
    "weight_decay": 0.0,
}
NAMES = list(SPACE)
COLUMNS = ["config"] + NAMES + ["batches", "accuracy", "loss", "wall_s",
                                "val_s", "train_s"]


def grid():
    return [dict(zip(NAMES, vals)) for vals in itertools.product(
        *(SPACE[n] for n in NAMES))]


def run_one(args, cid, hp, env):
    hparams = dict(FIXED, **hp)
    data = {"train_limit": args.train_limit,
            "validation_limit": args.validation_limit, "augment": False}
    cmd = [args.trainer, "--hparams", json.dumps(hparams), "--data", args.data,
           "--data-options", json.dumps(data), "--batches", str(args.max_length),
           "--validate-every", str(args.period), "--seed", str(args.seed)]
    t0 = time.time()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=env, text=True)
    rows = []
    last_train = None  # (time_us, batches)
    train_s = 0.0
    for line in p.stdout:
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("kind") != "metrics":
            continue
        r = msg["report"]
        t = int(r.get("time_us", 0)) / 1e6
        steps = int(r.get("steps_completed", 0))
        m = r.get("metrics", {})
        if r.get("group") == "METRIC_GROUP_TRAINING":
            prev = last_train[1] if last_train else 0
            if m.get("samples_per_second"):
                train_s += (steps - prev) * FIXED["global_batch_size"] / m[
                    "samples_per_second"]
            last_train = (t, steps)
        elif r.get("group") == "METRIC_GROUP_VALIDATION":
            val_s = t - last_train[0] if last_train and last_train[1] == steps else 0.0
            rows.append({"config": cid, **hp, "batches": steps,
                         "accuracy": round(m["validation_accuracy"], 5),
                         "loss": round(m["validation_loss"], 5),
                         "wall_s": round(t - t0, 3), "val_s": round(val_s, 3),
                         "train_s": round(train_s, 3)})
    err = p.stderr.read()
    rc = p.wait()
    if rc != 0:
        raise RuntimeError(f"config {cid}: det-trial exited {rc}: {err[-2000:]}")
    want = list(range(args.period, args.max_length + 1, args.period))
    got = [r["batches"] for r in rows]
    if got != want:
        raise RuntimeError(f"config {cid}: validations at {got}, expected {want}")
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trainer", required=True, help="det-trial binary")
    ap.add_argument("--data", default=os.path.expanduser(
        "~/.cache/det/cifar-10-batches-bin"))
    ap.add_argument("--out", default=os.path.join(HERE, "table"))
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--period", type=int, default=8)
    ap.add_argument("--train-limit", type=int, default=5000)
    ap.add_argument("--validation-limit", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--order-seed", type=int, default=0)
    ap.add_argument("--budget-min", type=float, default=0,
                    help="start no run after this many minutes (0: no limit)")
    ap.add_argument("--limit", type=int, default=0, help="at most N runs now")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "cifar10.csv")
    meta_path = os.path.join(args.out, "cifar10.json")
    done = set()
    if os.path.exists(path):
        with open(path) as f:
            done = {int(r["config"]) for r in csv.DictReader(f)}
    configs = grid()
    order = list(range(len(configs)))
    random.Random(args.order_seed).shuffle(order)
    env = dict(os.environ, DET_NUM_THREADS="1", OMP_NUM_THREADS="1")
    meta = {
        "space": SPACE, "fixed": FIXED, "configs": len(configs),
        "max_length": args.max_length, "period": args.period,
        "train_limit": args.train_limit, "validation_limit": args.validation_limit,
        "augment": False, "trial_seed": args.seed, "threads": 1,
        "machine": f"{platform.node()} {os.cpu_count()} cores, {platform.platform()}",
        "command": " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:]),
    }
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            old = json.load(f)
        for k in ("space", "fixed", "max_length", "period", "train_limit",
                  "validation_limit", "trial_seed"):
            if old.get(k) != meta[k]:
                sys.exit(f"{meta_path}: {k} was {old.get(k)!r}, now {meta[k]!r}; "
                         "use another --out")
        meta["started"] = old.get("started")
        meta["runs"] = old.get("runs", [])
    else:
        meta["started"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        meta["runs"] = []
    t_begin = time.time()
    n = 0
    new_file = not os.path.exists(path)
    with open(path, "a", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        if new_file:
            w.writeheader()
        for cid in order:
            if cid in done:
                continue
            if args.budget_min and time.time() - t_begin > args.budget_min * 60:
                break
            if args.limit and n >= args.limit:
                break
            t = time.time()
            rows = run_one(args, cid, configs[cid], env)
            w.writerows(rows)
            f.flush()
            n += 1
            print(f"[table] {len(done) + n}/{len(configs)} config {cid} "
                  f"{json.dumps(configs[cid])}: acc {rows[-1]['accuracy']:.3f} "
                  f"in {time.time() - t:.1f} s, load {os.getloadavg()[0]:.1f}",
                  flush=True)
    meta["runs"].append({"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                         "configs_run": n, "minutes": round((time.time() - t_begin) / 60, 1),
                         "load_at_end": round(os.getloadavg()[0], 2)})
    meta["configs_done"] = len(done) + n
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
