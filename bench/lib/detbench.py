"""Helpers shared by det's benchmarks: the machine stamp, finding the built
binaries, and a real det cluster (det-master + det-worker processes) on
loopback in a temporary directory, always stopped at the end.

Only the standard library, so every benchmark runs with Debian's python3.
"""
import atexit
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RESULTS = os.path.join(REPO, "bench", "results")

_LIVE = []  # Popen objects started here, stopped at exit


def _stop_all():
    for p in list(_LIVE):
        stop_process(p, timeout=5)


atexit.register(_stop_all)


def _on_signal(sig, frame):
    _stop_all()
    sys.exit(128 + sig)


signal.signal(signal.SIGTERM, _on_signal)


def spawn(argv, log_path, env=None, cwd=None):
    """Starts a process in its own process group (so stop_process can take
    its children too), stdout+stderr to log_path."""
    log = open(log_path, "ab")
    e = dict(os.environ)
    if env:
        e.update(env)
    p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, env=e, cwd=cwd,
                         start_new_session=True)
    log.close()
    _LIVE.append(p)
    return p


def stop_process(p, sig=signal.SIGTERM, timeout=10.0):
    """Signals the process (group), waits, then SIGKILLs the group."""
    if p.poll() is None:
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(p.pid, signal.SIGKILL)  # whatever the group still holds
    except (ProcessLookupError, PermissionError):
        pass
    if p.poll() is None:
        p.wait()
    if p in _LIVE:
        _LIVE.remove(p)


# ---------------------------------------------------------------- machine

def machine():
    """CPU model, cores, memory, kernel, load, date: the stamp every result
    carries."""
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_kb = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem_kb = int(line.split()[1])
    except OSError:
        pass
    try:
        commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short",
                                 "HEAD"], capture_output=True, text=True,
                                timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "date": datetime.datetime.now().astimezone().strftime(
            "%Y-%m-%d %H:%M %Z"),
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "load_avg_at_start": [round(x, 2) for x in os.getloadavg()],
        "commit": commit,
    }


def machine_line(m):
    return (f"{m['date']} · {m['cpu']}, {m['cores']} cores, "
            f"{m['memory_gib']} GiB RAM, Linux {m['kernel']} · "
            f"load average at start {m['load_avg_at_start'][0]} · "
            f"commit {m['commit']}")


def load_now():
    return round(os.getloadavg()[0], 2)


# ---------------------------------------------------------------- binaries

def build_dir(arg=None):
    d = arg or os.environ.get("DET_BUILD_DIR") or os.path.join(REPO, "build")
    return os.path.abspath(d)


def binary(bdir, name):
    """bin/NAME under the det build directory, or under its bench-tools/
    (the standalone bench build) for the bench's own tools."""
    for cand in (os.path.join(bdir, "bin", name),
                 os.path.join(bdir, "bench-tools", "bin", name)):
        if os.access(cand, os.X_OK):
            return cand
    raise SystemExit(
        f"{name} not found under {bdir}/bin or {bdir}/bench-tools/bin; "
        f"build it first (bench/build.sh {bdir})")


