#!/usr/bin/python3
"""Search efficiency on a replay table: det's searchers (the master's own
classes, through det-bench-replay) and Optuna (ask/tell) in virtual time on
the same recorded CIFAR-10 trainings, same workers, same budget, many seeds.

    bench/search/replay.py [--build-dir build] [--workers 4] [--seeds 50]
                           [--budget-frac 0.25 | --budget-s S]

The table is bench/search/table/cifar10.csv (bench/search/make_table.py).
The virtual budget defaults to --budget-frac of the time it takes to train
every configuration of the table to its full length once on --workers
slots (a random search could see that share of the space). Methods:

  det-random        det's random searcher (min_validation_period 32)
  det-asha          det's adaptive_asha (standard mode, divisor 4, 3 rungs)
  det-asha-tpe      the same with searcher.sampler: tpe
  optuna-tpe-sh     Optuna TPESampler + SuccessiveHalvingPruner
  optuna-random-sh  Optuna RandomSampler + SuccessiveHalvingPruner

Writes bench/results/replay.md, replay.json and replay.png.
"""
import argparse
import bisect
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import detbench as db  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
TABLE = os.path.join(HERE, "table", "cifar10.csv")

LABELS = {
    "det-random": "det random",
    "det-asha": "det ASHA (random sampling)",
    "det-asha-tpe": "det ASHA + TPE",
    "optuna-tpe-sh": "Optuna TPE + successive halving",
    "optuna-random-sh": "Optuna random + successive halving",
}


