#!/usr/bin/python3
"""Scale: simulated workers against one real det-master.

    bench/scale/run.py [--build-dir DIR] [--workers 200] [--slots 8]
                       [--trials 1000,2000,5000,10000,20000] [--batch-ms 2000]
                       [--perf]

For each size N: a fresh det-master (SQLite store), det-bench-sim with
W simulated workers x S slots (threads speaking the real worker protocol
over gRPC, one connection each; a trial "trains" batch_ms per batch,
reports a validation at each rung, a checkpoint and an exit, and stops at
once when ASHA stops it), and an adaptive_asha experiment of N trials with
max_concurrent_trials = W*S. Measures master RSS (/proc), slot idle time
between trials on the client side (exit written -> next StartTrial for that
slot), the scheduling latency as the issue defines it (trial ready ->
StartTrial sent) from the master's own histogram on /metrics, master CPU,
and wall time. Writes bench/results/scale.md, scale.json, scale.png.
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
import detbench as db  # noqa: E402


SCHED_TARGET_S = 0.020  # p99 scheduling latency target; a histogram bound


def hist_quantile_ms(buckets, q):
    """Quantile q of a Prometheus histogram in ms, interpolated linearly
    inside the bucket that holds it (as Prometheus' histogram_quantile does;
    the first bucket starts at 0). None without observations."""
    if not buckets or buckets[-1][1] == 0:
        return None
    target = q * buckets[-1][1]
    lo, below = 0.0, 0
    for le, c in buckets:
        if c >= target:
            if le == float("inf"):
                return 1000 * lo
            share = (target - below) / max(1, c - below)
            return 1000 * (lo + (le - lo) * share)
        lo, below = le, c
    return 1000 * lo


def hist_share_within(buckets, bound):
    """Share of observations <= bound; exact when bound is a bucket bound."""
    if not buckets or buckets[-1][1] == 0:
        return None
    for le, c in buckets:
        if abs(le - bound) < 1e-12:
            return c / buckets[-1][1]
    return None


def hist_minus(a, b):
    """Bucket-wise a - b of two cumulative histograms with the same bounds."""
    bb = dict(b)
    return [(le, c - bb.get(le, 0)) for le, c in a]


def sched_summary(buckets):
    if not buckets or buckets[-1][1] == 0:
        return {"count": 0}
    return {"count": buckets[-1][1], "p50_ms": hist_quantile_ms(buckets, 0.5),
            "p99_ms": hist_quantile_ms(buckets, 0.99),
            "share_within_target": hist_share_within(buckets, SCHED_TARGET_S),
            "max_le_ms": 1000 * next(le for le, c in buckets if c >= buckets[-1][1])}


def asha_config(n, concurrent, max_length, divisor, max_rungs):
    return f"""name: scale-{n}
hyperparameters:
  x: {{type: double, minval: 0.0, maxval: 1.0}}
  y: {{type: double, minval: 0.0, maxval: 1.0}}
searcher:
  name: adaptive_asha
  metric: validation_accuracy
  smaller_is_better: false
  max_trials: {n}
  max_concurrent_trials: {concurrent}
  max_length: {{batches: {max_length}}}
  divisor: {divisor}
  max_rungs: {max_rungs}
  mode: standard