def built_at(path):
    """When a binary was built (its mtime), for the results' stamp: the
    commit in the stamp says what the tree was at run time, not what the
    binaries were built from."""
    try:
        return datetime.datetime.fromtimestamp(os.path.getmtime(path)).astimezone(
        ).strftime("%Y-%m-%d %H:%M %Z")
    except OSError:
        return "unknown"


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid):
    """utime+stime of a process, in seconds."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        tck = os.sysconf("SC_CLK_TCK")
        return (int(fields[11]) + int(fields[12])) / tck
    except (OSError, IndexError, ValueError):
        return 0.0


# ---------------------------------------------------------------- cluster

# The store of every Cluster's master: "sqlite" (a file in the cluster's
# folder) or "postgres" (a throwaway PostgreSQL server per cluster, made by
# scripts/pg-local.sh with PostgreSQL's durable defaults: fsync and
# synchronous_commit on, unix socket only). Benchmarks set it from --db.
STORE = "sqlite"


def add_db_arg(ap):
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite",
                    help="the master's store (postgres: a throwaway local "
                         "server started for each cluster)")


def set_store(name):
    global STORE
    STORE = name


PG_LOCAL = os.path.join(REPO, "scripts", "pg-local.sh")


class Cluster:
    """A det-master (SQLite or PostgreSQL store, HTTP on) and workers on
    loopback."""

    def __init__(self, bdir, tag="det-bench", keep=False, base_dir=None,
                 master_bin=None, master_env=None):
        self.bdir = bdir
        # Another det-master binary (e.g. one built with a proposed fix) and
        # extra environment for it.
        self.master_bin = master_bin
        self.master_env = master_env or {}
        self.dir = tempfile.mkdtemp(prefix=tag + ".", dir=base_dir)
        self.keep = keep
        self.master = None
        self.workers = []
        self.grpc = None
        self.http = None
        self.store = STORE
        self.pg_state = None
        self.pg_url = None

    def db_arg(self):
        """The master's --db: a SQLite file, or the URL of this cluster's
        PostgreSQL server (started on first use)."""
        if self.store != "postgres":
            return os.path.join(self.dir, "master.db")
        if self.pg_url is None:
            self.pg_state = os.path.join(self.dir, "pg.state")
            r = subprocess.run([PG_LOCAL, "start", self.pg_state, "--durable"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError("PostgreSQL did not start: " + r.stderr)
            self.pg_url = r.stdout.strip().splitlines()[-1]
        return self.pg_url

    def db_bytes(self):
        """Bytes the store takes (the SQLite file, or the PostgreSQL
        database); call while the master runs."""
        if self.store != "postgres":
            path = os.path.join(self.dir, "master.db")  # main file, no WAL
            return os.path.getsize(path) if os.path.exists(path) else 0
        r = subprocess.run(["psql", "-At", self.pg_url, "-c",
                            "SELECT pg_database_size(current_database())"],
                           capture_output=True, text=True)
        return int(r.stdout.strip() or 0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for w in self.workers:
            stop_process(w, timeout=20)
        self.workers = []
        if self.master is not None:
            stop_process(self.master, timeout=10)
            self.master = None
        if self.pg_state is not None:
            subprocess.run([PG_LOCAL, "stop", self.pg_state],
                           capture_output=True)
            self.pg_state = None
        if not self.keep:
            shutil.rmtree(self.dir, ignore_errors=True)

    def start_master(self, extra=()):
        port_file = os.path.join(self.dir, "master.port")
        argv = [self.master_bin or binary(self.bdir, "det-master"),
                "--grpc_address", "127.0.0.1:0",
                "--http_address", "127.0.0.1:0",
                "--db", self.db_arg(),
                "--checkpoint_root", os.path.join(self.dir, "checkpoints"),
                "--port_file", port_file, *extra]
        self.master = spawn(argv, os.path.join(self.dir, "master.log"),
                            env=self.master_env)
        deadline = time.time() + 30
        while not os.path.exists(port_file):
            if self.master.poll() is not None or time.time() > deadline:
                raise RuntimeError("det-master did not start:\n" +
                                   self.log("master.log"))
            time.sleep(0.02)
        with open(port_file) as f:
            self.grpc = "127.0.0.1:" + f.read().strip()
        # The HTTP port is in the master's log ("web page at http://...").
        deadline = time.time() + 10
        while self.http is None and time.time() < deadline:
            m = re.search(r"web page at http://([0-9.:]+)/",
                          self.log("master.log"))
            if m:
                self.http = m.group(1)
            else:
                time.sleep(0.02)
        return self.master

    def start_worker(self, name, slots, extra=()):
        argv = [binary(self.bdir, "det-worker"), "--master", self.grpc,
                "--slots", str(slots), "--name", name,
                "--work_dir", os.path.join(self.dir, "work-" + name),
                *extra]
        w = spawn(argv, os.path.join(self.dir, f"worker-{name}.log"))
        self.workers.append(w)
        return w

    def log(self, name):
        try:
            with open(os.path.join(self.dir, name), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cli(self, *args, check=True, timeout=600):
        r = subprocess.run([binary(self.bdir, "det"), "-m", self.grpc, *args],
                           capture_output=True, text=True, timeout=timeout,
                           cwd=self.dir)
        if check and r.returncode != 0:
            raise RuntimeError(f"det {' '.join(args)} failed "
                               f"({r.returncode}):\n{r.stdout}{r.stderr}")
        return r

    def get(self, path, timeout=60):
        with urllib.request.urlopen(f"http://{self.http}{path}",
                                    timeout=timeout) as r:
            body = r.read().decode()
        return body if path == "/metrics" else json.loads(body)

    def wait_agents(self, n, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            info = self.get("/api/v1/master")
            if int(info.get("num_agents", 0)) >= n:
                return
            time.sleep(0.05)
        raise RuntimeError(f"fewer than {n} workers registered")

    def create_experiment(self, yaml_text, name="experiment.yaml"):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(yaml_text)
        r = self.cli("experiment", "create", path)
        m = re.search(r"Created experiment (\d+)", r.stdout)
        if not m:
            raise RuntimeError("cannot read the experiment id from:\n" +
                               r.stdout + r.stderr)
        return int(m.group(1))

    def experiment(self, eid):
        return self.get(f"/api/v1/experiments/{eid}")

    def wait_terminal(self, eid, timeout=3600, poll=0.05, on_poll=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            x = self.experiment(eid)
            if on_poll:
                on_poll(x)
            if x.get("state") in ("STATE_COMPLETED", "STATE_CANCELED",
                                  "STATE_ERROR"):
                return x
            time.sleep(poll)
        raise RuntimeError(f"experiment {eid} not finished after {timeout} s")

    def trials(self, eid):
        return self.get(f"/api/v1/experiments/{eid}/trials").get("trials", [])

    def validation_metrics(self, eid):
        return self.get(f"/api/v1/experiments/{eid}/metrics").get("reports", [])

    def prometheus(self):
        """/metrics as {name{labels}: value}."""
        out = {}
        for line in self.get("/metrics").splitlines():
            if not line or line.startswith("#"):
                continue
            k, _, v = line.rpartition(" ")
            try:
                out[k] = float(v)
            except ValueError:
                pass
        return out


def histogram(prom, name):
    """Buckets (upper bound, cumulative count) of a Prometheus histogram."""
    b = []
    for k, v in prom.items():
        m = re.match(name + r'_bucket\{le="([^"]+)"\}', k)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            b.append((le, v))
    b.sort()
    return b


def histogram_quantile(buckets, q):
    """The upper bound of the bucket holding quantile q (a Prometheus
    histogram cannot say more than that)."""
    if not buckets or buckets[-1][1] == 0:
        return None
    target = q * buckets[-1][1]
    for le, c in buckets:
        if c >= target:
            return le
    return buckets[-1][0]


def us(v):
    """proto3 JSON writes int64 as a string."""
    return int(v) if v not in (None, "") else 0


def percentile(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    i = min(len(v) - 1, max(0, int(round(p / 100 * (len(v) - 1)))))
    return v[i]


def md_table(headers, rows):
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---" for _ in headers) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)
