#!/usr/bin/python3
"""Search efficiency on CIFAR-10: det's ASHA (random or TPE sampling), det's
random search and Optuna (TPE or random sampling + successive halving;
methods det-asha, det-asha-tpe, det-random, optuna, optuna-random), same
search space, same wall-clock budget, same cores, one after the other on
this machine.

    bench/search/run.py --budget-min 60                  # the full run
    bench/search/run.py --smoke                          # 3 min per method,
                                                         # a small subset,
                                                         # 200-batch trials

The search space is configs/cifar10/adaptive.yaml's (--config), with its
searcher settings for det's ASHA; det's random search and Optuna get the
same max_trials, max_length and validation points. det runs one det-master
and one det-worker with --slots 2 (one thread per slot on 2 cores); Optuna
runs 2 processes of one torch thread sharing a study (optuna_cifar.py).
Each method gets --budget-min of wall time from the moment its search
starts; det's experiment is killed at the budget, Optuna's processes stop
there. Every validation is kept with its time, and the plot is the best
validation accuracy seen so far against wall time.

Writes bench/results/LABEL.md, LABEL.json and LABEL.png (LABEL: "search",
or "search-smoke" with --smoke).
"""
import argparse
import copy
import json
import os
import subprocess
import sys
import time

import yaml

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import detbench as db  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def asha_rungs(max_length, max_trials, divisor, max_rungs, mode):
    """DESIGN section 4: the brackets' rung lengths (in batches here)."""
    def ilog(x):
        k = 0
        while divisor ** (k + 1) <= x:
            k += 1
        return k
    n = min(max_rungs, ilog(max_length) + 1, ilog(max_trials) + 1)
    if mode == "aggressive":
        counts = [n]
    elif mode == "conservative":
        counts = list(range(n, 0, -1))
    else:
        counts = list(range(n, (n - 1) // 2, -1))
    return [[max(max_length // divisor ** (c - i - 1), 1) for i in range(c)]
            for c in counts]


def det_config(base, method, args):
    cfg = copy.deepcopy(base)
    s = cfg["searcher"]
    s["max_length"] = {"batches": args.max_length}
    if args.max_trials:
        s["max_trials"] = args.max_trials
    if args.max_rungs:
        s["max_rungs"] = args.max_rungs
    cfg["min_validation_period"] = {"batches": args.validation_period}
    data = dict(cfg.get("data") or {})
    if args.train_limit:
        data["train_limit"] = args.train_limit
    if args.validation_limit:
        data["validation_limit"] = args.validation_limit
    cfg["data"] = data
    cfg["name"] = f"bench-{method}"
    if method == "det-random":
        cfg["searcher"] = {"name": "random", "metric": s["metric"],
                           "smaller_is_better": s.get("smaller_is_better", True),
                           "max_trials": s["max_trials"],
                           "max_concurrent_trials": s.get("max_concurrent_trials", 16),
                           "max_length": s["max_length"]}
    elif method == "det-asha-tpe":
        s["sampler"] = "tpe"  # ASHA with the TPE sampler (docs/searchers.md)
    return cfg


def run_det(bdir, method, base, args, data_dir):
    cfg = det_config(base, method, args)
    c = db.Cluster(bdir, tag=f"det-search-{method}")
    try:
        c.start_master()
        c.start_worker("w0", args.slots, extra=["--data_dir", data_dir])
        c.wait_agents(1)
        eid = c.create_experiment(yaml.safe_dump(cfg, sort_keys=False))
        x = c.experiment(eid)
        t0 = db.us(x["start_time_us"]) / 1e6
        deadline = t0 + args.budget_min * 60
        finished_early = None
        while time.time() < deadline:
            x = c.experiment(eid)
            if x["state"] in ("STATE_COMPLETED", "STATE_CANCELED", "STATE_ERROR"):
                finished_early = db.us(x["end_time_us"]) / 1e6 - t0
                break
            time.sleep(1.0)
        if finished_early is None:
            c.cli("experiment", "kill", str(eid), check=False)
            # Reports after the budget are dropped below; the kill only has
            # to end the running trials (queued ones never start).
            try:
                c.wait_terminal(eid, timeout=15, poll=0.5)
            except RuntimeError:
                pass
        reports = c.validation_metrics(eid)
        trials = c.trials(eid)
        events = []
        for r in reports:
            t = db.us(r.get("time_us")) / 1e6 - t0
            acc = r.get("metrics", {}).get("validation_accuracy")
            if acc is None or t > args.budget_min * 60:
                continue
            events.append({"t": t, "trial": int(r["trial_id"]),
                           "step": db.us(r.get("steps_completed")), "acc": acc})
        events.sort(key=lambda e: e["t"])
        states = {}
        for t in trials:
            states[t["state"]] = states.get(t["state"], 0) + 1
        return {"method": method, "events": events, "trials_started": sum(
                    1 for t in trials if db.us(t.get("start_time_us")) and
                    db.us(t["start_time_us"]) / 1e6 - t0 <= args.budget_min * 60),
                "trials_created": len(trials), "trial_states": states,
                "finished_early_s": finished_early,
                "batches_trained": sum(db.us(t.get("steps_completed")) for t in trials),
                "config": cfg}
    finally:
        c.close()


def run_optuna(base, args, data_dir, workdir, sampler="tpe"):
    s = base["searcher"]
    max_trials = args.max_trials or s["max_trials"]
    rungs = asha_rungs(args.max_length, max_trials, s.get("divisor", 4),
                       args.max_rungs or s.get("max_rungs", 5),
                       s.get("mode", "standard"))
    points = set(p for b in rungs for p in b)
    points |= set(range(args.validation_period, args.max_length, args.validation_period))
    log = os.path.join(workdir, "optuna.jsonl")
    if os.path.exists(log):
        os.remove(log)
    for f in (log + ".journal",):
        if os.path.exists(f):
            os.remove(f)
    data = base.get("data") or {}
    cmd = ["/usr/bin/python3", os.path.join(HERE, "optuna_cifar.py"),
           "--config", args.config, "--data", data_dir,
           "--budget-s", str(args.budget_min * 60), "--processes", "2",
           "--threads", "1", "--max-length", str(args.max_length),
           "--validation-points", ",".join(str(p) for p in sorted(points)),
           "--min-resource", str(min(min(b) for b in rungs)),
           "--divisor", str(s.get("divisor", 4)),
           "--train-limit", str(args.train_limit or 0),
           "--validation-limit", str(args.validation_limit or 0),
           "--augment", "1" if data.get("augment", True) else "0",
           "--max-trials", str(max_trials), "--sampler", sampler, "--log", log]
    subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    events, starts, outcomes = [], set(), {}
    t0 = None
    finished = None
    with open(log) as f:
        for line in f:
            e = json.loads(line)
            if e["event"] == "begin":
                t0 = e["t"]
            elif e["event"] == "start":
                starts.add(e["trial"])
            elif e["event"] == "validation":
                events.append({"t": e["t"] - t0, "trial": e["trial"], "step": e["step"],
                               "acc": e["validation_accuracy"]})
            elif e["event"] in ("pruned", "completed", "abandoned"):
                outcomes[e["event"]] = outcomes.get(e["event"], 0) + 1
            elif e["event"] == "end" and t0 is not None:
                # The workers stop early once the study has max_trials.
                if e["t"] - t0 < args.budget_min * 60 - 1:
                    finished = e["t"] - t0
    events = [e for e in events if e["t"] <= args.budget_min * 60]
    events.sort(key=lambda e: e["t"])
    return {"method": "optuna" if sampler == "tpe" else f"optuna-{sampler}",
            "events": events, "trials_started": len(starts),
            "trials_created": len(starts), "trial_states": outcomes,
            "finished_early_s": finished, "rungs": rungs,
            "validation_points": sorted(points)}


def best_curve(events):
    best, curve = 0.0, []
    for e in events:
        if e["acc"] > best:
            best = e["acc"]
            curve.append((e["t"], best))
    return curve


def best_at(curve, t):
    b = None
    for tt, v in curve:
        if tt <= t:
            b = v
    return b


LABELS = {"det-asha": "det adaptive_asha", "det-random": "det random",
          "det-asha-tpe": "det adaptive_asha + TPE",
          "optuna": "Optuna TPE + successive halving",
          "optuna-random": "Optuna random + successive halving"}


def plot(res, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    budget = res["args"]["budget_min"] * 60
    fig, ax = plt.subplots(figsize=(8, 4.8))
    for r in res["methods"]:
        curve = best_curve(r["events"])
        if not curve:
            continue
        end = r["finished_early_s"] if r.get("finished_early_s") else budget
        xs = [t / 60 for t, _ in curve] + [end / 60]
        ys = [v for _, v in curve] + [curve[-1][1]]
        label = LABELS.get(r["method"], r["method"])
        if r.get("finished_early_s"):
            label += f" (all {res['max_trials']} trials done at {end / 60:.1f} min)"
        line = ax.step(xs, ys, where="post", label=label)[0]
        if r.get("finished_early_s"):
            ax.plot([end / 60, budget / 60], [ys[-1], ys[-1]], ls=":",
                    color=line.get_color())
            ax.plot([end / 60], [ys[-1]], "x", color=line.get_color())
    ax.set_xlabel("wall time (minutes)")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_xlim(0, budget / 60)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    title = "CIFAR-10 search, same space, budget and cores"
    if res["smoke"]:
        title = "SMOKE RUN (tiny subset, short budget): " + title
    ax.set_title(f"{title}\n{res['machine']['date']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def report(res):
    a = res["args"]
    m = res["machine"]
    budget = a["budget_min"] * 60
    L = [f"# Search efficiency on CIFAR-10{' — SMOKE RUN' if res['smoke'] else ''}", ""]
    if res["smoke"]:
        L += ["**This is a smoke run that proves the harness works: a small data subset, "
              "a short budget and short trials. Its accuracies say nothing about which "
              "search is better; the full run (see bench/README.md) is scheduled "
              "separately.**", ""]
    rungs_note = (f", with max_rungs {a['max_rungs']}" if a.get("max_rungs") else "")
    L += [f"Measured {db.machine_line(m)}; load average at the end {res['load_at_end']}. "
          "The machine is shared: other work may have taken CPU from any method.", "",
          f"Command: `bench/search/run.py {res['argv']}` ({res['bench_seconds'] / 60:.0f} min in all); "
          f"det-trial built {res.get('binaries_built', 'unknown')}.",
          "",
          f"Search space: `{os.path.relpath(a['config'], db.REPO)}` (its hyperparameters; its "
          f"ASHA settings for det's ASHA{rungs_note}). Every method: max {res['max_trials']} trials, "
          f"max_length {a['max_length']} batches, a validation every "
          f"{a['validation_period']} batches and at each ASHA rung, training subset "
          f"{a['train_limit'] or 'all 50,000'} images, validation {a['validation_limit'] or 'all 10,000'} "
          f"images (test_batch), {a['budget_min']:g} min of wall time each, run one after "
          "another. det: one det-master and one det-worker with "
          f"{a.get('slots', 2)} CPU slot(s) on the 2 cores (a process per trial, "
          f"{2 // max(a.get('slots', 2), 1)} torch thread(s) each). Optuna: TPESampler (RandomSampler for optuna-random) + SuccessiveHalvingPruner "
          "(min_resource = det's first rung, reduction_factor = divisor), 2 processes × 1 "
          "torch thread sharing a journal-file study, the same model in PyTorch "
          "(bench/search/optuna_cifar.py).", ""]
    rows = []
    for r in res["methods"]:
        curve = best_curve(r["events"])
        q = [best_at(curve, budget * f) for f in (0.25, 0.5, 0.75, 1.0)]
        rows.append([LABELS.get(r["method"], r["method"]),
                     *[f"{v:.4f}" if v is not None else "–" for v in q],
                     r["trials_started"], len(r["events"]),
                     f"{r['finished_early_s'] / 60:.1f} min" if r["finished_early_s"] else "no"])
    L += [db.md_table(["method", "best @25%", "@50%", "@75%", "@100% of budget",
                       "trials started", "validations", "finished before budget"], rows), ""]
    for r in res["methods"]:
        L.append(f"- {LABELS.get(r['method'], r['method'])}: trial outcomes "
                 f"{json.dumps(r['trial_states'])}")
    L.append("")
    if res.get("plot"):
        L += [f"![best validation accuracy against wall time]({os.path.basename(res['plot'])})", ""]
    L += ["Notes: det starts a process per trial (libtorch load and the dataset read, "
          "a few seconds each on this machine), which Optuna's long-lived worker processes "
          "pay once; with short trials this weighs on det, with the full config's trials "
          "(7,800 batches) it does not.", ""]
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default=None)
    ap.add_argument("--config", default=os.path.join(db.REPO, "configs", "cifar10",
                                                     "adaptive.yaml"))
    ap.add_argument("--data-dir", default=os.environ.get(
        "DET_DATA_DIR", os.path.expanduser("~/.cache/det/cifar-10-batches-bin")))
    ap.add_argument("--budget-min", type=float, default=60,
                    help="wall-clock minutes per method")
    ap.add_argument("--methods", default="det-asha,det-random,optuna")
    ap.add_argument("--max-length", type=int, default=None,
                    help="batches (default: the config's)")
    ap.add_argument("--validation-period", type=int, default=None,
                    help="batches (default: the config's min_validation_period)")
    ap.add_argument("--max-trials", type=int, default=None,
                    help="default: the config's")
    ap.add_argument("--max-rungs", type=int, default=None,
                    help="ASHA's max_rungs (det's ASHA, and the rungs Optuna's "
                    "pruner is given); default: the config's")
    ap.add_argument("--slots", type=int, default=2,
                    help="det-worker slots (the 2 cores are shared among them: "
                    "1 slot trains one trial at a time on 2 threads)")
    ap.add_argument("--train-limit", type=int, default=0)
    ap.add_argument("--validation-limit", type=int, default=0)
    ap.add_argument("--smoke", action="store_true",
                    help="3 min per method, 5,000/1,000 images, 200-batch trials, "
                         "at most 64 trials")
    ap.add_argument("--label", default=None)
    ap.add_argument("--report-only", action="store_true",
                    help="re-render LABEL.md and LABEL.png from LABEL.json")
    args = ap.parse_args()
    if args.report_only:
        out = os.path.join(db.RESULTS, args.label or ("search-smoke" if args.smoke
                                                     else "search"))
        with open(out + ".json") as f:
            res = json.load(f)
        res["plot"] = plot(res, out + ".png")
        with open(out + ".md", "w") as f:
            f.write(report(res))
        return
    with open(args.config) as f:
        base = yaml.safe_load(f)
    if args.smoke:
        args.budget_min = args.budget_min if "--budget-min" in sys.argv else 3
        args.max_length = args.max_length or 200
        args.validation_period = args.validation_period or 50
        # Enough trials that the budget, not the trial cap, ends the search.
        args.max_trials = args.max_trials or 64
        args.train_limit = args.train_limit or 5000
        args.validation_limit = args.validation_limit or 1000
    args.max_length = args.max_length or int(base["searcher"]["max_length"]["batches"])
    args.validation_period = args.validation_period or int(
        (base.get("min_validation_period") or {}).get("batches", args.max_length))
    label = args.label or ("search-smoke" if args.smoke else "search")
    bdir = db.build_dir(args.build_dir)
    for b in ("det-master", "det-worker", "det-trial", "det"):
        db.binary(bdir, b)
    res = {"machine": db.machine(), "args": vars(args), "smoke": args.smoke,
           "binaries_built": db.built_at(db.binary(bdir, "det-trial")),
           "argv": " ".join(sys.argv[1:]), "methods": [],
           "max_trials": args.max_trials or base["searcher"]["max_trials"]}
    out = os.path.join(db.RESULTS, label)
    os.makedirs(db.RESULTS, exist_ok=True)
    t_start = time.time()
    workdir = os.path.join(db.RESULTS, "tmp")
    os.makedirs(workdir, exist_ok=True)
    for method in args.methods.split(","):
        print(f"[search] {method}: {args.budget_min:g} min", flush=True)
        if method == "optuna":
            r = run_optuna(base, args, args.data_dir, workdir)
        elif method == "optuna-random":
            r = run_optuna(base, args, args.data_dir, workdir, sampler="random")
        else:
            r = run_det(db.build_dir(args.build_dir), method, base, args, args.data_dir)
        curve = best_curve(r["events"])
        print(f"  {r['trials_started']} trials, {len(r['events'])} validations, best "
              f"{curve[-1][1] if curve else float('nan'):.4f}", flush=True)
        res["methods"].append(r)
        with open(out + ".json", "w") as f:
            json.dump(res, f, indent=1)
    res["bench_seconds"] = time.time() - t_start
    res["load_at_end"] = db.load_now()
    res["plot"] = plot(res, out + ".png")
    with open(out + ".json", "w") as f:
        json.dump(res, f, indent=1)
    with open(out + ".md", "w") as f:
        f.write(report(res))
    print(f"[search] wrote {out}.md")


if __name__ == "__main__":
    main()
