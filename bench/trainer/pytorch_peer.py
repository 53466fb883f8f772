#!/usr/bin/python3
"""The PyTorch peer of det-trial's benchmark: the same CNN trained the usual
way (torchvision transforms + DataLoader) and as a plain tensor loop, on the
same CIFAR-10 binary files, threads and batch size. Prints one JSON object.

Run with Debian's python3 (python3-torch, python3-torchvision):
  /usr/bin/python3 pytorch_peer.py --data DIR --threads 2 --batch 64 \
      --mode usual|plain|plain_cl|validate|matmul --hparams '{...}' \
      [--device cpu|cuda]
With --device cuda the model and every batch live on the GPU (batches are
made on the CPU, as the usual recipe does, and copied) and the clock is read
after torch.cuda.synchronize().
"""
import argparse
import json
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2470, 0.2435, 0.2616)
DEFAULTS = dict(n_filters1=32, n_filters2=64, kernel_size=3, hidden_units=512,
                dropout=0.5, conv_layers=2, batch_norm=False, optimizer="sgd",
                learning_rate=0.01, momentum=0.9, weight_decay=0.0)


def read_cifar(paths):
    """uint8 NHWC images and int64 labels from official binary files."""
    raw = np.concatenate([np.fromfile(p, dtype=np.uint8).reshape(-1, 3073) for p in paths])
    images = raw[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1).copy()
    return images, raw[:, 0].astype(np.int64)


class Net(nn.Module):
    """det-trial's model (worker/trainer/model.h), written as usual."""

    def __init__(self, hp):
        super().__init__()
        layers, cin = [], 3
        widths = []
        for i in range(hp["conv_layers"]):
            widths.append(hp["n_filters1"] if i == 0 else
                          hp["n_filters2"] if i == 1 else widths[-1] * 2)
        for w in widths:
            k = hp["kernel_size"]
            layers.append(nn.Conv2d(cin, w, k, padding=k // 2, bias=not hp["batch_norm"]))
            if hp["batch_norm"]:
                layers.append(nn.BatchNorm2d(w))
            layers += [nn.ReLU(inplace=True), nn.MaxPool2d(2)]
            cin = w
        side = 32 >> hp["conv_layers"]
        self.features = nn.Sequential(*layers)
        self.fc1 = nn.Linear(cin * side * side, hp["hidden_units"])
        self.dropout = nn.Dropout(hp["dropout"])
        self.fc2 = nn.Linear(hp["hidden_units"], 10)

    def forward(self, x):
        x = self.features(x)
        return self.fc2(self.dropout(F.relu(self.fc1(x.flatten(1)))))


def make_optimizer(hp, model):
    if hp["optimizer"] == "adam":
        return torch.optim.Adam(model.parameters(), lr=hp["learning_rate"],
                                weight_decay=hp["weight_decay"])
    return torch.optim.SGD(model.parameters(), lr=hp["learning_rate"],
                           momentum=hp["momentum"], weight_decay=hp["weight_decay"])


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train(model, opt, batches, warmup, timed, device):
    """Images/second over `timed` batches after `warmup` batches."""
    model.train()
    it = iter(batches)
    for _ in range(warmup):
        x, y = next(it)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
    sync(device)
    start, n = time.perf_counter(), 0
    for _ in range(timed):
        x, y = next(it)
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        n += y.shape[0]
    sync(device)
    return n / (time.perf_counter() - start)


def usual_batches(images, labels, batch):
    import torchvision.transforms as T
    from PIL import Image

    class Cifar(torch.utils.data.Dataset):
        tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(),
                        T.ToTensor(), T.Normalize(MEAN, STD)])

        def __len__(self):
            return len(labels)

        def __getitem__(self, i):
            return self.tf(Image.fromarray(images[i])), labels[i]

    loader = torch.utils.data.DataLoader(Cifar(), batch_size=batch, shuffle=True,
                                         num_workers=0, drop_last=True)
    while True:
        yield from loader


def plain_batches(images, labels, batch, channels_last):
    """Batches cut from one uint8 tensor with tensor ops (no per-image code)."""
    imgs, labs = torch.from_numpy(images), torch.from_numpy(labels)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    n = len(labs)
    ar = torch.arange(32)
    while True:
        perm = torch.randperm(n)
        for i in range(n // batch):
            idx = perm[i * batch:(i + 1) * batch]
            x = F.pad(imgs[idx], (0, 0, 4, 4, 4, 4))
            dy = torch.randint(0, 9, (batch,))
            dx = torch.randint(0, 9, (batch,))
            flip = torch.rand(batch) < 0.5
            rows = dy[:, None] + ar
            cols = torch.where(flip[:, None], dx[:, None] + 31 - ar, dx[:, None] + ar)
            x = x[torch.arange(batch)[:, None, None], rows[:, :, None], cols[:, None, :]]
            x = (x.permute(0, 3, 1, 2).float() / 255 - mean) / std
            x = x.contiguous(memory_format=torch.channels_last if channels_last
                             else torch.contiguous_format)
            yield x, labs[idx]


def validate(model, images, labels, channels_last, device, batch=1000):
    model.eval()
    imgs, labs = torch.from_numpy(images), torch.from_numpy(labels)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1).to(device)
    std = torch.tensor(STD).view(1, 3, 1, 1).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    sync(device)
    start = time.perf_counter()
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(labs), batch):
            x = imgs[i:i + batch].to(device)
            x = (x.permute(0, 3, 1, 2).float() / 255 - mean) / std
            correct += (model(x.contiguous(memory_format=fmt)).argmax(1) ==
                        labs[i:i + batch].to(device)).sum().item()
    sync(device)
    return len(labs) / (time.perf_counter() - start)


def matmul_gflops(device, n=2048, reps=10):
    if device.type == "cuda":
        n, reps = 8192, 20
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(2):
        a @ b
    sync(device)
    start = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e9


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--batches", type=int, default=200)
    p.add_argument("--mode", required=True,
                   choices=["usual", "plain", "plain_cl", "validate", "matmul"])
    p.add_argument("--hparams", default="{}")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    a = p.parse_args()
    device = torch.device(a.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("pytorch_peer: --device cuda but torch sees no GPU")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    hp = dict(DEFAULTS, **json.loads(a.hparams))
    if a.mode == "matmul":
        print(json.dumps({"mode": a.mode, "gflops": matmul_gflops(device)}))
        return
    model = Net(hp).to(device)
    if a.mode == "validate":
        images, labels = read_cifar([os.path.join(a.data, "test_batch.bin")])
        model = model.to(memory_format=torch.channels_last)
        validate(model, images[:2000], labels[:2000], True, device)  # warm-up
        rate = validate(model, images, labels, True, device)
        print(json.dumps({"mode": a.mode, "images_per_second": rate}))
        return
    images, labels = read_cifar(
        [os.path.join(a.data, f"data_batch_{i}.bin") for i in range(1, 6)])
    if a.mode == "plain_cl":
        model = model.to(memory_format=torch.channels_last)
    opt = make_optimizer(hp, model)
    batches = (usual_batches(images, labels, a.batch) if a.mode == "usual" else
               plain_batches(images, labels, a.batch, a.mode == "plain_cl"))
    rate = train(model, opt, batches, a.warmup, a.batches, device)
    print(json.dumps({"mode": a.mode, "images_per_second": rate}))


if __name__ == "__main__":
    main()
