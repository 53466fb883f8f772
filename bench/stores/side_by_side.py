#!/usr/bin/env python3
"""The ingest (bench/overhead) and scale (bench/scale) numbers of the two
stores side by side, from their JSON results, into bench/results/stores.md.

Run the four benchmarks first (short runs; see the Command lines in the
output), e.g.:
  bench/overhead/run.py --db sqlite --trials 200 --skip spawn,optuna,second \
      --ingest-seconds 5 --ingest-real-batches 300 \
      --out bench/results/stores-overhead-sqlite     (and --db postgres)
  bench/scale/run.py --db sqlite --workers 100 --slots 8 --trials 1000,4000 \
      --batch-ms 1000 --idle-seconds 3 \
      --out bench/results/stores-scale-sqlite        (and --db postgres)
then: bench/stores/side_by_side.py
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
import detbench as db  # noqa: E402

STORES = ("sqlite", "postgres")


def load(kind, store):
    with open(os.path.join(db.RESULTS, f"stores-{kind}-{store}.json")) as f:
        return json.load(f)


def f0(v):
    return "–" if v is None else f"{v:,.0f}"


def f1(v):
    return "–" if v is None else f"{v:,.1f}"


def main():
    ov = {s: load("overhead", s) for s in STORES}
    sc = {s: load("scale", s) for s in STORES}
    L = ["# SQLite and PostgreSQL stores side by side", "",
         "Short runs on a shared 2-core machine (other agents' builds were "
         "running; load averages below): the ratios between the stores are "
         "what to read, not the absolute numbers. PostgreSQL 15 is a local "
         "server on a unix socket (scripts/pg-local.sh --durable: fsync and "
         "synchronous_commit on, PostgreSQL's defaults), on the same disk as "
         "the SQLite file (WAL, synchronous=NORMAL: an fsync only at "
         "checkpoints). So each PostgreSQL commit waits for a WAL flush and "
         "a SQLite commit does not: that, not the SQL, is most of the "
         "difference below.", ""]
    for s in STORES:
        m = ov[s]["machine"]
        L.append(f"- {s}: overhead run {db.machine_line(m)}, load at end "
                 f"{ov[s]['load_at_end']}; scale run load at end "
                 f"{sc[s]['load_at_end']}")
    L += ["", "## Ingest (bench/overhead): metric reports per second", ""]
    rows = []
    for i, r in enumerate(ov["sqlite"]["ingest_sim"]):
        p = ov["postgres"]["ingest_sim"][i]
        rows.append([f"simulated {r['workers']}×{r['slots']}, {r['group']}",
                     f0(r["reports_per_s_master"]), f0(p["reports_per_s_master"]),
                     f0(r["store_write_mean_us"]), f0(p["store_write_mean_us"])])
    r, p = ov["sqlite"]["ingest_real"], ov["postgres"]["ingest_real"]
    rows.append([f"real workers {r['workers']}×{r['slots']} (det-fake-trial)",
                 f0(r["reports_per_s"]), f0(p["reports_per_s"]), "–", "–"])
    r, p = ov["sqlite"]["det_throughput"], ov["postgres"]["det_throughput"]
    rows.append([f"{r['num_trials']} no-op trials: trials/s",
                 f1(r["num_trials"] / r["wall_s"]),
                 f1(p["num_trials"] / p["wall_s"]),
                 f0(1e6 * r["store_write_s"] / max(1, r["store_writes"])),
                 f0(1e6 * p["store_write_s"] / max(1, p["store_writes"]))])
    L.append(db.md_table(["case", "SQLite", "PostgreSQL",
                          "SQLite store write µs (mean)",
                          "PostgreSQL store write µs (mean)"], rows))
    L += ["", "## Scale (bench/scale): simulated workers, adaptive ASHA", ""]
    rows = []
    for i, r in enumerate(sc["sqlite"]["sizes"]):
        p = sc["postgres"]["sizes"][i]
        rows.append([f"{r['trials']:,}", f1(r["wall_s"]), f1(p["wall_s"]),
                     f"{r['sched_p99_ms']:.1f}", f"{p['sched_p99_ms']:.1f}",
                     f"{r['slot_idle_ms']['p99']:.1f}" if r.get("slot_idle_ms") else "–",
                     f"{p['slot_idle_ms']['p99']:.1f}" if p.get("slot_idle_ms") else "–",
                     f"{100 * r['master_cpu_share']:.0f}%",
                     f"{100 * p['master_cpu_share']:.0f}%",
                     f1(r["rss_per_trial_bytes"] / 1024),
                     f1(p["rss_per_trial_bytes"] / 1024),
                     f"{r['db_bytes'] / 2**20:.1f}", f"{p['db_bytes'] / 2**20:.1f}"])
    L.append(db.md_table(
        ["trials", "wall s SQLite", "wall s PG", "ready→start p99 ms SQLite",
         "PG", "slot idle p99 ms SQLite", "PG", "master CPU SQLite", "PG",
         "KiB/trial SQLite", "PG", "store MiB SQLite", "PG"], rows))
    a = sc["sqlite"]["args"]
    L += ["", f"Scale command: `bench/scale/run.py --db STORE --workers {a['workers']} "
          f"--slots {a['slots']} --trials {a['trials']} --batch-ms {a['batch_ms']:.0f} "
          f"--idle-seconds {a['idle_seconds']:.0f}`; full reports: "
          "stores-scale-sqlite.md, stores-scale-postgres.md, "
          "stores-overhead-sqlite.md, stores-overhead-postgres.md.", ""]
    out = os.path.join(db.RESULTS, "stores.md")
    with open(out, "w") as f:
        f.write("\n".join(L) + "\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
