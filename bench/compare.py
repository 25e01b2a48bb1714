#!/usr/bin/env python3
"""Side-by-side benchmark of `sweep` against scikit-learn's SGDRegressor, a NumPy minibatch loop
and NumPy/scikit-learn least squares, on the built-in data set exported by `sweep data`.
Run through bench/compare.sh (which makes the pinned virtual environment and pins BLAS to one
thread). Medians over repetitions; prints one table of figures and ratios.

Environment: SWEEP (the binary), BASELINE (an older sweep binary to compare the ablation with),
REPEATS (default 3), QUICK=1 (fewer epochs and shapes, for a smoke test).
"""
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import baselines  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SWEEP = os.environ.get("SWEEP", str(REPO / "target/release/sweep"))
BASELINE = os.environ.get("BASELINE")
REPEATS = int(os.environ.get("REPEATS", "3"))
QUICK = os.environ.get("QUICK") == "1"
ROWS = []


def row(name, value, unit, note=""):
    ROWS.append((name, value, unit, note))
    print(f"  {name}: {value:.4g} {unit} {note}", file=sys.stderr, flush=True)


def sweep_run(binary, config, out, sets=(), jobs=1):
    """Runs a sweep into a fresh folder; returns its timing.toml."""
    args = [binary, "run", str(config), "--out", str(out), "--quiet", "--fresh", "--jobs", str(jobs)]
    for s in sets:
        args += ["--set", s]
    subprocess.run(args, check=True)
    return tomllib.loads((Path(out) / "timing.toml").read_text())


def median(values):
    return statistics.median(values)


def throughput(tmp, n):
    """Sample-updates per second of one run on one thread: the run phase of timing.toml at two
    epoch counts, so that fixed costs (saving the run, starting the pool) cancel."""
    config = tmp / "one.toml"
    config.write_text("[train]\ninit = \"he_normal\"\n")
    # At least d = 121 epochs: the per-epoch train MSE comes from the Gram identity at both counts
    # (below d epochs a run takes a full pass instead; the "full pass" row measures that route).
    epochs = {1: (130, 330), 4: (130, 430), 32: (130, 730), "pass": (20, 120)}
    if QUICK:
        epochs = {1: (121, 141), 4: (121, 141), 32: (121, 161), "pass": (2, 22)}
    cases = []
    for batch in (1, 4, 32):
        for whiten in ("none", "zca"):
            for clip in ("false", "true"):
                cases.append((batch, whiten, clip, "sgd", "f64"))
        cases += [(batch, "zca", "true", "momentum", "f64"), (batch, "zca", "true", "adam", "f64")]
        cases += [(batch, "none", "true", "sgd", "f32"), (batch, "zca", "true", "sgd", "f32")]
    cases += [("pass", "none", "true", "sgd", "f64"), ("pass", "none", "true", "sgd", "f32")]
    per_epoch = {}
    for batch, whiten, clip, optimizer, dtype in cases:
        size = 32 if batch == "pass" else batch
        sets = [f"train.batch_size={size}", f"train.whiten=\"{whiten}\"", f"train.clip={clip}",
                f"train.optimizer=\"{optimizer}\"", "train.normalize_target=true", f"train.dtype=\"{dtype}\""]
        e1, e2 = epochs[batch]

        def run_phase(e):
            return sweep_run(SWEEP, config, tmp / "one", sets + [f"train.epochs={e}"])["run_seconds"]

        seconds = median([(run_phase(e2) - run_phase(e1)) / (e2 - e1) for _ in range(REPEATS)])
        per_epoch[(batch, whiten, clip, optimizer, dtype)] = seconds
        name = f"batch {batch}" if batch != "pass" else "batch 32 with a full pass (< d epochs)"
        row(f"sweep {optimizer} {dtype}, {name}, whiten {whiten}, clip {clip}", n / seconds / 1e6,
            "M sample-updates/s", f"({seconds * 1e3:.3f} ms/epoch)")
    return per_epoch


