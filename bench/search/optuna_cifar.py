#!/usr/bin/python3
"""Optuna peer of det's CIFAR-10 search: the DESIGN section 6 model in
PyTorch, searched with Optuna's TPE sampler and successive-halving pruner.

    optuna_cifar.py --config configs/cifar10/adaptive.yaml --data DIR \
        --budget-s 180 --processes 2 --max-length 400 \
        --validation-points 25,100,200,300,400 --min-resource 25 --divisor 4 \
        --train-limit 5000 --validation-limit 1000 --log run.jsonl

The search space is read from the det config's `hyperparameters` (const,
int, double, log, categorical, as det reads them). `--processes` worker
processes share one study (Optuna's journal file storage), each with
`--threads` torch threads: two processes of one thread match det's two
CPU slots on two cores. Every validation is appended to --log as a JSON
line {"t": unix seconds, "trial", "step", "validation_accuracy", ...}, so
the harness draws best-accuracy-against-time the same way for every method.
Training stops at the budget (a running trial is abandoned there).

The model and data pipeline follow det-trial (worker/trainer/): conv ->
[batch norm] -> ReLU -> 2x2 max-pool per conv layer (n_filters1,
n_filters2, then doubling), flatten -> fc(hidden_units) -> ReLU -> dropout
-> fc(10); per-channel normalisation with CIFAR-10's mean/std; random crop
(4-pixel zero padding) and horizontal flip as batched tensor operations;
a fresh permutation each epoch; SGD (momentum, weight decay) or Adam
(weight decay); constant, cosine or step learning-rate schedule over the
trial's max length; channels-last layout; validation in inference mode.
"""
import argparse
import json
import warnings
import math
import os
import subprocess
import sys
import time

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)


# ---------------------------------------------------------------- data

