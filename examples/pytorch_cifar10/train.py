"""CIFAR-10 with PyTorch on det's Core API: a Determined Core API script
whose only det-specific line is `import det` (Determined: `import
determined as det`).

The network is the seed's: two conv layers (3x3, max-pool, ReLU), two
fully connected layers with dropout. It reads the CIFAR-10 binary folder
(data_batch_1..5.bin, test_batch.bin) from the config's data.dir, else
DET_DATA_DIR (the worker sets it), else ~/.cache/det/cifar-10-batches-bin.
It reports training metrics every `report_every` batches and validation
metrics every `validate_every` batches with "batches" among them (the
searcher's time_metric), checkpoints model + optimizer + position, resumes
from info.latest_checkpoint, and stops cleanly when preempted (ASHA
stop, pause, cancel).

    det experiment create const.yaml .        # on a cluster
    python3 train.py --hparams-file const.yaml # by hand, standalone
"""

import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import det  # Determined: import determined as det

RECORD = 3073  # 1 label byte + 3x32x32 pixel bytes


def load(path, limit):
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size % RECORD:
        raise ValueError(f"{path}: {raw.size} bytes is not a whole number of "
                         f"{RECORD}-byte CIFAR-10 records")
    raw = raw.reshape(-1, RECORD)
    if limit:
        raw = raw[:limit]
    labels = torch.from_numpy(raw[:, 0].astype(np.int64))
    if int(labels.max()) > 9:
        bad = int(np.argmax(raw[:, 0] > 9))
        raise ValueError(f"{path}: label {raw[bad, 0]} at byte offset "
                         f"{bad * RECORD} is not a CIFAR-10 class (0-9)")
    images = torch.from_numpy(raw[:, 1:].copy()).view(-1, 3, 32, 32)
    images = images.float().div_(255).sub_(0.5).div_(0.25)
    return images, labels


def load_cifar10(data, num_train_files=5):
    folder = (data.get("dir") or os.environ.get("DET_DATA_DIR") or
              os.path.expanduser("~/.cache/det/cifar-10-batches-bin"))
    limit = data.get("train_limit", 0)
    parts = [load(os.path.join(folder, f"data_batch_{i}.bin"), 0)
             for i in range(1, num_train_files + 1)]
    train_x = torch.cat([p[0] for p in parts])
    train_y = torch.cat([p[1] for p in parts])
    if limit:
        train_x, train_y = train_x[:limit], train_y[:limit]
    val = load(os.path.join(folder, "test_batch.bin"),
               data.get("validation_limit", 0))
    return (train_x, train_y), val


class Net(nn.Module):
    def __init__(self, hp):
        super().__init__()
        f1, f2 = hp["n_filters1"], hp["n_filters2"]
        self.conv1 = nn.Conv2d(3, f1, 3, padding=1)
        self.conv2 = nn.Conv2d(f1, f2, 3, padding=1)
        self.fc1 = nn.Linear(f2 * 8 * 8, hp["hidden_units"])
        self.dropout = nn.Dropout(hp["dropout"])
        self.fc2 = nn.Linear(hp["hidden_units"], 10)

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(self.dropout(x))


def batch_indices(n, batch_size, step, seed):
    """The indices of batch `step` (0-based): each epoch is a fresh
    permutation seeded by (seed, epoch), so a resumed run sees exactly the
    batches the uninterrupted run would have."""
    per_epoch = n // batch_size
    epoch, i = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(seed * 1000003 + epoch)
    perm = torch.randperm(n, generator=g)
    return perm[i * batch_size:(i + 1) * batch_size]


def evaluate(model, val, batch_size=1000):
    model.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(val[1]), batch_size):
            out = model(val[0][i:i + batch_size])
            y = val[1][i:i + batch_size]
            loss += F.cross_entropy(out, y, reduction="sum").item()
            correct += (out.argmax(1) == y).sum().item()
    model.train()
    n = len(val[1])
    return {"validation_accuracy": correct / n, "validation_loss": loss / n}


def main():
    info = det.get_cluster_info()
    assert info is not None, "run under det, or by hand with --hparams-file"
    hp = info.trial.hparams
    data = info.user_data
    max_batches = hp["max_batches"]
    report_every = hp.get("report_every", 50)
    validate_every = hp.get("validate_every", 200)
    torch.manual_seed(info.trial.trial_seed)

    (train_x, train_y), val = load_cifar10(data, data.get("train_files", 5))
    model = Net(hp)
    opt = torch.optim.Adam(model.parameters(), lr=hp["learning_rate"])
    bs = hp["global_batch_size"]

    with det.core.init() as core:
        steps = 0
        if info.latest_checkpoint is not None:
            with core.checkpoint.restore_path(info.latest_checkpoint) as path:
                state = torch.load(os.path.join(path, "state.pt"))
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            steps = state["steps"]
            print(f"resumed from checkpoint {info.latest_checkpoint} at "
                  f"batch {steps}", flush=True)

        def checkpoint():
            with core.checkpoint.store_path({"steps_completed": steps}) as (
                    path, _):
                torch.save({"model": model.state_dict(),
                            "optimizer": opt.state_dict(), "steps": steps},
                           os.path.join(path, "state.pt"))

        running, seen = 0.0, 0
        while steps < max_batches:
            idx = batch_indices(len(train_y), bs, steps, info.trial.trial_seed)
            loss = F.cross_entropy(model(train_x[idx]), train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
            running, seen = running + loss.item(), seen + 1
            if steps % report_every == 0 or steps == max_batches:
                core.train.report_training_metrics(
                    steps_completed=steps,
                    metrics={"loss": running / seen, "batches": steps})
                running, seen = 0.0, 0
            if steps % validate_every == 0 or steps == max_batches:
                metrics = evaluate(model, val)
                metrics["batches"] = steps  # the searcher's time_metric
                core.train.report_validation_metrics(steps_completed=steps,
                                                     metrics=metrics)
                checkpoint()
            if core.preempt.should_preempt():
                if steps % validate_every:
                    checkpoint()
                print(f"preempted at batch {steps}", flush=True)
                return


if __name__ == "__main__":
    main()
