#!/usr/bin/python3
"""det-trial against its PyTorch peer, side by side on one machine with the
same threads, batch size, model and data. Not a test: it measures.

  /usr/bin/python3 bench/trainer/bench.py [--det-trial PATH] [--threads 2]
      [--batch 64] [--rounds 2] [--out bench/results/trainer.md]

Each configuration runs `rounds` times, interleaved, and the best rate is
kept (on a shared machine the least-disturbed run is the one that measures
the code). Training rates exclude validation; validation runs in inference
mode over the 10,000 test images.
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PEER = os.path.join(HERE, "pytorch_peer.py")

# The model of configs/cifar10/const.yaml, and the seed's defaults.
MODELS = {
    "const.yaml": {"global_batch_size": 64, "learning_rate": 0.001, "optimizer": "adam",
                   "conv_layers": 3, "n_filters1": 32, "n_filters2": 64, "kernel_size": 3,
                   "hidden_units": 256, "dropout": 0.3, "batch_norm": True},
    "seed default": {"global_batch_size": 64, "learning_rate": 0.01, "optimizer": "sgd",
                     "momentum": 0.9, "conv_layers": 2, "n_filters1": 32, "n_filters2": 64,
                     "kernel_size": 3, "hidden_units": 512, "dropout": 0.5,
                     "batch_norm": False},
}


def forward_flops(hp):
    """As ForwardFlopsPerImage in worker/trainer/model.cc."""
    flops, cin, side, widths = 0.0, 3, 32, []
    for i in range(hp["conv_layers"]):
        widths.append(hp["n_filters1"] if i == 0 else
                      hp["n_filters2"] if i == 1 else widths[-1] * 2)
    for w in widths:
        flops += 2.0 * side * side * w * cin * hp["kernel_size"] ** 2
        cin, side = w, side // 2
    return flops + 2.0 * cin * side * side * hp["hidden_units"] + 2.0 * hp["hidden_units"] * 10


def run(cmd, env_extra):
    env = dict(os.environ, **env_extra)
    for k in [k for k in env if k.startswith("DET_TRIAL_API")]:
        del env[k]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({out.returncode}):\n{out.stderr}")
    return out.stdout


# det-trial's own default (worker/trainer/main.cc), which every "PASSIVE" run
# here gets, peers included: sleep after a short spin.
PASSIVE_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "1000"}


def policy_env(policy):
    return dict(PASSIVE_ENV) if policy == "PASSIVE" else {"OMP_WAIT_POLICY": policy}


def det_trial(binary, data, hp, threads, batch, warmup, timed, policy):
    """Training and validation images/second from det-trial's own reports."""
    period = warmup
    total = warmup + timed
    hp = dict(hp, global_batch_size=batch)
    out = run([binary, "--hparams", json.dumps(hp), "--data", data, "--batches", str(total),
               "--validate-every", str(total // 2),
               "--data-options", json.dumps({"report_period": period})],
              dict(policy_env(policy), DET_NUM_THREADS=str(threads)))
    train, val = [], []
    for line in out.splitlines():
        rep = json.loads(line).get("report", {})
        m = rep.get("metrics", {})
        step = int(rep.get("steps_completed", 0))
        if "samples_per_second" in m and step > warmup:
            train.append((min(period, step - warmup), m["samples_per_second"]))
        if "validation_samples_per_second" in m:
            val.append(m["validation_samples_per_second"])
    seconds = sum(n * batch / r for n, r in train)
    return sum(n for n, _ in train) * batch / seconds, val[-1]


def peer(mode, data, hp, threads, batch, warmup, timed, policy):
    out = run(["/usr/bin/python3", PEER, "--data", data, "--mode", mode, "--threads",
               str(threads), "--batch", str(batch), "--warmup", str(warmup), "--batches",
               str(timed), "--hparams", json.dumps(hp)],
              policy_env(policy) if policy else {})
    res = json.loads(out.strip().splitlines()[-1])
    return res.get("images_per_second", res.get("gflops"))


def machine():
    cpu = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kb = int(next(l for l in open("/proc/meminfo") if l.startswith("MemTotal")).split()[1])
    blas = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
    return cpu, os.cpu_count(), mem_kb / 1024 / 1024, blas


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--det-trial", default=os.environ.get("DET_TRIAL", ""))
    p.add_argument("--data", default=os.environ.get(
        "DET_DATA_DIR", os.path.expanduser("~/.cache/det/cifar-10-batches-bin")))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--warmup", type=int, default=30)
    p.add_argument("--timed", type=int, default=150)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--models", default="const.yaml,seed default")
    p.add_argument("--out", default=os.path.join(ROOT, "bench/results/trainer.md"))
    a = p.parse_args()
    binary = a.det_trial
    if not binary:
        for d in ("build", "../build"):
            cand = os.path.join(ROOT, d, "bin/det-trial")
            if os.path.exists(cand):
                binary = cand
    if not binary or not os.path.exists(binary):
        sys.exit("bench: det-trial not found; pass --det-trial PATH (build it first)")
    t, b, w, n = a.threads, a.batch, a.warmup, a.timed
    cpu, cores, mem_gib, blas = machine()
    load = os.getloadavg()[0]
    gflops = 0.0

    results = {}
    for name in a.models.split(","):
        hp = MODELS[name]
        best = {}
        for _ in range(a.rounds):
            # Measured in every round too: a single sample taken while the
            # machine was busy would understate the peak.
            gflops = max(gflops, peer("matmul", a.data, {}, t, b, w, n, "PASSIVE"))
            rows = {
                "det-trial": None,
                "det-trial (OMP_WAIT_POLICY=ACTIVE)": None,
                "PyTorch usual recipe (torchvision + DataLoader)": ("usual", "PASSIVE"),
                "PyTorch plain tensor loop": ("plain", "PASSIVE"),
                "PyTorch plain tensor loop, channels-last": ("plain_cl", "PASSIVE"),
                "PyTorch validation (inference mode, channels-last)": ("validate", "PASSIVE"),
            }
            for label, spec in rows.items():
                if label == "det-trial":
                    tr, va = det_trial(binary, a.data, hp, t, b, w, n, "PASSIVE")
                    best["det-trial"] = max(best.get("det-trial", 0), tr)
                    best["det-trial validation"] = max(best.get("det-trial validation", 0), va)
                elif label.startswith("det-trial"):
                    tr, _ = det_trial(binary, a.data, hp, t, b, w, n, "ACTIVE")
                    best[label] = max(best.get(label, 0), tr)
                else:
                    r = peer(spec[0], a.data, hp, t, b, w, n, spec[1])
                    best[label] = max(best.get(label, 0), r)
                print(f"{name}: {label}: {best.get(label, 0):.0f}", file=sys.stderr)
        results[name] = best

    lines = [
        "# det-trial training throughput vs PyTorch",
        "",
        f"- Date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- CPU: {cpu}, {cores} cores visible, {mem_gib:.1f} GiB memory; "
        f"1-minute load average at start {load:.1f} (a shared machine: other builds ran)",
        f"- libtorch {subprocess.run(['/usr/bin/python3', '-c', 'import torch;print(torch.__version__)'], capture_output=True, text=True).stdout.strip()} "
        f"(Debian), BLAS: {blas}",
        f"- Threads {t}, batch {b}, {w} warm-up + {n} timed batches, best of {a.rounds} "
        "interleaved rounds; every run with OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=1000 "
        "(det-trial's default) unless said otherwise",
        f"- Single-precision matmul (2048x2048, torch.mm, {t} threads, best of all rounds): "
        f"{gflops:.1f} GFLOP/s",
        f"- Command: `/usr/bin/python3 bench/trainer/bench.py --threads {t} --batch {b} "
        f"--rounds {a.rounds}`",
        "",
    ]
    for name, best in results.items():
        hp = MODELS[name]
        train_flops = 3 * forward_flops(hp)
        det = best["det-trial"]
        lines += [
            f"## Model: {name}",
            "",
            f"`{json.dumps(hp)}`; {forward_flops(hp) / 1e6:.1f} MFLOP forward, "
            f"~{train_flops / 1e6:.1f} MFLOP per trained image (3x forward)",
            "",
            "| run | images/s | det-trial / this |",
            "| --- | ---: | ---: |",
        ]
        for label, rate in best.items():
            if label == "det-trial validation":
                continue
            ratio = "" if label == "det-trial" else f"{det / rate:.2f}x"
            lines.append(f"| {label} | {rate:,.0f} | {ratio} |")
        lines += [
            f"| det-trial validation | {best['det-trial validation']:,.0f} | "
            f"{best['det-trial validation'] / det:.1f}x its training rate |",
            "",
            f"Training reaches {det * train_flops / 1e9:.1f} GFLOP/s, "
            f"{100 * det * train_flops / 1e9 / gflops:.0f}% of the measured matmul rate.",
            "",
        ]
    lines += [
        "## Reading these numbers",
        "",
        "- All training runs use the same libtorch (Debian's libtorch_cpu.so, oneDNN "
        "convolutions, OpenBLAS for the fully connected layers) in the same process layout, "
        "so the training ratios measure what each loop does around the kernels: det-trial's "
        "data pipeline is a few batched uint8 tensor ops (gather, pad, crop/flip by index, "
        "one fused multiply-add to normalise), it runs pool before ReLU, and has no "
        "interpreter between the ops.",
        "- det-trial's validation runs the frozen model (batch norm folded) as oneDNN "
        "primitives called directly (worker/trainer/onednn_eval.h): Winograd convolutions "
        "where they time faster, ReLU fused into the convolutions and the hidden layer, "
        "oneDNN's inner products for the fully connected layers; PyTorch's validation row is "
        "its usual inference loop on libtorch's operators.",
        "- OpenMP waits: det-trial sets OMP_WAIT_POLICY=PASSIVE with GOMP_SPINCOUNT=1000 "
        "(spin ~10 us, then sleep) for itself unless the environment says otherwise. "
        "Spinning threads (ACTIVE) collapse when cores are shared: three const.yaml runs "
        "sharing 2 cores made ~180 images/s each spinning against ~960 with the short spin "
        "and ~990 passive; alone, the short spin matches spinning (3,100) where sleeping at "
        "once loses ~15% (2,620). The peers run with the same setting, so that the ratios "
        "compare the loops, not the policy; the ACTIVE row shows what spinning gives.",
        "- The fraction of the matmul rate counts 3x the forward FLOPs per trained image "
        "(forward, input gradient, weight gradient), as a direct convolution computes them; "
        "det-trial trains its 3x3 layers with 32+ input channels through Winograd "
        "(worker/trainer/onednn_conv.h), which needs fewer multiplications, so for det-trial "
        "it is an effective rate (it may pass 100%).",
        "",
    ]
    text = "\n".join(lines)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
