#!/usr/bin/env bash
# The side-by-side benchmark: sweep against scikit-learn's SGDRegressor, a NumPy minibatch loop and
# NumPy / scikit-learn least squares, in the pinned environment of requirements/ci.txt, BLAS on one
# thread. Build first (cargo build --release --all-targets: the FMA-peak microkernel is an example).
# Optional: BASELINE=/path/to/older/sweep (alternated with this build on configs/ablation.toml),
# REPEATS=N (default 3), QUICK=1 (a smoke test).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh
py="$(venv_python requirements/ci.txt)"
export SWEEP="${SWEEP:-${CARGO_TARGET_DIR:-target}/release/sweep}"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" >&2
# One BLAS thread for the per-thread rows; OPENBLAS_CORETYPE would pin another kernel.
unset OPENBLAS_CORETYPE
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
"$py" -c "import numpy, threadpoolctl, json; print('BLAS:', json.dumps([{k: i[k] for k in ('internal_api', 'version', 'num_threads', 'architecture') if k in i} for i in threadpoolctl.threadpool_info()]))" >&2
exec "$py" bench/compare.py
