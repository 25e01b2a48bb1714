#!/usr/bin/env python3
"""LRE table of numpy.linalg.lstsq, statsmodels OLS and scikit-learn LinearRegression on the
11 NIST StRD linear-regression datasets, read as f64 the way a user's file would be.

Usage: python3 scripts/nist_python_lre.py [DIR]   (default: ../shared/data/nist-strd)
Prints, per dataset and tool, the minimum LRE over the certified coefficients, the LRE of the
residual standard deviation and of R² (LRE = -log10 of the relative error, capped at 15;
the absolute error where the certified value is 0; 0 when no digit is right).
Needs numpy, statsmodels and scikit-learn.
"""
import math
import sys
import warnings
from pathlib import Path

import numpy as np
import statsmodels.api as sm
from sklearn.linear_model import LinearRegression

MODELS = [("Norris", 1, True), ("Pontius", 2, True), ("NoInt1", 1, False), ("NoInt2", 1, False),
          ("Filip", 10, True), ("Longley", None, True), ("Wampler1", 5, True), ("Wampler2", 5, True),
          ("Wampler3", 5, True), ("Wampler4", 5, True), ("Wampler5", 5, True)]


def parse(path):
    lines = path.read_text().replace("\r", "").split("\n")
    start = max(i for i, line in enumerate(lines) if line.lstrip().startswith("Data:")) + 1
    coef, sd, r2 = [], None, None
    for line in lines[:start]:
        t = line.split()
        if len(t) == 3 and t[0].startswith("B") and t[0][1:].isdigit():
            coef.append(float(t[1]))
        elif len(t) == 3 and t[:2] == ["Standard", "Deviation"]:
            sd = float(t[2])
        elif len(t) == 2 and t[0] == "R-Squared":
            r2 = float(t[1])
    rows = np.array([[float(v) for v in line.split()] for line in lines[start:] if line.split()])
    return coef, sd, r2, rows[:, 0], rows[:, 1:]


def lre(estimate, certified):
    if not np.isfinite(estimate):
        return 0.0
    err = abs(estimate) if certified == 0 else abs(estimate - certified) / abs(certified)
    return 15.0 if err == 0 else min(15.0, max(0.0, -math.log10(err)))


def figures(y, design, params, intercept):
    """Residual SD and R² from a tool's coefficients (R² uncentred without an intercept)."""
    resid = y - design @ params
    n, p = design.shape
    sse = float(resid @ resid)
    sst = float(((y - y.mean()) ** 2).sum()) if intercept else float(y @ y)
    return math.sqrt(sse / (n - p)), 1 - sse / sst


def main(folder):
    tools = ["numpy lstsq", "statsmodels", "sklearn"]
    print(f"{'':<9}  " + "  ".join(f"{t:>20}" for t in tools))
    print(f"{'dataset':<9}  " + "  ".join(f"{'coef  sd    R²':>20}" for _ in tools))
    for name, degree, intercept in MODELS:
        coef, cert_sd, cert_r2, y, x = parse(folder / f"{name}.dat")
        features = x if degree is None else np.column_stack([x[:, 0] ** k for k in range(1, degree + 1)])
        design = np.column_stack([np.ones(len(y)), features]) if intercept else features
        cells = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits = {}
            fits["numpy lstsq"] = np.linalg.lstsq(design, y, rcond=None)[0]
            model = sm.OLS(y, design).fit()
            fits["statsmodels"] = model.params
            lr = LinearRegression(fit_intercept=intercept).fit(features, y)
            fits["sklearn"] = np.concatenate([[lr.intercept_], lr.coef_]) if intercept else lr.coef_
        for tool in tools:
            params = np.asarray(fits[tool], dtype=float)
            sd, r2 = figures(y, design, params, intercept)
            if tool == "statsmodels":
                sd, r2 = math.sqrt(model.scale), model.rsquared
            c = min(lre(e, c) for e, c in zip(params, coef))
            cells.append(f"{c:>6.1f}{lre(sd, cert_sd):>6.1f}{lre(r2, cert_r2):>6.1f}  ")
        print(f"{name:<9}  " + "".join(f"{cell:>22}" for cell in cells).rstrip())


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/nist-strd"))
