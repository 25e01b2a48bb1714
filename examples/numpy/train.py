#!/usr/bin/env python3
"""The seed's model, trained by minibatch SGD in NumPy, as a sweep command run.

One linear unit, He-normal weights and a zero bias, plain SGD on the mean squared error, the
gradient's global norm clipped to `clip_norm` when `clip` is set, minibatches drawn from a fresh
permutation each epoch. It reads its settings from $SWEEP_PARAMS and the data, already whitened
and normalized as the run asks, from $SWEEP_DATA, seeds NumPy from $SWEEP_SEED, and appends one
metrics line per epoch to $SWEEP_METRICS: the train MSE over all rows, in the target's original
units (MSE in training units times target_sd squared).
"""
import json
import math
import os

import numpy as np
import pyarrow.parquet as pq

with open(os.environ["SWEEP_PARAMS"]) as f:
    config = json.load(f)
p, own = config["params"], config["sweep"]

table = pq.read_table(os.environ["SWEEP_DATA"])
data = np.column_stack([table.column(i).to_numpy() for i in range(table.num_columns)])
x, y = data[:, :-1], data[:, -1]
n, d = x.shape
scale = own["target_sd"] ** 2

rng = np.random.default_rng(int(os.environ["SWEEP_SEED"]))
w = rng.normal(0.0, math.sqrt(2.0 / d), size=d)
b = 0.0


def train_mse():
    r = x @ w + b - y
    return float(r @ r) / n * scale


with open(os.environ["SWEEP_METRICS"], "a") as metrics:
    def report(epoch, **extra):
        metrics.write(json.dumps({"epoch": epoch, "train_mse": train_mse(), **extra}) + "\n")
        metrics.flush()

    report(0)
    for epoch in range(1, p["epochs"] + 1):
        clipped = 0
        order = rng.permutation(n)
        for start in range(0, n, p["batch_size"]):
            rows = order[start:start + p["batch_size"]]
            r = x[rows] @ w + b - y[rows]
            gw, gb = 2.0 * (x[rows].T @ r) / len(rows), 2.0 * r.mean()
            norm = math.sqrt(float(gw @ gw) + gb * gb)
            if p["clip"] and norm > p["clip_norm"]:
                gw, gb = gw * (p["clip_norm"] / norm), gb * (p["clip_norm"] / norm)
                clipped += 1
            w -= p["learning_rate"] * gw
            b -= p["learning_rate"] * gb
        mse = train_mse()
        if not math.isfinite(mse):
            report(epoch, status="diverged")
            break
        steps = math.ceil(n / p["batch_size"])
        report(epoch, clipped_fraction=clipped / steps)
