#!/usr/bin/env python3
"""Cross-check the OLS reference against scikit-learn's LinearRegression.

Usage: python3 scripts/crosscheck_sklearn.py SWEEP_BINARY [RESULTS_DIR]

1. The built-in data set (`sweep data configs/quick.toml`): `sweep ols` and, when RESULTS_DIR
   holds a sweep of that config, its reference.parquet, against sklearn on the same file.
2. A data file with strongly collinear columns made here (fixed seed): `sweep ols` against sklearn.
R² and the in-sample predictions must agree to 1e-9 relative. Exits non-zero otherwise.
Needs numpy, pyarrow and scikit-learn.
"""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from sklearn.linear_model import LinearRegression

TOL = 1e-9


def sweep_ols(binary, path, target):
    out = subprocess.run([binary, "ols", str(path), "--target", target, "--format", "json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def compare(label, x, y, intercept, coefficients, r2):
    sk = LinearRegression().fit(x, y)
    ours = intercept + x @ np.asarray(coefficients)
    theirs = sk.predict(x)
    pred_err = float(np.max(np.abs(ours - theirs)) / np.max(np.abs(theirs)))
    r2_err = abs(r2 - sk.score(x, y)) / abs(sk.score(x, y))
    ok = pred_err <= TOL and r2_err <= TOL
    print(f"{label:<44} R² {r2:.12f}  rel. diff R² {r2_err:.1e}  predictions {pred_err:.1e}  {'ok' if ok else 'FAIL'}")
    return ok


def main(binary, results):
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "builtin.parquet"
        subprocess.run([binary, "data", "configs/quick.toml", "--out", str(data)], check=True)
        table = pq.read_table(data).to_pandas()
        x, y = table.drop(columns=["y"]).to_numpy(), table["y"].to_numpy()
        fit = sweep_ols(binary, data, "y")
        ok &= compare("built-in data, sweep ols", x, y, fit["intercept"], list(fit["coefficients"].values()), fit["r2"])
        if results and (Path(results) / "reference.parquet").exists():
            ref = pq.read_table(Path(results) / "reference.parquet").to_pandas()
            ok &= compare("built-in data, reference.parquet of the sweep", x, y, float(ref["intercept"][0]),
                          ref.sort_values("feature_index")["coefficient"].to_list(), float(ref["r2"][0]))

        rng = np.random.default_rng(12345)
        n, base = 2000, rng.standard_normal((2000, 5))
        # Strongly collinear but full rank: a near-duplicate column and a near-combination of two others.
        cols = [base[:, 0], base[:, 0] + 1e-3 * base[:, 3], base[:, 1], base[:, 2],
                3 * base[:, 2] - base[:, 1] + 1e-3 * base[:, 4]]
        x2 = np.column_stack(cols)
        y2 = 0.3 + x2 @ np.array([1.0, -0.5, 2.0, 0.1, 0.7]) + 0.05 * rng.standard_normal(n)
        csv = Path(tmp) / "collinear.csv"
        header = "a,b,c,d,e,target"
        np.savetxt(csv, np.column_stack([x2, y2]), delimiter=",", header=header, comments="", fmt="%.17g")
        fit = sweep_ols(binary, csv, "target")
        ok &= compare("collinear CSV file, sweep ols", x2, y2, fit["intercept"], list(fit["coefficients"].values()), fit["r2"])
    print("crosscheck:", "all agree to 1e-9" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))