def load_table(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    meta_path = os.path.splitext(path)[0] + ".json"
    with open(meta_path) as f:
        meta = json.load(f)
    return rows, meta


def check_complete(rows, meta):
    n = 1
    for vals in meta["space"].values():
        n *= len(vals)
    got = {int(r["config"]) for r in rows}
    if len(got) != n:
        sys.exit(f"the table has {len(got)} of the {n} configurations; finish it with "
                 "make_table.py first (it resumes)")
    return n


def full_length_seconds(rows, meta):
    """Per configuration: seconds to train to max_length validating only at
    the end (the table's wall time less the other validations)."""
    out = {}
    for r in rows:
        c = int(r["config"])
        d = out.setdefault(c, {"val": 0.0, "wall": 0.0})
        b = int(r["batches"])
        if b == meta["max_length"]:
            d["wall"] = float(r["wall_s"])
        else:
            d["val"] += float(r["val_s"])
    return {c: d["wall"] - d["val"] for c, d in out.items()}


def yaml_value(v):
    return json.dumps(v)


def det_config(method, meta, args):
    hp = ["hyperparameters:", "  global_batch_size: 64"]
    for name, vals in meta["space"].items():
        hp.append(f"  {name}: {{type: categorical, vals: [{', '.join(yaml_value(v) for v in vals)}]}}")
    s = ["searcher:", "  metric: validation_accuracy", "  smaller_is_better: false",
         f"  max_length: {{batches: {meta['max_length']}}}",
         f"  max_trials: {args.max_trials}",
         f"  max_concurrent_trials: {args.workers}"]
    extra = []
    if method == "det-random":
        s.insert(1, "  name: random")
        extra.append(f"min_validation_period: {{batches: {args.random_period}}}")
    else:
        s.insert(1, "  name: adaptive_asha")
        s += ["  mode: standard", f"  divisor: {args.divisor:g}",
              f"  max_rungs: {args.max_rungs}"]
        if method == "det-asha-tpe":
            s.append("  sampler: tpe")
            if args.tpe_options:
                s.append(f"  tpe: {args.tpe_options}")
    return "\n".join([f"name: replay-{method}"] + hp + s + extra) + "\n"


def asha_rungs(meta, args):
    """Optuna's pruner rungs: det's first bracket's (max_length / divisor^k)."""
    L = meta["max_length"]
    return [int(L // args.divisor ** (args.max_rungs - 1 - i)) for i in range(args.max_rungs)]


def run_method(method, meta, args, budget_s, tmp):
    t0 = time.time()
    if method.startswith("det-"):
        cfg = det_config(method, meta, args)
        path = os.path.join(tmp, method + ".yaml")
        with open(path, "w") as f:
            f.write(cfg)
        cmd = [args.replay_bin, "--table", args.table, "--config", path,
               "--workers", str(args.workers), "--budget_s", str(budget_s),
               "--seeds", str(args.seeds), "--seed_base", str(args.seed_base),
               "--label", method]
    else:
        cfg = None
        sampler = method.split("-")[1]
        cmd = ["/usr/bin/python3", os.path.join(HERE, "replay_optuna.py"),
               "--table", args.table, "--sampler", sampler, "--pruner", "sh",
               "--workers", str(args.workers), "--budget-s", str(budget_s),
               "--seeds", str(args.seeds), "--seed-base", str(args.seed_base),
               "--rungs", ",".join(str(r) for r in asha_rungs(meta, args)),
               "--divisor", f"{args.divisor:g}", "--label", method]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return {"method": method, "error": p.stderr.strip()[-2000:], "config": cfg}
    out = json.loads(p.stdout)
    out.update(method=method, config=cfg, real_seconds=round(time.time() - t0, 1),
               command=" ".join(os.path.relpath(c, db.REPO) if os.path.exists(c) else c
                                for c in cmd))
    return out


def best_at(curve, t):
    """Best accuracy seen by time t (0 before the first validation)."""
    i = bisect.bisect_right([c[0] for c in curve], t)
    return curve[i - 1][1] if i else 0.0


def quartiles(xs):
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], statistics.median(xs), q[2]


def summarize(r, budget_s, grid):
    curves = [s["curve"] for s in r["seeds"]]
    med, lo, hi = [], [], []
    for t in grid:
        q1, m, q3 = quartiles([best_at(c, t) for c in curves])
        lo.append(q1)
        med.append(m)
        hi.append(q3)
    finals = [best_at(c, budget_s) for c in curves]
    r["median_curve"] = {"t": grid, "q1": lo, "median": med, "q3": hi}
    r["final"] = dict(zip(("q1", "median", "q3"), quartiles(finals)))
    r["mean_trials"] = statistics.mean(s["trials"] for s in r["seeds"])
    r["mean_distinct"] = statistics.mean(s["distinct"] for s in r["seeds"])
    return r


def first_time(r, target):
    """When the median curve first reaches `target` (None: never)."""
    mc = r["median_curve"]
    for t, m in zip(mc["t"], mc["median"]):
        if m >= target - 1e-12:
            return t
    return None


def seed_times(r, target):
    """Each seed's time to reach target (inf when it never does)."""
    out = []
    for s in r["seeds"]:
        t = next((c[0] for c in s["curve"] if c[1] >= target - 1e-12), float("inf"))
        out.append(t)
    return out


def compare(res, det, peer):
    """det against peer: the time det's median curve takes to reach the
    final median of peer, over peer's own time to reach it."""
    a, b = res[det], res[peer]
    target = b["final"]["median"]
    tb, ta = first_time(b, target), first_time(a, target)
    ratio = (ta / tb) if (ta is not None and tb) else None
    sa, sb = seed_times(a, target), seed_times(b, target)
    return {"det": det, "peer": peer, "target": target, "peer_time_s": tb,
            "det_time_s": ta, "ratio": ratio,
            "det_final_median": a["final"]["median"], "peer_final_median": b["final"]["median"],
            "seed_median_time_det_s": statistics.median(sa),
            "seed_median_time_peer_s": statistics.median(sb),
            "seeds_reaching_det": sum(1 for x in sa if x != float("inf")),
            "seeds_reaching_peer": sum(1 for x in sb if x != float("inf")),
            "time_met": ratio is not None and ratio <= 0.5,
            "final_met": a["final"]["median"] > b["final"]["median"]}


def plot(res, methods, budget_s, path, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(8.5, 5))
    for m in methods:
        r = res[m]
        if "median_curve" not in r:
            continue
        mc = r["median_curve"]
        line = ax.step(mc["t"], mc["median"], where="post",
                       label=f"{LABELS[m]} (median, final {r['final']['median']:.3f})")[0]
        ax.fill_between(mc["t"], mc["q1"], mc["q3"], step="post", alpha=0.15,
                        color=line.get_color())
    ax.set_xlabel("virtual time (s of the table's real training time)")
    ax.set_ylabel("best validation accuracy so far")
    ax.set_xlim(0, budget_s)
    lows = [res[m]["median_curve"]["q1"][len(res[m]["median_curve"]["t"]) // 10]
            for m in methods if "median_curve" in res[m]]
    if lows:
        ax.set_ylim(max(0.0, min(lows) - 0.02), None)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def fmt(x, d=3):
    return "–" if x is None else (f"{x:.{d}f}" if isinstance(x, float) else str(x))


def report(res, out):
    a = res["args"]
    L = ["# Replay: search methods on recorded CIFAR-10 trainings", "",
         f"Replayed {db.machine_line(res['machine'])} (the replay itself is CPU-cheap; "
         "the times below are the table's recorded training times, not this run's).", "",
         f"Command: `bench/search/replay.py {res['argv']}` ({res['bench_seconds']:.0f} s in all).", "",
         "## The table", "",
         f"`{os.path.relpath(a['table'], db.REPO)}`: {res['configs']} configurations (the full product "
         f"of {', '.join(f'{k} {v}' for k, v in res['table_meta']['space'].items())}; fixed "
         f"{json.dumps(res['table_meta']['fixed'])}), each trained once by det-trial "
         f"({res['table_meta']['threads']} thread) from scratch to {res['table_meta']['max_length']} batches "
         f"on {res['table_meta']['train_limit']} training images, validated every "
         f"{res['table_meta']['period']} batches on {res['table_meta']['validation_limit']} test "
         f"images; recorded {res['table_meta'].get('started')} with "
         f"`{res['table_meta']['command']}` ({res['table_meta']['machine']}; see "
         "bench/search/table/cifar10.json). Best configuration in the table: "
         f"{res['table_best']['accuracy']:.3f} at {res['table_best']['batches']} batches "
         f"(best at the full length: {res['table_best_full']:.3f}); median full-length run "
         f"{res['median_full_s']:.1f} s.", "",
         "## The replay", "",
         f"{a['seeds']} seeds per method (experiment seeds / sampler seeds {a['seed_base']}–"
         f"{a['seed_base'] + a['seeds'] - 1}), {a['workers']} workers, virtual budget "
         f"{res['budget_s']:.1f} s ({res['budget_rule']}). A trial waits for a free worker, then "
         "reaches each of its validation points at the table's time (process start, data "
         "load and training, plus the validations it makes), and reports the table's "
         "accuracy there; a stopped (pruned) trial frees its worker at once. det's methods "
         "are `searcher.NewSearchMethod` on the generated configs below (the master's own "
         "classes, `bench/search/replay.cc`); Optuna's run through `study.ask()` / "
         "`trial.report()` / `trial.should_prune()` / `study.tell()` "
         f"(`bench/search/replay_optuna.py`, Optuna {res.get('optuna_version', '?')}), rungs "
         f"{res['rungs']} batches (min_resource {res['rungs'][0]}, reduction_factor "
         f"{a['divisor']:g}). Neither side is charged its own computing time.", ""]
    rows = []
    for m in res["order"]:
        r = res["methods"][m]
        if "error" in r:
            rows.append([LABELS[m], "not run: " + r["error"].splitlines()[-1][:120],
                         "", "", "", "", ""])
            continue
        mc = r["median_curve"]
        at = []
        for f in (0.25, 0.5, 0.75):
            i = min(range(len(mc["t"])), key=lambda k: abs(mc["t"][k] - f * res["budget_s"]))
            at.append(f"{mc['median'][i]:.3f}")
        fi = r["final"]
        rows.append([LABELS[m], *at,
                     f"**{fi['median']:.3f}** ({fi['q1']:.3f}–{fi['q3']:.3f})",
                     f"{r['mean_trials']:.0f} ({r['mean_distinct']:.0f})",
                     f"{r['real_seconds']:.1f}"])
    L += ["Best accuracy so far, median over seeds (quartiles at the end):", "",
          db.md_table(["method", "@25% of budget", "@50%", "@75%", "@100% (q1–q3)",
                       "trials per seed (distinct configurations)", "replay real s"], rows), ""]
    if res.get("plot"):
        L += [f"![median and quartiles of the best accuracy against virtual time]"
              f"({os.path.basename(res['plot'])})", ""]
    L += ["## Targets", "",
          "Time to target: the time det's median curve takes to reach the final median "
          "of the method it is compared with, over the time that method's own median "
          "curve takes (target ≤ 0.5); and the final medians (target: det's higher). "
          "Per-seed medians of the time to the same accuracy alongside (∞: more than "
          "half the seeds never reach it).", ""]
    rows = []
    for c in res["comparisons"]:
        if c is None:
            continue
        rows.append([f"{LABELS[c['det']]} vs {LABELS[c['peer']]}", f"{c['target']:.4f}",
                     fmt(c["peer_time_s"], 1), fmt(c["det_time_s"], 1), fmt(c["ratio"], 2),
                     f"{fmt(c['seed_median_time_det_s'], 1)} / {fmt(c['seed_median_time_peer_s'], 1)}",
                     f"{c['det_final_median']:.4f} vs {c['peer_final_median']:.4f}",
                     ("met" if c["time_met"] else "**missed**") + " / " +
                     ("met" if c["final_met"] else "**missed**")])
    L += [db.md_table(["comparison", "target accuracy", "peer's time (s)", "det's time (s)",
                       "ratio", "per-seed median time det / peer (s)", "final medians",
                       "time / final target"], rows), ""]
    L += res.get("verdict", []) + [""]
    L += ["## det's configs", ""]
    for m in res["order"]:
        r = res["methods"][m]
        if r.get("config"):
            L += [f"{LABELS[m]}:", "", "```yaml", r["config"].rstrip(), "```", ""]
    return "\n".join(L) + "\n"


def verdict(comps):
    out = []
    for c in comps:
        if c is None:
            continue
        name = f"{LABELS[c['det']]} against {LABELS[c['peer']]}"
        if c["ratio"] is None:
            t = (f"time: **missed** — det's median never reaches {c['target']:.4f} "
                 "within the budget")
        else:
            t = (f"time: {'met' if c['time_met'] else '**missed**'} — {c['det_time_s']:.1f} s "
                 f"against {c['peer_time_s']:.1f} s, ratio {c['ratio']:.2f} (target ≤ 0.5"
                 + ("" if c["time_met"] else f", {c['ratio'] / 0.5:.2f}× over") + ")")
        gap = c["det_final_median"] - c["peer_final_median"]
        f = (f"final median: {'met' if c['final_met'] else '**missed**'} — "
             f"{c['det_final_median']:.4f} against {c['peer_final_median']:.4f} "
             f"({gap:+.4f})")
        sd, sp = c["seed_median_time_det_s"], c["seed_median_time_peer_s"]
        per_seed = (f"per seed, the median time to {c['target']:.4f} is {fmt(sd, 1)} s "
                    f"against {fmt(sp, 1)} s"
                    + (f" (ratio {sd / sp:.2f})" if sp not in (0, float("inf"))
                       and sd != float("inf") else ""))
        out.append(f"- {name}: {t}; {f}; {per_seed}.")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default=None)
    ap.add_argument("--table", default=TABLE)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--seeds", type=int, default=50)
    ap.add_argument("--seed-base", type=int, default=1)
    ap.add_argument("--budget-s", type=float, default=0)
    ap.add_argument("--budget-frac", type=float, default=0.25)
    ap.add_argument("--max-trials", type=int, default=2000)
    ap.add_argument("--max-rungs", type=int, default=3)
    ap.add_argument("--divisor", type=float, default=4)
    ap.add_argument("--random-period", type=int, default=32)
    ap.add_argument("--methods", default="det-random,det-asha,det-asha-tpe,"
                    "optuna-tpe-sh,optuna-random-sh")
    ap.add_argument("--tpe-options", default="",
                    help="det-asha-tpe's searcher.tpe, a YAML flow map, e.g. "
                    "'{random_fraction: 0.333}' (default: none, det's defaults)")
    ap.add_argument("--label", default="replay")
    args = ap.parse_args()
    args.table = os.path.abspath(args.table)
    args.replay_bin = db.binary(db.build_dir(args.build_dir), "det-bench-replay")
    rows, meta = load_table(args.table)
    n = check_complete(rows, meta)
    full = full_length_seconds(rows, meta)
    if args.budget_s:
        budget_s, rule = args.budget_s, "--budget-s"
    else:
        budget_s = args.budget_frac * sum(full.values()) / args.workers
        rule = (f"{args.budget_frac:g} × the {sum(full.values()):.0f} s it takes to train all "
                f"{n} configurations to full length once, over {args.workers} workers")
    best = max(rows, key=lambda r: float(r["accuracy"]))
    t_start = time.time()
    res = {"machine": db.machine(), "args": {k: v for k, v in vars(args).items()
                                             if k != "replay_bin"},
           "argv": " ".join(sys.argv[1:]), "table_meta": meta, "configs": n,
           "table_best": {"accuracy": float(best["accuracy"]), "batches": int(best["batches"])},
           "table_best_full": max(float(r["accuracy"]) for r in rows
                                  if int(r["batches"]) == meta["max_length"]),
           "median_full_s": statistics.median(full.values()),
           "budget_s": budget_s, "budget_rule": rule, "rungs": asha_rungs(meta, args),
           "order": args.methods.split(","), "methods": {}}
    grid = [round(budget_s * i / 500, 3) for i in range(501)]
    with tempfile.TemporaryDirectory() as tmp:
        for m in res["order"]:
            print(f"[replay] {m}", flush=True)
            r = run_method(m, meta, args, budget_s, tmp)
            if "error" not in r:
                summarize(r, budget_s, grid)
                if "optuna" in r:
                    res["optuna_version"] = r["optuna"]
                print(f"  final median {r['final']['median']:.4f} "
                      f"({r['real_seconds']:.1f} s)", flush=True)
            else:
                print(f"  failed: {r['error'][-300:]}", flush=True)
            res["methods"][m] = r
    ok = {m: r for m, r in res["methods"].items() if "error" not in r}
    pairs = [("det-asha-tpe", "optuna-tpe-sh"), ("det-asha-tpe", "det-asha"),
             ("det-asha", "optuna-tpe-sh")]
    res["comparisons"] = [compare(ok, a, b) if a in ok and b in ok else None
                          for a, b in pairs]
    res["verdict"] = verdict(res["comparisons"])
    res["bench_seconds"] = time.time() - t_start
    out = os.path.join(db.RESULTS, args.label)
    title = (f"Replay on {n} recorded CIFAR-10 trainings: {args.workers} workers, "
             f"{args.seeds} seeds, median and quartiles\n{res['machine']['date']}")
    res["plot"] = plot(ok, [m for m in res["order"] if m in ok], budget_s, out + ".png",
                       title)
    with open(out + ".json", "w") as f:
        json.dump(res, f)
    with open(out + ".md", "w") as f:
        f.write(report(res, out))
    print("\n".join(res["verdict"]))
    print(f"[replay] wrote {out}.md")


if __name__ == "__main__":
    main()