def read_cifar(paths, limit):
    import numpy as np
    import torch
    parts = []
    for p in paths:
        raw = np.fromfile(p, dtype=np.uint8)
        if raw.size % 3073:
            raise SystemExit(f"{p}: size {raw.size} is not a multiple of 3073")
        parts.append(raw.reshape(-1, 3073))
    recs = np.concatenate(parts)
    if limit and limit > 0:
        recs = recs[:limit]
    labels = torch.from_numpy(recs[:, 0].astype(np.int64))
    if int(labels.max()) > 9:
        raise SystemExit("labels outside 0-9: not CIFAR-10")
    # CHW planes -> NHWC uint8, as det-trial keeps them.
    images = torch.from_numpy(
        recs[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy())
    return images, labels


def normalize(nhwc_u8):
    import torch
    mean = torch.tensor(MEAN).view(1, 1, 1, 3)
    std = torch.tensor(STD).view(1, 1, 1, 3)
    x = (nhwc_u8.float() / 255.0 - mean) / std
    return x.permute(0, 3, 1, 2)  # channels-last NCHW view


def crop_flip(nhwc_u8, gen, pad=4):
    import torch
    b, h, w, _ = nhwc_u8.shape
    padded = torch.nn.functional.pad(nhwc_u8, (0, 0, pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
    flip = torch.randint(0, 2, (b,), generator=gen).bool()
    ar_h, ar_w = torch.arange(h), torch.arange(w)
    rows = dy.view(b, 1) + ar_h.view(1, h)
    cols = torch.where(flip.view(b, 1), dx.view(b, 1) + (w - 1 - ar_w).view(1, w),
                       dx.view(b, 1) + ar_w.view(1, w))
    return padded[torch.arange(b).view(b, 1, 1), rows.view(b, h, 1),
                  cols.view(b, 1, w)]


# ---------------------------------------------------------------- model

def build_model(hp):
    import torch.nn as nn
    layers, cin = [], 3
    widths = []
    for i in range(int(hp["conv_layers"])):
        widths.append(int(hp["n_filters1"]) if i == 0 else
                      int(hp["n_filters2"]) if i == 1 else widths[-1] * 2)
    k = int(hp["kernel_size"])
    for cout in widths:
        layers.append(nn.Conv2d(cin, cout, k, padding=k // 2,
                                bias=not hp["batch_norm"]))
        if hp["batch_norm"]:
            layers.append(nn.BatchNorm2d(cout))
        layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
        cin = cout
    side = 32 >> len(widths)
    return nn.Sequential(*layers, nn.Flatten(),
                         nn.Linear(cin * side * side, int(hp["hidden_units"])),
                         nn.ReLU(), nn.Dropout(float(hp["dropout"])),
                         nn.Linear(int(hp["hidden_units"]), 10))


DEFAULTS = {"learning_rate": 0.01, "global_batch_size": 64, "n_filters1": 32,
            "n_filters2": 64, "kernel_size": 3, "hidden_units": 512,
            "dropout": 0.5, "conv_layers": 2, "batch_norm": False,
            "optimizer": "sgd", "momentum": 0.9, "nesterov": False,
            "weight_decay": 0.0, "lr_schedule": "constant", "lr_step_size": 0,
            "lr_gamma": 0.1}


def lr_at(hp, step, target):
    lr = float(hp["learning_rate"])
    s = hp["lr_schedule"]
    if s == "cosine":
        t = min(1.0, step / target) if target > 0 else 0.0
        return lr * 0.5 * (1 + math.cos(math.pi * t))
    if s == "step":
        size = int(hp["lr_step_size"]) or max(1, target // 3)
        return lr * float(hp["lr_gamma"]) ** (step // size)
    return lr


# ---------------------------------------------------------------- search space

def suggest(trial, name, spec):
    """det's hyperparameter spec (configs/*.yaml) as an Optuna suggestion."""
    if not isinstance(spec, dict):
        return spec  # a bare scalar is a const
    t = spec.get("type")
    if t == "const":
        return spec["val"]
    if t == "int":
        return trial.suggest_int(name, int(spec["minval"]), int(spec["maxval"]))
    if t == "double":
        return trial.suggest_float(name, float(spec["minval"]), float(spec["maxval"]))
    if t == "log":
        base = float(spec.get("base", 10))
        return trial.suggest_float(name, base ** float(spec["minval"]),
                                   base ** float(spec["maxval"]), log=True)
    if t == "categorical":
        return trial.suggest_categorical(name, list(spec["vals"]))
    raise SystemExit(f"hyperparameter {name}: nested groups are not supported here")


# ---------------------------------------------------------------- worker

def worker(args):
    import optuna
    import torch
    from optuna.storages import JournalFileStorage, JournalStorage
    import yaml

    torch.set_num_threads(args.threads)
    with open(args.config) as f:
        space = yaml.safe_load(f)["hyperparameters"]
    d = args.data
    train_x, train_y = read_cifar([f"{d}/data_batch_{i}.bin" for i in range(1, 6)],
                                  args.train_limit)
    val_x, val_y = read_cifar([f"{d}/test_batch.bin"], args.validation_limit)
    val_in = normalize(val_x).contiguous(memory_format=torch.channels_last)
    points = sorted({int(p) for p in args.validation_points.split(",") if p} |
                    {args.max_length})
    log = open(args.log, "a", buffering=1)
    storage = JournalStorage(JournalFileStorage(args.storage))
    seed = args.seed + args.worker_index
    sampler = (optuna.samplers.RandomSampler(seed=seed) if args.sampler == "random"
               else optuna.samplers.TPESampler(seed=seed))
    study = optuna.load_study(study_name="cifar10", storage=storage, sampler=sampler)
    deadline = args.deadline
    n_train = train_x.shape[0]

    def objective(trial):
        hp = dict(DEFAULTS)
        for name, spec in space.items():
            hp[name] = suggest(trial, name, spec)
        seed = args.seed * 1000003 + trial.number
        torch.manual_seed(seed)
        model = build_model(hp).to(memory_format=torch.channels_last)
        if hp["optimizer"] == "adam":
            opt = torch.optim.Adam(model.parameters(), lr=float(hp["learning_rate"]),
                                   weight_decay=float(hp["weight_decay"]))
        else:
            opt = torch.optim.SGD(model.parameters(), lr=float(hp["learning_rate"]),
                                  momentum=float(hp["momentum"]),
                                  nesterov=bool(hp["nesterov"]),
                                  weight_decay=float(hp["weight_decay"]))
        gen = torch.Generator().manual_seed(seed)
        bs = int(hp["global_batch_size"])
        log.write(json.dumps({"t": time.time(), "event": "start",
                              "trial": trial.number, "worker": args.worker_index,
                              "hparams": hp}) + "\n")
        order, pos, step, acc = None, n_train, 0, 0.0
        for point in points:
            model.train()
            while step < point:
                if time.time() > deadline:
                    log.write(json.dumps({"t": time.time(), "event": "abandoned",
                                          "trial": trial.number, "step": step}) + "\n")
                    raise optuna.TrialPruned()
                if pos + bs > n_train:
                    order, pos = torch.randperm(n_train, generator=gen), 0
                idx = order[pos:pos + bs]
                pos += bs
                images = train_x.index_select(0, idx)
                if args.augment:
                    images = crop_flip(images, gen)
                x = normalize(images).contiguous(memory_format=torch.channels_last)
                y = train_y.index_select(0, idx)
                for g in opt.param_groups:
                    g["lr"] = lr_at(hp, step, args.max_length)
                opt.zero_grad(set_to_none=True)
                loss = torch.nn.functional.cross_entropy(model(x), y)
                loss.backward()
                opt.step()
                step += 1
            model.eval()
            correct, loss_sum = 0, 0.0
            with torch.inference_mode():
                for i in range(0, val_in.shape[0], 1000):
                    logits = model(val_in[i:i + 1000])
                    yy = val_y[i:i + 1000]
                    loss_sum += float(torch.nn.functional.cross_entropy(
                        logits, yy, reduction="sum"))
                    correct += int((logits.argmax(1) == yy).sum())
            acc = correct / val_in.shape[0]
            log.write(json.dumps({"t": time.time(), "event": "validation",
                                  "trial": trial.number, "step": step,
                                  "validation_accuracy": acc,
                                  "validation_loss": loss_sum / val_in.shape[0]})
                      + "\n")
            trial.report(acc, step)
            if trial.should_prune():
                log.write(json.dumps({"t": time.time(), "event": "pruned",
                                      "trial": trial.number, "step": step}) + "\n")
                raise optuna.TrialPruned()
        log.write(json.dumps({"t": time.time(), "event": "completed",
                              "trial": trial.number, "step": step}) + "\n")
        return acc

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    while time.time() < deadline:
        if args.max_trials and len(study.get_trials(deepcopy=False)) >= args.max_trials:
            break
        study.optimize(objective, n_trials=1, catch=())


def main():
    warnings.filterwarnings("ignore", message=".*JournalStorage is experimental.*")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--budget-s", type=float, default=180)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-length", type=int, required=True, help="batches")
    ap.add_argument("--validation-points", default="",
                    help="batches, comma separated (the end is added)")
    ap.add_argument("--min-resource", type=int, required=True,
                    help="the pruner's first rung, in batches")
    ap.add_argument("--divisor", type=int, default=4)
    ap.add_argument("--train-limit", type=int, default=0)
    ap.add_argument("--validation-limit", type=int, default=0)
    ap.add_argument("--augment", type=int, default=1)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--sampler", choices=("tpe", "random"), default="tpe",
                    help="Optuna's TPESampler (default) or RandomSampler; "
                         "successive halving prunes either way")
    ap.add_argument("--max-trials", type=int, default=0,
                    help="stop starting trials once the study has this many (0: no cap)")
    ap.add_argument("--log", required=True)
    ap.add_argument("--storage", default=None, help="journal file (default: LOG.journal)")
    ap.add_argument("--worker-index", type=int, default=-1, help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.storage is None:
        args.storage = args.log + ".journal"
    if args.worker_index >= 0:
        worker(args)
        return

    import optuna
    from optuna.storages import JournalFileStorage, JournalStorage
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(
        study_name="cifar10", direction="maximize",
        storage=JournalStorage(JournalFileStorage(args.storage)),
        pruner=optuna.pruners.SuccessiveHalvingPruner(
            min_resource=args.min_resource, reduction_factor=args.divisor),
        load_if_exists=True)
    start = time.time()
    with open(args.log, "a") as f:
        f.write(json.dumps({"t": start, "event": "begin",
                            "budget_s": args.budget_s}) + "\n")
    deadline = start + args.budget_s
    procs = []
    for i in range(args.processes):
        argv = [sys.executable, os.path.abspath(__file__), *sys.argv[1:],
                "--worker-index", str(i), "--deadline", str(deadline),
                "--storage", args.storage]
        procs.append(subprocess.Popen(argv, env=dict(
            os.environ, OMP_NUM_THREADS=str(args.threads))))
    rc = 0
    for p in procs:
        try:
            p.wait(timeout=max(1.0, deadline - time.time()) + 600)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        rc = rc or p.returncode
    with open(args.log, "a") as f:
        f.write(json.dumps({"t": time.time(), "event": "end"}) + "\n")
    sys.exit(rc)


if __name__ == "__main__":
    main()
