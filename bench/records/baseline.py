#!/usr/bin/python3
"""Linear least-squares baseline for a JSON-records regression split.

Usage: baseline.py TRAIN.jsonl VALIDATION.jsonl LABEL
Every number and boolean field is a feature, every string field one-hot
(the training values), plus an intercept; fitted with numpy's lstsq on the
training records; prints the validation RMSE and MAE in the label's units.
"""
import json
import sys

import numpy as np


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


train, validation, label = load(sys.argv[1]), load(sys.argv[2]), sys.argv[3]
fields = sorted({k for r in train for k in r if k != label})
categories = {
    k: sorted({r[k] for r in train if isinstance(r.get(k), str)}) for k in fields
}


def features(r):
    row = [1.0]
    for k in fields:
        if categories[k]:
            row += [1.0 if r.get(k) == c else 0.0 for c in categories[k]]
        else:
            row.append(float(r[k]))
    return row


X = np.array([features(r) for r in train])
y = np.array([float(r[label]) for r in train])
w, *_ = np.linalg.lstsq(X, y, rcond=None)
Xv = np.array([features(r) for r in validation])
yv = np.array([float(r[label]) for r in validation])
err = Xv @ w - yv
print(json.dumps({"train_records": len(train), "validation_records": len(validation),
                  "validation_rmse": float(np.sqrt(np.mean(err ** 2))),
                  "validation_mae": float(np.mean(np.abs(err)))}))
