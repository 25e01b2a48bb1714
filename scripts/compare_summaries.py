#!/usr/bin/env python3
"""Compares the findings of two builds on the same configs: the verdict labels, the scenarios'
`reproduced` flags, and every cell median of `summary.parquet`.

Usage: python scripts/compare_summaries.py OLD_RESULTS NEW_RESULTS
OLD_RESULTS and NEW_RESULTS hold one results folder per config (for example results of
`sweep run configs/X.toml --out OLD_RESULTS/X` with each build). Prints, per config, whether labels
and flags are identical, the cells whose medians moved by more than 1e-8 relative, and the largest
relative change among the others. Exits 1 when a label or flag differs.
"""
import sys
from pathlib import Path

import pyarrow.parquet as pq

THRESHOLD = 1e-8


def rows(path):
    return pq.read_table(path).to_pylist() if path.exists() else []


def main(old_root, new_root):
    differ = False
    small = (0.0, None)
    for old in sorted(p for p in old_root.iterdir() if (p / "summary.parquet").exists()):
        new = new_root / old.name
        for table, key in (("verdict.parquet", "label"), ("scenarios.parquet", "reproduced")):
            a, b = [r[key] for r in rows(old / table)], [r[key] for r in rows(new / table)]
            if a:
                print(f"{old.name} {table}: {len(a)} rows, {key} {'identical' if a == b else 'DIFFERENT'}")
                differ |= a != b
        for i, (a, b) in enumerate(zip(rows(old / "summary.parquet"), rows(new / "summary.parquet"))):
            for column in (c for c in a if c.endswith("_median")):
                x, y = a[column], b[column]
                if x is None or y is None or x == y:
                    continue
                change = abs(y - x) / max(abs(x), 1e-300)
                if change > THRESHOLD:
                    print(f"{old.name} cell {i} {column}: {x:.6g} -> {y:.6g} ({change:.2e} relative;"
                          f" converged {a['converged_fraction']} -> {b['converged_fraction']})")
                elif change > small[0]:
                    small = (change, f"{old.name} cell {i} {column}")
    print(f"largest relative change of the other medians: {small[0]:.1e} ({small[1]})")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
