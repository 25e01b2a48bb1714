#!/usr/bin/env python3
"""Batch 4 against batch 32: sample-updates per second of one run on one thread (plain SGD,
normalized target, f64 and f32, whitening none/zca, clipping off/on), from the run phase at two
epoch counts as in bench/compare.py, for build A and, if given, build B, alternated.

  A=target/release/sweep [B=/path/to/other/sweep] [REP=3] python3 bench/batch4.py
"""
import os
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import compare  # noqa: E402

A, B = os.environ["A"], os.environ.get("B")
REP = int(os.environ.get("REP", "3"))
N = 9259  # rows of the built-in data set


def rate(binary, config, out, sets, e1, e2):
    per_epoch = []
    for _ in range(REP):
        r1 = compare.sweep_run(binary, config, out, sets + [f"train.epochs={e1}"])["run_seconds"]
        r2 = compare.sweep_run(binary, config, out, sets + [f"train.epochs={e2}"])["run_seconds"]
        per_epoch.append((r2 - r1) / (e2 - e1))
    return N / statistics.median(per_epoch) / 1e6


def main():
    builds = [("A", A)] + ([("B", B)] if B else [])
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        config = tmp / "one.toml"
        config.write_text('[train]\ninit = "he_normal"\n')
        # At least d = 121 epochs at both counts: the train MSE by the identity, no full pass.
        epochs = {4: (130, 430), 32: (130, 730)}
        for dtype in ("f64", "f32"):
            for whiten in ("none", "zca"):
                for clip in ("false", "true"):
                    line = f"{dtype} whiten {whiten} clip {clip}:"
                    for name, binary in builds:
                        r = {}
                        for batch, (e1, e2) in epochs.items():
                            sets = [f"train.batch_size={batch}", f'train.whiten="{whiten}"', f"train.clip={clip}",
                                    "train.normalize_target=true", f'train.dtype="{dtype}"']
                            r[batch] = rate(binary, config, tmp / "out", sets, e1, e2)
                        line += f"  {name}: batch 4 {r[4]:.1f}, batch 32 {r[32]:.1f} M/s, ratio {r[4] / r[32]:.2f}"
                    print(line, flush=True)


if __name__ == "__main__":
    main()