def python_rows(data, per_epoch):
    e1, e2 = (2, 6) if QUICK else (5, 25)
    sk = json.loads(run_py("sklearn", data, e1, e2))
    mine = per_epoch[(1, "none", "false", "sgd", "f64")]
    row("sklearn SGDRegressor, batch 1", sk["seconds_per_epoch"] * 1e3, "ms/epoch",
        f"sweep (no whitening, no clipping) is {sk['seconds_per_epoch'] / mine:.2f}x faster")
    npy = json.loads(run_py("numpy", data, 32, 2, 6 if QUICK else 12))
    mine = per_epoch[(32, "none", "true", "sgd", "f64")]
    row("NumPy loop, batch 32, clipped, full-pass MSE", npy["seconds_per_epoch"] * 1e3, "ms/epoch",
        f"sweep (no whitening, clipped) is {npy['seconds_per_epoch'] / mine:.2f}x faster")
    passing = per_epoch[("pass", "none", "true", "sgd", "f64")]
    row("  the same, sweep with its own full pass (< d epochs)", npy["seconds_per_epoch"] * 1e3, "ms/epoch",
        f"sweep is {npy['seconds_per_epoch'] / passing:.2f}x faster")
    npy32 = json.loads(run_py("numpy", data, 32, 2, 6 if QUICK else 12, 32))
    mine32 = per_epoch[(32, "none", "true", "sgd", "f32")]
    row("NumPy loop in float32, batch 32, clipped, full-pass MSE", npy32["seconds_per_epoch"] * 1e3, "ms/epoch",
        f"sweep f32 (no whitening, clipped) is {npy32['seconds_per_epoch'] / mine32:.2f}x faster")


def run_py(*args):
    return subprocess.run([sys.executable, str(Path(__file__).parent / "baselines.py"), *map(str, args)],
                          check=True, capture_output=True, text=True).stdout


