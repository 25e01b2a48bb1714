#!/usr/bin/env bash
# One big data set on every core: sweep against numpy.linalg.lstsq with NumPy's BLAS on all cores
# (bench/big.py says what is measured). Build first (cargo build --release). Optional: REPEATS=N
# (default 3), QUICK=1 (small shapes, a smoke test), SWEEP=/path/to/sweep.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
py="$(venv_python requirements/ci.txt)"
export SWEEP="${SWEEP:-${CARGO_TARGET_DIR:-target}/release/sweep}"
# BLAS on every core, as a user's NumPy runs by default.
unset OPENBLAS_NUM_THREADS OMP_NUM_THREADS MKL_NUM_THREADS OPENBLAS_CORETYPE
exec "$py" bench/big.py
