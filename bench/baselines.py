#!/usr/bin/env python3
"""The Python baselines `bench/compare.sh` measures `sweep` against, on a data set written by
`sweep data` (features x000.., target y, as Parquet). Prints one JSON object per measurement.

  baselines.py sklearn DATA E1 E2        SGDRegressor, batch 1: seconds per epoch from E2 - E1 epochs
  baselines.py numpy DATA BATCH E1 E2 [BITS]   the NumPy minibatch loop (same update as sweep:
                                         clipped gradient, per-epoch full-pass MSE), seconds per
                                         epoch, in float64 (BITS 64, default) or float32
  baselines.py numpy-runs DATA BATCH EPOCHS RUNS   RUNS runs of the NumPy loop on a pool of 2 processes
  baselines.py ols DATA REPEATS          numpy.linalg.lstsq and LinearRegression: load, solve (median)

BLAS threads are pinned to one by compare.sh (OPENBLAS_NUM_THREADS etc.) for the per-thread rows.
"""
import json
import sys
import time
from multiprocessing import Pool

import numpy as np
import pyarrow.parquet as pq


def load(path):
    table = pq.read_table(path)
    names = table.column_names
    x = np.column_stack([table.column(n).to_numpy() for n in names[:-1]])
    y = table.column(names[-1]).to_numpy()
    return np.ascontiguousarray(x, dtype=np.float64), np.ascontiguousarray(y, dtype=np.float64)


def numpy_sgd(x, y, batch, epochs, lr=1e-3, clip_norm=1.0, seed=0):
    # The parameters take the data's dtype (float64, or float32 for the f32 comparison).
    """Minibatch SGD on y ~ x w + b with the gradient norm clipped to clip_norm, and the train
    MSE of a full pass after every epoch, as sweep computes them (plain SGD, He-normal init)."""
    n, d = x.shape
    rng = np.random.default_rng(seed)
    w = rng.normal(0.0, np.sqrt(2.0 / d), d).astype(x.dtype)
    b = x.dtype.type(0.0)
    mses = np.empty(epochs)
    for epoch in range(epochs):
        perm = rng.permutation(n)
        for start in range(0, n, batch):
            idx = perm[start:start + batch]
            xb = x[idx]
            r = xb @ w + b - y[idx]
            scale = 2.0 / len(idx)
            gw = (xb.T @ r) * scale
            gb = r.sum() * scale
            norm = np.sqrt(gw @ gw + gb * gb)
            if norm > clip_norm:
                gw *= clip_norm / norm
                gb *= clip_norm / norm
            w -= lr * gw
            b -= lr * gb
        resid = x @ w + b - y
        mses[epoch] = resid @ resid / n
    return mses


def timed(fn, *args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def per_epoch(run, e1, e2, repeats=3):
    """Median over repeats of (time(E2) - time(E1)) / (E2 - E1)."""
    values = sorted((timed(run, e2) - timed(run, e1)) / (e2 - e1) for _ in range(repeats))
    return values[len(values) // 2]


def sklearn_rows(path, e1, e2):
    from sklearn.linear_model import SGDRegressor

    x, y = load(path)

    def run(epochs):
        SGDRegressor(penalty=None, learning_rate="constant", eta0=1e-3, tol=None, shuffle=True,
                     average=False, max_iter=epochs, random_state=0).fit(x, y)

    import warnings
    warnings.simplefilter("ignore")
    return {"tool": "sklearn SGDRegressor", "batch": 1, "seconds_per_epoch": per_epoch(run, e1, e2), "rows": len(y)}


def numpy_rows(path, batch, e1, e2, bits=64):
    x, y = load(path)
    if bits == 32:
        x, y = x.astype(np.float32), y.astype(np.float32)
    seconds = per_epoch(lambda e: numpy_sgd(x, y, batch, e), e1, e2)
    return {"tool": "numpy loop", "batch": batch, "bits": bits, "seconds_per_epoch": seconds, "rows": len(y)}


def _one_run(args):
    path, batch, epochs, seed = args
    x, y = load(path)
    return numpy_sgd(x, y, batch, epochs, seed=seed)[-1]


def numpy_runs(path, batch, epochs, runs):
    start = time.perf_counter()
    with Pool(2) as pool:
        pool.map(_one_run, [(path, batch, epochs, seed) for seed in range(runs)])
    return {"tool": "numpy loop, 2 processes", "batch": batch, "epochs": epochs, "runs": runs,
            "seconds": time.perf_counter() - start}


def ols_rows(path, repeats):
    from sklearn.linear_model import LinearRegression

    out = {"tool": "python ols"}
    start = time.perf_counter()
    x, y = load(path)
    out["load_seconds"] = time.perf_counter() - start

    def lstsq():
        a = np.column_stack([np.ones(len(y)), x])
        np.linalg.lstsq(a, y, rcond=None)

    def sklearn():
        LinearRegression().fit(x, y)

    for name, fn in [("lstsq", lstsq), ("sklearn", sklearn)]:
        times = sorted(timed(fn) for _ in range(repeats))
        out[f"{name}_solve_seconds"] = times[len(times) // 2]
    return out


if __name__ == "__main__":
    mode, path, *rest = sys.argv[1:]
    args = [int(v) for v in rest]
    result = {
        "sklearn": lambda: sklearn_rows(path, *args),
        "numpy": lambda: numpy_rows(path, *args),
        "numpy-runs": lambda: numpy_runs(path, *args),
        "ols": lambda: ols_rows(path, *args),
    }[mode]()
    print(json.dumps(result))
