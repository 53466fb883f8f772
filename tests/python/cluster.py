"""A det master and workers as real processes on loopback, for the Python
tests (the Python twin of tests/integration/cluster.h).

The master listens on 127.0.0.1:0 and writes its port to a file; every
process runs in its own process group and is SIGKILLed (group and all)
when the Cluster closes, also when a test fails or the interpreter exits.
"""

import atexit
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

BIN_DIR = os.environ.get("DET_BIN_DIR", "")
PYTHON = os.environ.get("DET_PYTHON", sys.executable)


def bin_path(name):
    return os.path.join(BIN_DIR, name) if BIN_DIR else name


def wait_for(pred, timeout, what, period=0.1):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for "
                                 f"{what}")
        time.sleep(period)


class Cluster:
    def __init__(self, token=None, keep=False):
        self.dir = tempfile.mkdtemp(prefix="det-pytest.")
        self.token = token
        self.keep = keep
        self.procs = []
        self.address = None
        self.checkpoints = os.path.join(self.dir, "checkpoints")
        atexit.register(self.close)

    def _spawn(self, argv, log_name, env=None):
        log = open(os.path.join(self.dir, log_name), "wb")
        full_env = dict(os.environ)
        full_env.update(env or {})
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, env=full_env,
                             start_new_session=True)
        log.close()
        self.procs.append((p, log_name))
        return p

    def start_master(self):
        port_file = os.path.join(self.dir, "master.port")
        argv = [bin_path("det-master"), "--grpc_address", "127.0.0.1:0",
                "--http_address", "off", "--db",
                os.path.join(self.dir, "master.db"), "--checkpoint_root",
                self.checkpoints, "--port_file", port_file]
        if self.token:
            argv += ["--token", self.token]
        p = self._spawn(argv, "master.log")

        def up():
            if p.poll() is not None:
                self.dump_logs()
                raise AssertionError(f"det-master exited with {p.returncode}")
            if not os.path.exists(port_file):
                return None
            with open(port_file) as f:
                return f.read().strip()
        port = wait_for(up, 30, "det-master to start")
        self.address = f"127.0.0.1:{port}"
        return self.address

    def start_worker(self, name, slots, data_dir=None, env=None):
        argv = [bin_path("det-worker"), "--master", self.address, "--slots",
                str(slots), "--name", name, "--work_dir",
                os.path.join(self.dir, "work-" + name)]
        if data_dir:
            argv += ["--data_dir", data_dir]
        if self.token:
            argv += ["--token", self.token]
        worker_env = {
            # Trial processes find `det` through the worker's environment
            # and run the interpreter that has grpcio first on PATH.
            "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
            "PATH": os.path.dirname(PYTHON) + ":" + os.environ.get("PATH", ""),
        }
        worker_env.update(env or {})
        return self._spawn(argv, f"worker-{name}.log", worker_env)

    def dump_logs(self):
        for _, name in self.procs:
            path = os.path.join(self.dir, name)
            try:
                with open(path, errors="replace") as f:
                    text = f.read()
            except OSError:
                continue
            sys.stderr.write(f"----- {name} (last 6000 chars)\n{text[-6000:]}\n")
        work = [os.path.join(r, f) for r, _, fs in os.walk(self.dir)
                for f in fs if f.endswith(".log") and "trial" in r]
        for path in work[:4]:
            sys.stderr.write(f"----- {path}\n{open(path, errors='replace').read()[-3000:]}\n")

    def close(self):
        for p, _ in reversed(self.procs):
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + 10
        for p, _ in reversed(self.procs):
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            p.poll()
        self.procs = []
        if not self.keep and os.path.isdir(self.dir):
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.dump_logs()
        self.close()
        return False