def ceilings(data, per_epoch):
    """This machine's limits, measured with NumPy on one thread: a streaming read of the data set
    (a contiguous sum) and a matrix product; and how close sweep's batch-32 epoch comes to them."""
    import numpy as np

    x, _ = baselines.load(data)
    def read_time(a):
        reads = sorted(baselines.timed(np.sum, a) for _ in range(50))
        return reads[len(reads) // 2]

    read = read_time(x)
    x32 = x.astype(np.float32)
    # The f32 bytes read at f64 speed (summed as if they were f64; only the read time matters):
    # NumPy's float32 sum is slower per byte than the memory.
    with np.errstate(all="ignore"):
        read32 = read_time(x32.reshape(-1)[: x32.size // 2 * 2].view(np.float64))
    a = np.random.default_rng(0).standard_normal((1000, 1000))
    products = sorted(baselines.timed(np.matmul, a, a) for _ in range(5))
    gflops = 2e9 / products[len(products) // 2] / 1e9
    row("streaming read of the data set (NumPy sum, 1 thread)", x.nbytes / read / 1e9, "GB/s",
        f"({read * 1e3:.3f} ms for {x.nbytes / 1e6:.1f} MB)")
    row("matrix product 1000 x 1000 (NumPy/OpenBLAS, 1 thread)", gflops, "GFLOP/s")
    epoch = per_epoch[(32, "none", "true", "sgd", "f64")]
    n, d = x.shape
    # The epoch reads X' once (the steps: 4 flops per element, dot and axpy; the train MSE comes
    # from the Gram identity); below d epochs a second read, the full pass (2 flops per element).
    row("sweep batch-32 epoch / one streaming read", epoch / read, "x",
        f"({x.nbytes / epoch / 1e9:.1f} GB/s, {4 * n * d / epoch / 1e9:.2f} GFLOP/s achieved)")
    passing = per_epoch[("pass", "none", "true", "sgd", "f64")]
    row("sweep batch-32 epoch with a full pass / two streaming reads", passing / (2 * read), "x",
        f"({2 * x.nbytes / passing / 1e9:.1f} GB/s, {6 * n * d / passing / 1e9:.2f} GFLOP/s achieved)")
    row("streaming read of the data set's f32 bytes (NumPy sum, 1 thread)", x32.nbytes / read32 / 1e9, "GB/s",
        f"({read32 * 1e3:.3f} ms for {x32.nbytes / 1e6:.1f} MB)")
    epoch32 = per_epoch[(32, "none", "true", "sgd", "f32")]
    row("sweep f32 batch-32 epoch / one streaming read in f32", epoch32 / read32, "x",
        f"({x32.nbytes / epoch32 / 1e9:.1f} GB/s; f64 epoch / f32 epoch {epoch / epoch32:.2f}x)")
    passing32 = per_epoch[("pass", "none", "true", "sgd", "f32")]
    row("sweep f32 batch-32 epoch with a full pass / two reads in f32", passing32 / (2 * read32), "x",
        f"({2 * x32.nbytes / passing32 / 1e9:.1f} GB/s)")


# The ablation as it was when the speed work began and the README's figures were measured: one
# data realization (120 runs); the config now runs three.
ONE_REALIZATION = ["grid.data_seed=[0]"]


def ablation(tmp):
    config = REPO / "configs/ablation.toml"
    sets = ONE_REALIZATION + (["train.epochs=50"] if QUICK else [])
    two = [sweep_run(SWEEP, config, tmp / "ab2", sets, jobs=2) for _ in range(REPEATS)]
    one = [sweep_run(SWEEP, config, tmp / "ab1", sets, jobs=1) for _ in range(max(1, REPEATS - 1))]
    wall2 = median([t["wall_seconds"] for t in two])
    row("sweep configs/ablation.toml, 2 threads", wall2, "s wall",
        f"(prepare {median([t['prepare_seconds'] for t in two]):.2f} s, run {median([t['run_seconds'] for t in two]):.2f} s,"
        f" write {median([t['write_seconds'] for t in two]):.2f} s)")
    run1, run2 = median([t["run_seconds"] for t in one]), median([t["run_seconds"] for t in two])
    row("run phase, 1 thread / 2 threads", run1 / run2, "x", f"({run1:.2f} s / {run2:.2f} s)")
    flop_rate(tmp / "ab2", median([t["run_seconds"] for t in two]))
    if BASELINE:
        ratios = []
        for _ in range(REPEATS):
            old = sweep_run(BASELINE, config, tmp / "old", sets, jobs=2)["wall_seconds"]
            new = sweep_run(SWEEP, config, tmp / "new", sets, jobs=2)["wall_seconds"]
            ratios.append(old / new)
        row("ablation end to end, baseline / this build (2 threads, alternated)", median(ratios), "x",
            f"(min {min(ratios):.2f}, max {max(ratios):.2f}, {len(ratios)} pairs)")
    return wall2


def flop_rate(out, run_seconds):
    """The ablation's run phase in GFLOP/s (4 d flops per sample-update: the step's dot product
    and update, 2 d each) against the FMA peak of every core, measured now by the microkernel
    examples/fma_peak.rs, with the CPU model and the SIMD level sweep ran at."""
    import pyarrow.parquet as pq
    runs = pq.read_table(out / "runs.parquet", columns=["epochs_run"]).column("epochs_run").to_pylist()
    manifest = tomllib.loads((out / "manifest.toml").read_text())
    n, d = 9259, len(manifest["features"])
    updates = sum(runs) * n
    achieved = updates * 4 * d / run_seconds / 1e9
    peak_binary = os.environ.get("FMA_PEAK", str(Path(SWEEP).parent / "examples/fma_peak"))
    peak = json.loads(subprocess.run([peak_binary], check=True, capture_output=True, text=True).stdout)
    simd = tomllib.loads((out / "timing.toml").read_text())["simd"]
    row("ablation run phase, FLOP rate (4 d per sample-update)", achieved, "GFLOP/s",
        f"({updates / 1e6:.0f} M sample-updates in {run_seconds:.2f} s; {100 * achieved / peak['gflops_all_cores']:.1f}% "
        f"of the FMA peak {peak['gflops_all_cores']:.1f} GFLOP/s on {peak['cores']} cores, "
        f"{peak['gflops_one_thread']:.1f} on one; {peak['cpu']}, sweep at {simd}, peak at {peak['simd']})")


def numpy_ablation(data, wall2):
    """The NumPy loop on a fixed subset of the ablation's runs (2 runs per batch size, on a pool of
    2 processes), scaled to the ablation's 40 runs x 500 epochs per batch size."""
    epochs = {1: 1, 4: 2, 32: 10} if QUICK else {1: 2, 4: 5, 32: 40}
    full_epochs = 50 if QUICK else 500
    estimate = 0.0
    for batch, e in epochs.items():
        result = json.loads(run_py("numpy-runs", data, batch, e, 2))
        estimate += result["seconds"] * (40 / 2) * (full_epochs / e)
    row("NumPy loop, ablation estimated from a subset, 2 processes", estimate, "s",
        f"sweep is {estimate / wall2:.1f}x faster")


def ols(data):
    timings = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        out = subprocess.run([SWEEP, "ols", str(data), "--target", "y", "--timing"], check=True,
                             capture_output=True, text=True)
        total = time.perf_counter() - start
        fit = float(out.stderr.split("fit_seconds=")[1].split()[0])
        timings.append((total, fit))
    total, fit = median([t[0] for t in timings]), median([t[1] for t in timings])
    py = json.loads(run_py("ols", data, 3))
    row("sweep ols: exact reference solve", fit, "s",
        f"numpy lstsq {py['lstsq_solve_seconds']:.3f} s ({py['lstsq_solve_seconds'] / fit:.2f}x),"
        f" sklearn {py['sklearn_solve_seconds']:.3f} s ({py['sklearn_solve_seconds'] / fit:.2f}x)")
    row("sweep ols: load + solve (whole command)", total, "s",
        f"numpy load+lstsq {py['load_seconds'] + py['lstsq_solve_seconds']:.3f} s")


def scaling(tmp):
    """How the fixed and per-epoch costs grow with rows and features: at each shape, the
    built-in generator's data exported to Parquet, then a one-run sweep on that file (batch 32, no
    whitening; the user's-data case) against NumPy load + lstsq on the same file, one thread each.
    Fixed cost = prepare_seconds (read, checks, exact reference, spectrum); per epoch from two
    epoch counts; peak memory from /usr/bin/time."""
    shapes = [(9259, 121), (100000, 121), (9259, 1000), (100000, 1000)]
    if QUICK:
        shapes = shapes[:2]
    for n, d in shapes:
        generator = tmp / "gen.toml"
        generator.write_text(f"[data]\nn_rows = {n}\nn_features = {d}\n")
        data = tmp / f"scale-{n}x{d}.parquet"
        subprocess.run([SWEEP, "data", str(generator), "--out", str(data)], check=True)
        config = tmp / "file.toml"
        config.write_text(f'[data]\npath = "{data}"\ntarget = "y"\n\n[train]\nepochs = 1\n')
        # Enough epochs that their time stands well above the run-to-run noise of the fixed cost.
        # At 9259 x 121 both counts reach d epochs (the train MSE by the Gram identity); the larger
        # shapes run fewer than d epochs, so their epochs include the full pass.
        e1, e2 = (130, 330) if n * d < 2 * 10**6 else (1, 3) if n * d > 10**7 else (2, 12)
        peaks, timings = [], {}
        for e in (e1, e2):
            out = subprocess.run(["/usr/bin/time", "-f", "%M", SWEEP, "run", str(config), "--out", str(tmp / "scale"),
                                  "--quiet", "--fresh", "--jobs", "1", "--set", f"train.epochs={e}"],
                                 check=True, capture_output=True, text=True)
            peaks.append(int(out.stderr.strip().splitlines()[-1]) / 1024)
            timings[e] = tomllib.loads((tmp / "scale/timing.toml").read_text())
        prepare = median([timings[e]["prepare_seconds"] for e in (e1, e2)])
        epoch = (timings[e2]["run_seconds"] - timings[e1]["run_seconds"]) / (e2 - e1)
        py = json.loads(run_py("ols", data, 1 if n * d > 10**7 else 3))
        lstsq = py["load_seconds"] + py["lstsq_solve_seconds"]
        mb = 8 * n * d / 1e6
        row(f"{n} x {d}: sweep before the first epoch (read + reference)", prepare, "s",
            f"numpy load+lstsq {lstsq:.2f} s ({prepare / lstsq:.2f}x), sklearn fit {py['sklearn_solve_seconds']:.2f} s")
        reads = 1 if e1 >= d else 2
        what = "steps; MSE by the identity" if reads == 1 else "steps + full pass"
        row(f"{n} x {d}: sweep epoch, batch 32 ({what})", epoch * 1e3, "ms",
            f"({reads * mb / 1e3 / epoch:.1f} GB/s over {'one read' if reads == 1 else 'two reads'} of {mb:.0f} MB)")
        row(f"{n} x {d}: peak memory, one-run sweep", max(peaks), "MB",
            f"(3 x 8nd + 150 MB = {3 * mb + 150:.0f} MB)")
        data.unlink()


def peak_memory(tmp):
    out = subprocess.run(["/usr/bin/time", "-f", "%M", SWEEP, "run", str(REPO / "configs/ablation.toml"),
                          "--out", str(tmp / "mem"), "--quiet", "--fresh", "--set", ONE_REALIZATION[0]]
                         + (["--set", "train.epochs=50"] if QUICK else []),
                         check=True, capture_output=True, text=True)
    row("peak memory, sweep run configs/ablation.toml", int(out.stderr.strip().splitlines()[-1]) / 1024, "MB")


def main():
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        data = tmp / "data.parquet"
        subprocess.run([SWEEP, "data", str(REPO / "configs/ablation.toml"), "--out", str(data)], check=True)
        n = len(baselines.load(data)[1])
        print(f"sweep {SWEEP}; data {n} rows; repeats {REPEATS}; BLAS threads pinned to 1 for per-thread rows",
              file=sys.stderr)
        per_epoch = throughput(tmp, n)
        python_rows(data, per_epoch)
        ceilings(data, per_epoch)
        wall2 = ablation(tmp)
        numpy_ablation(data, wall2)
        ols(data)
        peak_memory(tmp)
        scaling(tmp)
    width = max(len(r[0]) for r in ROWS)
    print(f"\n{'measurement':<{width}}  {'value':>10}  unit / comparison")
    for name, value, unit, note in ROWS:
        print(f"{name:<{width}}  {value:>10.4g}  {unit} {note}")


if __name__ == "__main__":
    main()
