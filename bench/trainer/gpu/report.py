#!/usr/bin/env python3
"""Markdown report of bench/trainer/gpu/run.sh from the steps' outputs.

  python3 report.py --out OUT --work WORK [--budget S --elapsed S]

Reads OUT/steps.tsv, OUT/env.out and each step's OUT/<step>.out (det-trial's
JSON lines, or the peer's JSON object), and compares the final checkpoints of
the resume checks under WORK. Prints the report on stdout.
"""
import argparse
import json
import os

# Stated tolerances for "resumed equals straight".
# Default kernels: cuDNN/cuBLAS may sum in a varying order (atomics in the
# weight-gradient convolutions), so two identical runs already differ in the
# last bits, and Adam carries the difference on: 20 more steps at lr 1e-3
# move a weight by at most ~2e-2, and 1e-4 is 0.5% of that.
TOL_WEIGHT = 1e-4
TOL_LOSS_REL = 1e-3


def read_lines(path):
    out = []
    if not os.path.exists(path):
        return out
    for line in open(path, errors="replace"):
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def det_trial(out, name):
    """Training img/s after the first (warm-up) window, last validation."""
    lines = read_lines(os.path.join(out, name + ".out"))
    windows, val, ckpts = [], [], []
    for rec in lines:
        rep = rec.get("report", {})
        m = rep.get("metrics", {})
        step = int(rep.get("steps_completed", 0))
        if "samples_per_second" in m:
            windows.append((step, m["samples_per_second"]))
        if "validation_samples_per_second" in m:
            val.append(m)
        if rec.get("kind") == "checkpoint":
            ckpts.append(rep.get("uuid"))
    res = {"windows": len(windows), "val": val[-1] if val else None,
           "ckpt": ckpts[-1] if ckpts else None, "train": None}
    if len(windows) >= 2:
        # Each window's rate covers the batches since the previous report.
        prev, batches, seconds = windows[0][0], 0, 0.0
        for step, rate in windows[1:]:
            n = step - prev
            prev = step
            batches += n
            seconds += n / rate
        # Window i took n_i * batch / rate_i seconds, so over the windows
        # images/s = sum(n_i * batch) / sum(n_i * batch / rate_i)
        #          = sum(n_i) / sum(n_i / rate_i).
        res["train"] = batches / seconds if seconds else None
    return res


def peer(out, name):
    lines = read_lines(os.path.join(out, name + ".out"))
    if not lines:
        return None
    return lines[-1].get("images_per_second", lines[-1].get("gflops"))


def device_of(out, name):
    """The device det-trial says it runs on ("... threads on cuda:0, ...")."""
    path = os.path.join(out, name + ".err")
    if os.path.exists(path):
        for line in open(path, errors="replace"):
            if " threads on " in line:
                return line.split(" threads on ")[1].split(",")[0]
    return "?"


def fmt(x, digits=0):
    if x is None:
        return "n/a"
    return f"{x:,.{digits}f}"


