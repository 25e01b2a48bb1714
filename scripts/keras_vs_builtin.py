#!/usr/bin/env python3
"""Sets a Keras sweep's tables beside the built-in engine's on the same grid, cell by cell.

    python3 scripts/keras_vs_builtin.py KERAS_DIR BUILTIN_DIR

KERAS_DIR is the output folder of examples/keras/ablation.toml (or part of its grid, e.g.
`--set 'grid.batch_size=[32]'`), BUILTIN_DIR that of the same config without its [command]
section. Prints Markdown: per cell (whiten, normalize_target, clip, batch_size) the converged
counts, median epochs to converge and median final R² of both; then per verdict row the labels
and Fisher p-values of both. docs/explanation/keras.md quotes its output. Needs pyarrow.
"""
import sys

import pyarrow.parquet as pq

KEYS = ["whiten", "normalize_target", "clip", "batch_size"]


def rows(path):
    return pq.read_table(path).to_pylist()


def median(values):
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    m = len(values) // 2
    return values[m] if len(values) % 2 else (values[m - 1] + values[m]) / 2


def show(v, fmt="{:.4f}"):
    return "-" if v is None else fmt.format(v)


def cells(folder):
    out = {}
    for r in rows(f"{folder}/runs.parquet"):
        out.setdefault(tuple(r[k] for k in KEYS), []).append(r)
    return out


def main(keras_dir, builtin_dir):
    keras, builtin = cells(keras_dir), cells(builtin_dir)
    print("| whiten | normalize | clip | batch | converged (Keras / built-in) | "
          "median epochs to converge | median final R² |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for key in sorted(keras, key=lambda k: (k[3], k[0], k[1], k[2])):
        k, b = keras[key], builtin.get(key, [])
        conv = lambda runs: sum(r["status"] == "converged" for r in runs)
        epochs = lambda runs: median([r["epochs_to_converge"] for r in runs])
        r2 = lambda runs: median([r["final_train_r2"] for r in runs
                                  if r["status"] not in ("diverged", "failed")])
        print(f"| {key[0]} | {str(key[1]).lower()} | {str(key[2]).lower()} | {key[3]} | "
              f"{conv(k)}/{len(k)} / {conv(b)}/{len(b)} | "
              f"{show(epochs(k), '{:g}')} / {show(epochs(b), '{:g}')} | "
              f"{show(r2(k))} / {show(r2(b))} |")
    print()
    print("| batch | fix | label (Keras / built-in) | Fisher p (Keras / built-in) |")
    print("| --- | --- | --- | --- |")
    verdicts = [rows(f"{d}/verdict.parquet") for d in (keras_dir, builtin_dir)]
    for vk in verdicts[0]:
        vb = next((v for v in verdicts[1]
                   if v["factor"] == vk["factor"] and v.get("batch_size") == vk.get("batch_size")),
                  None)
        print(f"| {vk.get('batch_size', '-')} | {vk['factor']} | {vk['label']} / "
              f"{vb['label'] if vb else '-'} | {show(vk['fisher_p'], '{:.3g}')} / "
              f"{show(vb['fisher_p'] if vb else None, '{:.3g}')} |")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
