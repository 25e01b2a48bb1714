#!/usr/bin/env python3
"""Compares the f32 and f64 cells of a sweep whose grid varies `dtype` (configs/dtype.toml): the
verdict labels, the epochs to converge, and the largest relative difference of each cell median.

Usage: python scripts/compare_dtypes.py RESULTS   (exits 1 when a label differs)
"""
import sys
from pathlib import Path

import polars as pl


def main(results):
    summary = pl.read_parquet(results / "summary.parquet")
    keys = [c for c in ("batch_size", "whiten", "normalize_target", "clip", "learning_rate", "optimizer")
            if c in summary.columns]
    f64, f32 = summary.filter(pl.col("dtype") == "f64"), summary.filter(pl.col("dtype") == "f32")
    joined = f64.join(f32, on=keys, suffix="_f32")
    print(f"{joined.height} cells in both dtypes")
    for column in [c for c in summary.columns if c.endswith("_median")]:
        relative = joined.select(
            ((pl.col(column) - pl.col(f"{column}_f32")).abs() / pl.col(column).abs()).max()).item()
        print(f"{column}: largest relative difference {relative:.2g}")
    verdict = pl.read_parquet(results / "verdict.parquet")
    context = [c for c in verdict.columns if c not in ("dtype",) and c in keys]
    pivot = verdict.select(context + ["factor", "dtype", "label"]).pivot(
        on="dtype", index=context + ["factor"], values="label")
    differ = pivot.filter(pl.col("f64") != pl.col("f32"))
    print(f"verdict rows: {pivot.height}, labels that differ between f64 and f32: {differ.height}")
    if differ.height:
        print(differ)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
