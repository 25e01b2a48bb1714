#!/usr/bin/env python3
"""One big data set on every core (run by bench/big.sh, BLAS on all cores): sweep against NumPy
least squares in the same run, and how the fixed cost grows with rows and features.

1. `sweep run configs/scale.toml` (the built-in generator at 100,000 x 1,000, one run of one
   epoch, normalize_target and clip): wall time and peak memory, against `numpy.linalg.lstsq`
   alone on the same data's 100,000 x 1,001 design (the ones column included).
2. `sweep ols` on that data set as a Parquet file, against a pandas or a polars read of the file
   plus `lstsq` (the faster of the two).
3. The fixed cost (`prepare_seconds`: generate, factor, fit, spectrum) at 9 shapes, fitted by
   least squares to `t = a n p^2 + b n p` and to a power law `t = c n^alpha p^beta`.

Environment: SWEEP (the binary), REPEATS (default 3), QUICK=1 (smaller shapes, a smoke test).
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
SWEEP = os.environ["SWEEP"]
REPEATS = int(os.environ.get("REPEATS", "3"))
QUICK = os.environ.get("QUICK") == "1"
N, D = (20000, 300) if QUICK else (100000, 1000)


def median(values):
    values = sorted(values)
    return values[len(values) // 2]


def timed(cmd):
    """Wall seconds and peak resident MB of a command."""
    start = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%M", *cmd], check=True, capture_output=True, text=True)
    return time.perf_counter() - start, int(out.stderr.strip().splitlines()[-1]) / 1024


def big_config(tmp, n, d):
    config = tmp / f"big-{n}x{d}.toml"
    config.write_text(f'name = "big"\n\n[data]\nn_rows = {n}\nn_features = {d}\n\n'
                      "[train]\nepochs = 1\nnormalize_target = true\nclip = true\n")
    return config


def load_parquet(path, reader):
    if reader == "pandas":
        import pandas as pd
        frame = pd.read_parquet(path)
        values = frame.to_numpy(dtype=np.float64)
    else:
        import polars as pl
        values = pl.read_parquet(path).to_numpy()
    return values[:, :-1], values[:, -1]


def lstsq(x, y):
    a = np.column_stack([np.ones(len(y)), x])
    start = time.perf_counter()
    np.linalg.lstsq(a, y, rcond=None)
    return time.perf_counter() - start


def whole_command(tmp, data):
    config = big_config(tmp, N, D)
    runs = [timed([SWEEP, "run", str(config), "--out", str(tmp / "out"), "--quiet", "--fresh"])
            for _ in range(REPEATS)]
    prepare = tomllib.loads((tmp / "out/timing.toml").read_text())["prepare_seconds"]
    x, y = load_parquet(data, "polars")
    solve = median([lstsq(x, y) for _ in range(REPEATS)])
    wall = median([r[0] for r in runs])
    print(f"sweep run, built-in {N} x {D}, one run of one epoch: {wall:.2f} s "
          f"(prepare {prepare:.2f} s), peak {max(r[1] for r in runs):.0f} MB; "
          f"numpy lstsq alone {solve:.2f} s: {wall / solve:.2f}x")
    return solve


def ols_command(data):
    sweep = median([timed([SWEEP, "ols", str(data), "--target", "y"])[0] for _ in range(REPEATS)])
    peak = timed([SWEEP, "ols", str(data), "--target", "y"])[1]
    python = {}
    for reader in ("pandas", "polars"):
        def once():
            start = time.perf_counter()
            x, y = load_parquet(data, reader)
            a = np.column_stack([np.ones(len(y)), x])
            np.linalg.lstsq(a, y, rcond=None)
            return time.perf_counter() - start
        python[reader] = median([once() for _ in range(REPEATS)])
    best = min(python, key=python.get)
    print(f"sweep ols, {N} x {D} Parquet: {sweep:.2f} s, peak {peak:.0f} MB; "
          f"pandas read + lstsq {python['pandas']:.2f} s, polars read + lstsq {python['polars']:.2f} s: "
          f"{sweep / python[best]:.2f}x the faster ({best})")


def scaling(tmp):
    rows = [5000, 10000, 20000] if QUICK else [25000, 50000, 100000]
    features = [100, 200] if QUICK else [250, 500, 1000]
    points = []
    for n in rows:
        for d in features:
            config = big_config(tmp, n, d)
            seconds = []
            for _ in range(REPEATS):
                subprocess.run([SWEEP, "run", str(config), "--out", str(tmp / "scale"), "--quiet", "--fresh"],
                               check=True)
                seconds.append(tomllib.loads((tmp / "scale/timing.toml").read_text())["prepare_seconds"])
            points.append((n, d + 1, median(seconds)))
            print(f"  prepare at {n} x {d}: {points[-1][2]:.3f} s", file=sys.stderr)
    n, p, t = (np.array(v, dtype=float) for v in zip(*points))
    (a, b), *_ = np.linalg.lstsq(np.column_stack([n * p * p, n * p]), t, rcond=None)
    fitted = a * n * p * p + b * n * p
    worst = np.max(np.abs(fitted / t - 1))
    (log_c, alpha, beta), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(t), np.log(n), np.log(p)]),
                                               np.log(t), rcond=None)
    print("fixed cost (prepare_seconds) at " + ", ".join(f"{int(n)} x {int(p) - 1}: {t:.3f} s" for n, p, t in points))
    print(f"fit t = a n p^2 + b n p: a = {a:.3e} s ({2 / a / 1e9:.1f} GFLOP/s at 2 n p^2 flops), "
          f"b = {b:.3e} s; worst point off by {100 * worst:.0f}%")
    print(f"fit t = c n^alpha p^beta: alpha = {alpha:.2f}, beta = {beta:.2f}")


def main():
    cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    import threadpoolctl
    blas = [{k: i.get(k) for k in ("internal_api", "num_threads")} for i in threadpoolctl.threadpool_info()]
    print(f"machine: {os.cpu_count()} cores, {cpu}; sweep {SWEEP}; BLAS {json.dumps(blas)}; repeats {REPEATS}")
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        data = tmp / "big.parquet"
        subprocess.run([SWEEP, "data", str(big_config(tmp, N, D)), "--out", str(data)], check=True)
        whole_command(tmp, data)
        ols_command(data)
        scaling(tmp)


if __name__ == "__main__":
    main()