max_restarts: 0
reproducibility: {{experiment_seed: 5}}
"""


def perf_record(pid, seconds, out_txt):
    """perf record -g on the master for a while; keeps the top of the report."""
    data = out_txt + ".data"
    try:
        # DWARF unwinding: the Release build keeps no frame pointers, so
        # -g alone would lose the callers of libstdc++'s map iteration.
        subprocess.run(["perf", "record", "-F", "199", "--call-graph",
                        "dwarf,32768", "-p", str(pid),
                        "-o", data, "--", "sleep", str(seconds)],
                       capture_output=True, timeout=seconds + 60)
        def rep(*extra):
            return subprocess.run(["perf", "report", "-i", data, "--stdio", *extra],
                                  capture_output=True, text=True, timeout=600).stdout
        with open(out_txt, "w") as f:
            f.write("# 1. flat profile (self time), by shared object and symbol\n")
            f.write(rep("--no-children", "-g", "none", "--percent-limit", "0.5",
                        "--sort", "dso,symbol"))
            f.write("\n# 2. inclusive time (self + callees), by symbol\n")
            f.write(rep("--children", "-g", "none", "--percent-limit", "1",
                        "--sort", "symbol"))
            f.write("\n# 3. who calls std::_Rb_tree_increment (std::map iteration)\n")
            f.write(rep("--no-children", "--symbol-filter", "_Rb_tree_increment",
                        "-g", "caller,0.5,callee,function,percent", "--max-stack", "6",
                        "--percent-limit", "0.5")[:60000])
    except (OSError, subprocess.SubprocessError) as e:
        with open(out_txt, "w") as f:
            f.write(f"perf failed: {e}\n")
    finally:
        if os.path.exists(data):
            os.remove(data)


def run_size(bdir, sim, args, n, perf_out=None):
    env = dict(kv.split("=", 1) for kv in args.master_env)
    c = db.Cluster(bdir, tag=f"det-scale-{n}", master_bin=args.master_bin,
                   master_env=env)
    try:
        c.start_master()
        ready = os.path.join(c.dir, "sim.ready")
        stats_path = os.path.join(c.dir, "sim.json")
        samples_path = os.path.join(c.dir, "sim.samples")
        sim_p = db.spawn([sim, "--master", c.grpc, "--workers", str(args.workers),
                          "--slots", str(args.slots), "--mode", "scale",
                          "--batch_ms", str(args.batch_ms),
                          "--jitter", str(args.jitter), "--ready_file", ready,
                          "--out", stats_path, "--samples_out", samples_path,
                          "--connect_timeout_s", "120"],
                         os.path.join(c.dir, "sim.log"))
        deadline = time.time() + 150
        while not os.path.exists(ready):
            if sim_p.poll() is not None or time.time() > deadline:
                raise RuntimeError("det-bench-sim did not connect:\n" + c.log("sim.log"))
            time.sleep(0.1)
        c.wait_agents(args.workers, timeout=60)
        time.sleep(1.0)
        # What the connected workers cost the master with nothing to run
        # (heartbeats), so it can be told apart from the per-trial cost.
        idle0, t_idle = db.cpu_seconds(c.master.pid), time.time()
        time.sleep(args.idle_seconds)
        idle_rate = (db.cpu_seconds(c.master.pid) - idle0) / (time.time() - t_idle)
        rss0 = db.rss_kib(c.master.pid)
        cpu0 = db.cpu_seconds(c.master.pid)
        sim_cpu0 = db.cpu_seconds(sim_p.pid)
        timeline = []  # (s since create, rss KiB, trials created, trials done)
        peak = [rss0]
        t0 = time.time()
        eid = c.create_experiment(asha_config(
            n, args.workers * args.slots, args.max_length, args.divisor,
            args.max_rungs))
        # The experiment's first trials (as many as its brackets may run at
        # once) are created in chunks of 8 trials, each chunk committed and
        # started before the next is created, all before the create call
        # returns (so the call's duration is the whole burst's); no
        # slot frees before its trial's first batch (batch_ms * (1 - jitter))
        # is done. So /metrics read now holds exactly the creation burst, and
        # the rest of the run's starts are the steady state (a freed slot, a
        # new trial).
        create_s = time.time() - t0
        burst_hist = db.histogram(c.prometheus(), "det_scheduling_latency_seconds")
        burst_created = int(c.experiment(eid).get("num_trials", 0))
        burst_read_s = time.time() - t0
        perf_thread = None
        if perf_out:
            def later():
                time.sleep(args.perf_delay)
                perf_record(c.master.pid, args.perf_seconds, perf_out)
            perf_thread = threading.Thread(target=later, daemon=True)
            perf_thread.start()

        def on_poll(x):
            r = db.rss_kib(c.master.pid)
            peak[0] = max(peak[0], r)
            done = (int(x.get("trials_completed", 0)) + int(x.get("trials_errored", 0))
                    + int(x.get("trials_canceled", 0)))
            timeline.append((round(time.time() - t0, 2), r,
                             int(x.get("num_trials", 0)), done))
        timed_out = False
        try:
            x = c.wait_terminal(eid, timeout=args.timeout, poll=1.0, on_poll=on_poll)
        except RuntimeError:
            timed_out = True
            x = c.experiment(eid)
        wall = (db.us(x["end_time_us"]) / 1e6 - t0) if not timed_out else time.time() - t0
        rss1 = db.rss_kib(c.master.pid)
        peak[0] = max(peak[0], rss1)
        cpu = db.cpu_seconds(c.master.pid) - cpu0
        sim_cpu = db.cpu_seconds(sim_p.pid) - sim_cpu0
        prom = c.prometheus()
        hist = db.histogram(prom, "det_scheduling_latency_seconds")
        # Workers the master declared lost (a heartbeat not processed within
        # agent_timeout) make their trials restart: a sign of overload.
        try:
            tl = c.trials(eid)
        except Exception:  # noqa: BLE001 - best effort
            tl = []
        restarted = sum(1 for t in tl if int(t.get("restarts", 0)) > 0)
        lost_lines = sum(1 for line in c.log("master.log").splitlines()
                         if "lost" in line)
        if perf_thread:
            perf_thread.join(timeout=args.perf_delay + args.perf_seconds + 400)
        db.stop_process(sim_p, timeout=120)
        with open(stats_path) as f:
            s = json.load(f)
        samples = []
        if os.path.exists(samples_path):
            with open(samples_path) as f:
                for line in f:
                    t, ms = line.split()
                    samples.append((float(t), float(ms)))
        trials_done = timeline[-1][3] if timeline else 0
        created = int(x.get("num_trials", 0))
        return {
            "trials": n, "created": created, "state": x.get("state"),
            "timed_out": timed_out, "trials_done": trials_done,
            "wall_s": wall, "trials_per_s": (trials_done if timed_out else created) / wall,
            "rss_baseline_kib": rss0, "rss_end_kib": rss1, "rss_peak_kib": peak[0],
            "rss_per_trial_bytes": (peak[0] - rss0) * 1024 / max(1, created),
            "master_cpu_s": cpu, "master_cpu_share": cpu / wall,
            "master_cpu_ms_per_trial": 1000 * cpu / max(1, created),
            "master_idle_cpu_share": idle_rate,
            "master_cpu_ms_per_trial_net": 1000 * max(0.0, cpu - idle_rate * wall)
            / max(1, created),
            "sim_cpu_s": sim_cpu,
            "slot_idle_ms": s["slot_idle_ms"], "ack_ms": s["ack_ms"],
            "sim": {k: s[k] for k in ("starts", "stops_received", "exits_completed",
                                      "exits_stopped", "messages_sent", "errors",
                                      "slot_conflicts", "duplicate_starts")
                    if k in s},
            "trials_restarted": restarted, "master_log_lost_lines": lost_lines,
            "master_sched_hist": hist,
            "master_sched_p50_le": db.histogram_quantile(hist, 0.5),
            "master_sched_p99_le": db.histogram_quantile(hist, 0.99),
            "sched_count": hist[-1][1] if hist else 0,
            "sched_p50_ms": hist_quantile_ms(hist, 0.5),
            "sched_p99_ms": hist_quantile_ms(hist, 0.99),
            "sched_share_within_target": hist_share_within(hist, SCHED_TARGET_S),
            "sched_burst": dict(sched_summary(burst_hist), read_after_s=burst_read_s,
                                create_call_s=create_s, trials_created=burst_created,
                                clean=(burst_read_s < args.batch_ms * (1 - args.jitter) / 1000
                                       and bool(burst_hist)
                                       and burst_hist[-1][1] == burst_created)),
            "sched_steady": sched_summary(hist_minus(hist, burst_hist)),
            "timeline": timeline,
            "idle_samples": samples[:: max(1, len(samples) // 4000)],
            "db_bytes": c.db_bytes(),
        }
    finally:
        c.close()


def kb(v):
    return f"{v / 1024:,.1f}"


def sched_cell(r, key):
    v = r.get(key)
    if v is None:  # a run from before the fine buckets
        le = r.get("master_sched_p99_le") if key == "sched_p99_ms" else None
        return f"≤{1000 * le:g}" if le is not None else "–"
    return f"{v:.1f}"


def within_cell(r):
    w = r.get("sched_share_within_target")
    return f"{100 * w:.2f}%" if w is not None else "–"


def report(res):
    m = res["machine"]
    a = res["args"]
    L = ["# Scale: simulated workers against one det-master", "",
         f"Measured {db.machine_line(m)}; load average at the end {res['load_at_end']}. "
         "The machine is shared; the master, the simulator (all its threads) and this "
         f"script share its {m['cores']} cores.", "",
         f"Command: `bench/scale/run.py --workers {a['workers']} --slots {a['slots']} "
         f"--trials {a['trials']} --batch-ms {a['batch_ms']:g} --jitter {a['jitter']:g}` "
         f"({res['bench_seconds']:.0f} s in all). det-master binary: "
         f"`{res['master_bin']}` (built {res['master_built']})"
         + (f", environment {' '.join(a['master_env'])}" if a["master_env"] else "") + ".", "",
         f"Setup: one det-master ({store_words(res)}, HTTP /metrics on) "
         f"and det-bench-sim with {a['workers']} simulated workers × {a['slots']} slots = "
         f"{a['workers'] * a['slots']} slots, each worker its own gRPC connection and "
         "bidirectional stream. The experiment: adaptive_asha, standard mode, divisor "
         f"{a['divisor']}, max_rungs {a['max_rungs']}, max_length {a['max_length']} batches, "
         f"max_concurrent_trials {a['workers'] * a['slots']}. A simulated trial takes "
         f"{a['batch_ms']:g} ms × U({1 - a['jitter']:g}, {1 + a['jitter']:g}) per batch (its own "
         "speed, drawn when it starts), reports a validation at each rung, then a "
         "checkpoint and its exit; ASHA's stop makes it report a checkpoint and exit at once.",
         ""]
    rows = []
    for r in res["sizes"]:
        rows.append([
            f"{r['trials']:,}" + (" (timed out)" if r["timed_out"] else ""),
            f"{r['trials_done']:,}", f"{r['wall_s']:.1f}", f"{r['trials_per_s']:.0f}",
            kb(r["rss_baseline_kib"]), kb(r["rss_peak_kib"]),
            f"{r['rss_per_trial_bytes'] / 1024:.1f}",
            f"{100 * r['master_cpu_share']:.0f}%",
            f"{r.get('master_cpu_ms_per_trial_net', r['master_cpu_ms_per_trial']):.1f}",
            f"{r['trials_restarted']:,}" if "trials_restarted" in r else "–"])
    L += ["### Memory, CPU, throughput", "",
          db.md_table(["trials", "done", "wall (s)", "trials/s", "master RSS before (MiB)",
                       "peak (MiB)", "KiB per trial", "master CPU (share of one core)",
                       "master CPU ms per trial", "trials restarted"], rows), ""]
    rows = []
    for r in res["sizes"]:
        si = r["slot_idle_ms"]
        b, st = r.get("sched_burst", {}), r.get("sched_steady", {})
        rows.append([
            f"{r['trials']:,}",
            f"{int(r.get('sched_count', 0)):,}",
            f"{sched_cell(r, 'sched_p50_ms')} / {sched_cell(r, 'sched_p99_ms')}",
            within_cell(r),
            f"{int(b['count']):,}" + ("" if b.get("clean") else " (!)")
            + (f" (create call {b['create_call_s']:.2f} s)" if "create_call_s" in b else "")
            if b.get("count") else "–",
            f"{b['p50_ms']:.1f} / {b['p99_ms']:.1f}" if b.get("count") else "–",
            f"{int(st['count']):,}" if st.get("count") else "0",
            f"{st['p50_ms']:.2f} / {st['p99_ms']:.2f}" if st.get("count") else "–",
            f"{100 * st['share_within_target']:.2f}%" if st.get("count") else "–",
            f"{si['p50']:.1f} / {si['p99']:.1f}" if si.get("count") else "–"])
    L += ["### Scheduling latency (trial ready → StartTrial sent)", "",
          db.md_table(["trials", "starts", "all: p50 / p99 (ms)", "all: ≤ 20 ms",
                       "creation burst: starts", "burst p50 / p99 (ms)",
                       "steady state: starts", "steady p50 / p99 (ms)", "steady: ≤ 20 ms",
                       "slot idle p50 / p99 (ms), simulator"], rows), ""]
    L += ["- *slot idle* (simulator side): measured by the simulator, from writing a trial's exit on a slot "
          "to the next StartTrial for that slot: the time a freed slot waits, which is what "
          "scheduling latency costs a user (it includes the master's queue of messages from "
          "the other workers, gRPC and loopback). Only slots that got a next trial count: "
          "with fewer trials than slots no slot is ever reused (–).",
          "- *ready → start*: the scheduling latency as the issue defines it, from the "
          "master's det_scheduling_latency_seconds on /metrics: from a trial being queued "
          "(created by the searcher and ready to run) to its StartTrial being put on the "
          "worker's stream, one observation per start. Its buckets are 0.5, 1, 2, 5, 10, 20, "
          "50, 100 ms...; p50/p99 are interpolated inside their bucket (as Prometheus' "
          "histogram_quantile does), and *starts ≤ 20 ms* is exact (20 ms is a bucket bound): "
          "the p99 target is met when it is at least 99%. It does not include the time the "
          "event that made the trial ready (the previous trial's exit) waited to be read: "
          "slot idle does.",
          "- *creation burst*: the experiment's first trials (as many as its ASHA brackets "
          "may run at once), created 8 per transaction inside the create call, each chunk "
          "started as soon as it commits; a trial is ready when the master creates it "
          "(before its chunk commits), so the create call's duration (in the starts column) "
          "is what the last trial of the burst waited from the request to being created "
          "and started. Read from /metrics as soon as the create call returns, before any slot "
          "can free; (!) marks a read that was late or saw another count. *Steady state*: "
          "every later start, a trial created when an earlier one ended and started on the "
          "slot it freed.",
          "- *trials restarted*: trials the master restarted because it declared their "
          "worker lost (no heartbeat processed within agent_timeout, 30 s): with a backlog "
          "of messages, healthy workers' heartbeats wait in the queue too.",
          "- *KiB per trial*: (peak RSS − RSS with the workers connected and no experiment) / "
          "trials created.",
          "- *master CPU ms per trial*: the master's CPU time over the run / trials"
          + (f", less what it spends with the workers connected and nothing to run "
             f"(heartbeats; measured for {a['idle_seconds']:g} s before each experiment)"
             if a.get("idle_seconds") else
             " (heartbeats of the idle workers included: not measured apart in this run)")
          + ". Constant per-trial work would keep it flat; it grows with the experiment's "
          "size when each event costs O(trials).", ""]
    verdicts = []
    for r in res["sizes"]:
        w = r.get("sched_share_within_target")
        if r["timed_out"] or w is None:
            continue
        st = r.get("sched_steady", {})
        steady = (f"; steady state: p99 {st['p99_ms']:,.2f} ms, "
                  f"{100 * st['share_within_target']:.2f}% of {int(st['count']):,} within "
                  f"20 ms ({'met' if st['share_within_target'] >= 0.99 else 'MISSED'})"
                  if st.get("count") else "; no steady-state start (fewer trials than slots)")
        verdicts.append(f"scheduling latency (ready → start sent) at {r['trials']:,} trials, "
                        f"all starts: p99 {r['sched_p99_ms']:,.1f} ms, {100 * w:.2f}% of "
                        f"{int(r['sched_count']):,} within 20 ms → target p99 ≤ 20 ms "
                        f"{'met' if w >= 0.99 else 'MISSED'}" + steady)
    for r in res["sizes"]:
        if r["timed_out"] or not r["slot_idle_ms"].get("count"):
            continue
        p99 = r["slot_idle_ms"]["p99"]
        verdicts.append(f"p99 slot idle (client side, exit → next start) at {r['trials']:,} "
                        f"trials: {p99:,.1f} ms {'(within' if p99 <= 20 else '(over'} 20 ms)")
    for r in res["sizes"][-1:]:
        kib = r["rss_per_trial_bytes"] / 1024
        verdicts.append(f"master memory at {r['trials']:,} trials: {kib:.1f} KiB per trial → "
                        f"target ≤ 50 KB {'met' if kib * 1024 <= 50000 else 'MISSED'}")
    if len(res["sizes"]) >= 2:
        lo, hi = res["sizes"][0], res["sizes"][-1]
        f = hi["trials"] / lo["trials"]
        cpu = (hi.get("master_cpu_ms_per_trial_net", hi["master_cpu_ms_per_trial"]) /
               max(1e-9, lo.get("master_cpu_ms_per_trial_net", lo["master_cpu_ms_per_trial"])))
        mem = (hi["rss_peak_kib"] - hi["rss_baseline_kib"]) / max(
            1, lo["rss_peak_kib"] - lo["rss_baseline_kib"])
        verdicts.append(f"growth from {lo['trials']:,} to {hi['trials']:,} trials (×{f:g}): "
                        f"master memory ×{mem:.1f} (linear or better: "
                        f"{'yes' if mem <= f * 1.1 else 'no'}); master CPU per trial ×{cpu:.1f} "
                        f"(so total CPU ×{cpu * f:.0f}: "
                        f"{'linear or better' if cpu <= 1.2 else 'worse than linear'})")
    for r in res["sizes"]:
        if r["timed_out"]:
            verdicts.append(f"{r['trials']:,} trials did not finish within "
                            f"{a['timeout']} s ({r['trials_done']:,} done)")
    if verdicts:
        L += ["## Verdict", ""] + [f"- {v}" for v in verdicts] + [""]
    if res.get("plot"):
        L += [f"![scale]({os.path.basename(res['plot'])})", ""]
    if res.get("perf"):
        L += [f"A perf profile of the master during the {res['perf']['trials']:,}-trial run "
              f"is in `{os.path.basename(res['perf']['file'])}`.", ""]
    L += ["Where the time goes and what would fix it: bench/README.md, section Scale.", ""]
    return "\n".join(L) + "\n"


def plot(res, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    sizes = res["sizes"]
    n = [r["trials"] for r in sizes]
    fig, ax = plt.subplots(2, 2, figsize=(12, 8))
    a = ax[0][0]
    a.plot(n, [r["rss_per_trial_bytes"] / 1024 for r in sizes], "o-",
           label="master RSS growth per trial")
    a.axhline(50000 / 1024, color="r", ls="--", label="target 50 KB")
    a.set_xlabel("trials in the experiment")
    a.set_ylabel("KiB per trial")
    a.set_ylim(bottom=0)
    a.legend()
    a = ax[0][1]
    reused = [r for r in sizes if r["slot_idle_ms"].get("count")]
    a.plot([r["trials"] for r in reused], [r["slot_idle_ms"]["p50"] for r in reused],
           "o-", label="slot idle p50 (simulator)")
    a.plot([r["trials"] for r in reused], [r["slot_idle_ms"]["p99"] for r in reused],
           "s-", label="slot idle p99 (simulator)")
    sched = [r for r in sizes if r.get("sched_p99_ms") is not None]
    a.plot([r["trials"] for r in sched], [r["sched_p50_ms"] for r in sched],
           "^--", label="ready → start sent p50, all starts (master)")
    a.plot([r["trials"] for r in sched], [r["sched_p99_ms"] for r in sched],
           "v--", label="ready → start sent p99, all starts (master)")
    steady = [r for r in sched if r.get("sched_steady", {}).get("count")]
    a.plot([r["trials"] for r in steady], [r["sched_steady"]["p99_ms"] for r in steady],
           "D-", label="ready → start sent p99, steady state (master)")
    a.axhline(20, color="r", ls="--", label="target p99 20 ms")
    a.set_yscale("log")
    a.set_xlabel("trials in the experiment")
    a.set_ylabel("latency (ms)")
    a.legend(fontsize="small")
    a = ax[1][0]
    a.plot(n, [r.get("master_cpu_ms_per_trial_net", r["master_cpu_ms_per_trial"])
               for r in sizes], "o-", label="master CPU per trial")
    a.set_xlabel("trials in the experiment")
    a.set_ylabel("master CPU ms per trial")
    a.set_ylim(bottom=0)
    a.legend()
    a = ax[1][1]
    for r in sizes:
        s = r["idle_samples"]
        if s:
            a.plot([t for t, _ in s], [ms for _, ms in s], ".", ms=2,
                   label=f"{r['trials']:,} trials")
    a.set_yscale("log")
    a.set_xlabel("seconds into the run")
    a.set_ylabel("slot idle (ms), each reuse")
    a.legend(markerscale=5)
    label = os.path.basename(res.get("master_bin", "det-master"))
    env = " ".join(res["args"].get("master_env", []))
    fig.suptitle(f"{label}{' ' + env if env else ''} with {res['args']['workers']}×"
                 f"{res['args']['slots']} simulated slots — {res['machine']['date']}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def store_words(res):
    if res["args"].get("db", "sqlite") == "postgres":
        return ("PostgreSQL 15 store: a local server on a unix socket, "
                "fsync and synchronous_commit on")
    return "SQLite store in a temporary directory"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default=None)
    ap.add_argument("--workers", type=int, default=200)
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--trials", default="1000,2000,5000,10000,20000")
    ap.add_argument("--batch-ms", type=float, default=5000)
    ap.add_argument("--jitter", type=float, default=0.5,
                    help="a trial's batch time is batch_ms * U(1-j, 1+j)")
    ap.add_argument("--max-length", type=int, default=16)
    ap.add_argument("--divisor", type=int, default=4)
    ap.add_argument("--max-rungs", type=int, default=3)
    ap.add_argument("--idle-seconds", type=float, default=5,
                    help="measure the master's idle CPU (heartbeats) this long")
    ap.add_argument("--timeout", type=float, default=1800,
                    help="seconds per size before giving up")
    ap.add_argument("--perf", action="store_true",
                    help="perf-record the master during the largest size")
    ap.add_argument("--perf-delay", type=float, default=30)
    ap.add_argument("--perf-seconds", type=float, default=20)
    ap.add_argument("--master-bin", default=None,
                    help="another det-master binary (e.g. with a proposed fix)")
    ap.add_argument("--master-env", action="append", default=[],
                    help="KEY=VALUE for the master's environment (repeatable)")
    db.add_db_arg(ap)
    ap.add_argument("--out", default=os.path.join(db.RESULTS, "scale"))
    ap.add_argument("--report-only", action="store_true",
                    help="re-render OUT.md and OUT.png from OUT.json")
    args = ap.parse_args()
    db.set_store(args.db)
    if args.report_only:
        with open(args.out + ".json") as f:
            res = json.load(f)
        res["args"].setdefault("jitter", 0)
        res["args"].setdefault("master_env", [])
        res.setdefault("master_bin", "det-master")
        res.setdefault("master_built", "unknown")
        res["plot"] = plot(res, args.out + ".png")
        with open(args.out + ".md", "w") as f:
            f.write(report(res))
        return
    bdir = db.build_dir(args.build_dir)
    sim = db.binary(bdir, "det-bench-sim")
    sizes = [int(s) for s in args.trials.split(",") if s]
    master_bin = args.master_bin or db.binary(bdir, "det-master")
    res = {"machine": db.machine(), "args": vars(args), "sizes": [],
           "master_bin": master_bin, "master_built": db.built_at(master_bin)}
    t_start = time.time()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    for n in sizes:
        perf_out = (args.out + "-perf.txt") if args.perf and n == max(sizes) else None
        print(f"[scale] {n} trials on {args.workers}x{args.slots}", flush=True)
        r = run_size(bdir, sim, args, n, perf_out)
        res["sizes"].append(r)
        if perf_out:
            res["perf"] = {"trials": n, "file": perf_out}
        si = r["slot_idle_ms"]
        print(f"  {r['trials_done']} done in {r['wall_s']:.1f} s, "
              f"{r['rss_per_trial_bytes'] / 1024:.1f} KiB/trial, idle p50 "
              f"{si.get('p50', float('nan')):.1f} p99 {si.get('p99', float('nan')):.1f} ms, "
              f"ready->start p50 {r['sched_p50_ms'] or float('nan'):.1f} p99 "
              f"{r['sched_p99_ms'] or float('nan'):.1f} ms "
              f"({100 * (r['sched_share_within_target'] or 0):.2f}% <= 20 ms), "
              f"master CPU {100 * r['master_cpu_share']:.0f}%", flush=True)
        # Partial results survive an interrupted run.
        with open(args.out + ".json", "w") as f:
            json.dump(res, f, indent=1)
    res["bench_seconds"] = time.time() - t_start
    res["load_at_end"] = db.load_now()
    res["plot"] = plot(res, args.out + ".png")
    with open(args.out + ".json", "w") as f:
        json.dump(res, f, indent=1)
    with open(args.out + ".md", "w") as f:
        f.write(report(res))
    print(f"[scale] wrote {args.out}.md ({res['bench_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