def compare_checkpoints(a, b):
    """Max |difference| over the model's tensors, and bit equality."""
    import torch
    ma = torch.jit.load(a, map_location="cpu")
    mb = torch.jit.load(b, map_location="cpu")
    ta = dict(ma.named_parameters())
    ta.update(dict(ma.named_buffers()))
    tb = dict(mb.named_parameters())
    tb.update(dict(mb.named_buffers()))
    if ta.keys() != tb.keys():
        return None, False, "different tensor names"
    worst, equal = 0.0, True
    for k in ta:
        x, y = ta[k].double(), tb[k].double()
        if x.shape != y.shape:
            return None, False, f"{k}: shapes differ"
        equal = equal and torch.equal(ta[k], tb[k])
        if x.numel():
            worst = max(worst, (x - y).abs().max().item())
    return worst, equal, ""


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--budget", type=int, default=0)
    p.add_argument("--elapsed", type=int, default=0)
    a = p.parse_args()
    out = a.out
    L = []
    L += ["# det-trial on a GPU: build, throughput, resume", ""]
    L += [f"Run by `bench/trainer/gpu/run.sh` in {a.elapsed} s "
          f"(budget {a.budget} s). Raw log: `run.log`; each step's output in "
          "`<step>.out` / `<step>.err`.", ""]
    env = os.path.join(out, "env.out")
    if os.path.exists(env):
        keep = [l.rstrip() for l in open(env, errors="replace")
                if l.split(" ")[0] in ("torch", "device", "cxx11_abi",
                                       "gloo_headers", "g++", "cmake")
                or l.startswith(("model name", "Linux", "cuda", "Cuda"))
                or "NVIDIA" in l and "Driver" in l]
        L += ["## Machine", "", "```"] + keep + ["```", ""]

    L += ["## Steps", "", "| step | exit | seconds | limit |",
          "| --- | --- | ---: | ---: |"]
    steps = {}
    path = os.path.join(out, "steps.tsv")
    if os.path.exists(path):
        for line in list(open(path))[1:]:
            f = line.rstrip("\n").split("\t")
            if len(f) >= 4:
                steps[f[0]] = f[1]
                L.append(f"| {f[0]} | {f[1]} | {f[2]} | {f[3]} |")
    L += ["", "Exit 124: the step's timeout; 137: killed after it.", ""]

    def ok(step):
        return steps.get(step) == "0"

    def ran(step):
        return step in steps and not steps[step].startswith("skipped")

    # --- throughput --------------------------------------------------------
    runs = [("gpu_const_b64", "const.yaml model, batch 64"),
            ("gpu_seed_b64", "seed model, batch 64"),
            ("gpu_const_b512", "const.yaml model, batch 512"),
            ("gpu_const_b64_val", "const.yaml model, validation on 4,000 "
             "held-out images, validation batch 128 (20 training batches)"),
            ("gpu_const_b64_val1024", "same, validation batch 1,024"),
            ("cpu_const_b64", "const.yaml model, batch 64, on the CPU "
             "(20 batches)")]
    L += ["## det-trial", "",
          "Training images/s over the report windows after the first "
          "(warm-up); validation images/s of the last validation.", "",
          "| run | device | training img/s | validation img/s | "
          "validation accuracy |",
          "| --- | --- | ---: | ---: | ---: |"]
    det = {}
    for name, label in runs:
        if not ran(name):
            continue
        r = det_trial(out, name)
        v = r["val"] or {}
        det[name] = (r["train"], v.get("validation_samples_per_second"))
        L.append(f"| {label}{'' if ok(name) else ' (exit ' + steps[name] + ')'} "
                 f"| {device_of(out, name)} | {fmt(r['train'])} | "
                 f"{fmt(v.get('validation_samples_per_second'))} "
                 f"| {fmt(v.get('validation_accuracy'), 3)} |")
    L.append("")

    peers = [("peer_const_b64_plain_cl", "plain tensor loop, channels-last",
              "gpu_const_b64", 0),
             ("peer_const_b64_plain", "plain tensor loop", "gpu_const_b64", 0),
             ("peer_const_b64_usual", "usual recipe (torchvision + "
              "DataLoader)", "gpu_const_b64", 0),
             ("peer_const_b64_validate", "validation (inference mode, "
              "channels-last, batch 1,000)", "gpu_const_b64_val1024", 1),
             ("peer_seed_b64_plain_cl", "seed model: plain loop, "
              "channels-last", "gpu_seed_b64", 0),
             ("peer_const_b512_plain_cl", "batch 512: plain loop, "
              "channels-last", "gpu_const_b512", 0)]
    if any(ran(n) for n, *_ in peers):
        L += ["## PyTorch peer on the same GPU (pytorch_peer.py --device "
              "cuda), side by side", "",
              "| peer run | peer img/s | det-trial img/s | det-trial / peer |",
              "| --- | ---: | ---: | ---: |"]
        for name, label, ours, col in peers:
            if not ran(name):
                continue
            r = peer(out, name)
            d = det.get(ours, (None, None))[col]
            ratio = f"{d / r:.2f}x" if r and d else "n/a"
            L.append(f"| {label} | {fmt(r)} | {fmt(d)} | {ratio} |")
        g = peer(out, "peer_matmul")
        L += ["", f"fp32 matmul (8192x8192, torch.mm): {fmt(g)} GFLOP/s "
              "(TF32 off unless the wheel enables it by default).", ""]

    # --- resume -----------------------------------------------------------
    L += ["## Checkpoint and resume", "",
          "A straight run of 40 batches against 20 batches, a checkpoint, and "
          "a resumed run to 40 (const.yaml's model: batch norm, dropout, Adam, "
          "augmentation); the final checkpoints' tensors compared. Default "
          f"kernels pass within max |dw| <= {TOL_WEIGHT:g} and relative "
          f"|d validation_loss| <= {TOL_LOSS_REL:g} (cuDNN/cuBLAS may sum in "
          "a varying order, so even two straight runs differ in the last "
          "bits); DET_DETERMINISTIC=1 (deterministic cuDNN, cuBLAS workspace "
          "config, deterministic algorithms) and the CPU must match bit for "
          "bit.", "",
          "| check | max abs weight diff | bit-equal | validation_loss "
          "straight / resumed | verdict |",
          "| --- | ---: | --- | --- | --- |"]
    # Two straight runs with default kernels: how far apart they end is the
    # noise a resumed run is judged against.
    noise = None
    if ran("resume_cuda_straight") and ran("resume_cuda_repeat"):
        s1, s2 = det_trial(out, "resume_cuda_straight"), det_trial(out, "resume_cuda_repeat")
        if s1["ckpt"] and s2["ckpt"]:
            try:
                noise, eq2, note2 = compare_checkpoints(
                    os.path.join(a.work, "ck_cuda_straight", s1["ckpt"], "model.pt"),
                    os.path.join(a.work, "ck_cuda_repeat", s2["ckpt"], "model.pt"))
                l1 = (s1["val"] or {}).get("validation_loss")
                l2 = (s2["val"] or {}).get("validation_loss")
                L.append(f"| CUDA, default kernels: two straight runs (noise) | "
                         f"{fmt(noise, 9)} | {eq2} | {l1} / {l2} | reference |")
            except Exception as e:  # report, do not stop the report
                L.append(f"| CUDA, default kernels: two straight runs | n/a | | | "
                         f"compare failed: {e} |")
    for tag, label, exact in [("cuda", "CUDA, default kernels", False),
                              ("cuda_det", "CUDA, DET_DETERMINISTIC=1", True),
                              ("cpu_dry", "CPU (dry run)", True)]:
        s_name, r_name = f"resume_{tag}_straight", f"resume_{tag}_second"
        if not ran(s_name):
            continue
        s, r = det_trial(out, s_name), det_trial(out, r_name)
        verdict, worst, equal, note = "FAIL", None, False, ""
        if s["ckpt"] and r["ckpt"]:
            a_path = os.path.join(a.work, f"ck_{tag}_straight", s["ckpt"],
                                  "model.pt")
            b_path = os.path.join(a.work, f"ck_{tag}_resumed", r["ckpt"],
                                  "model.pt")
            try:
                worst, equal, note = compare_checkpoints(a_path, b_path)
            except Exception as e:  # report, do not stop the report
                note = f"compare failed: {e}"
        else:
            note = "a run left no checkpoint"
        ls = (s["val"] or {}).get("validation_loss")
        lr = (r["val"] or {}).get("validation_loss")
        if worst is not None and ls is not None and lr is not None:
            if exact:
                verdict = "pass" if equal and ls == lr else "FAIL"
            else:
                # Within the stated tolerance, or no farther from the
                # straight run than a second straight run is (2x margin).
                tol = TOL_WEIGHT if noise is None else max(TOL_WEIGHT, 2 * noise)
                close = (worst <= tol and
                         abs(ls - lr) <= TOL_LOSS_REL * abs(ls))
                verdict = "pass" if close else "FAIL"
                if noise is not None:
                    note = (note + " " if note else "") + \
                        f"(tolerance {tol:.3g}: max(1e-4, 2 x the two-straight-runs difference))"
        L.append(f"| {label} | {fmt(worst, 9) if worst is not None else 'n/a'}"
                 f" | {equal} | {ls} / {lr} | {verdict}{' ' + note if note else ''} |")
    for name, label in [("resume_cuda_to_cpu", "CUDA checkpoint (batch 20) "
                         "resumed on the CPU to 25"),
                        ("resume_cpu_to_cuda", "CPU checkpoint (batch 20) "
                         "resumed on CUDA to 25")]:
        if not ran(name):
            continue
        r = det_trial(out, name)
        v = (r["val"] or {}).get("validation_loss")
        err = os.path.join(out, name + ".err")
        done = os.path.exists(err) and "completed after 25" in open(
            err, errors="replace").read()
        L.append(f"| {label} | | | validation_loss {v} | "
                 f"{'pass' if ok(name) and done else 'FAIL'} |")
    L.append("")
    print("\n".join(L))


if __name__ == "__main__":
    main()
