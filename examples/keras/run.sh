#!/usr/bin/env bash
# The seed's ablation in Keras (examples/keras/ablation.toml, 80 runs x 500 epochs): makes the
# virtual environment of the pinned examples/keras/requirements.txt (scripts/venv.sh, cached under
# ~/.cache/sweep-venvs) and runs the sweep with its python3 first on PATH, into $OUT (default
# results/keras-ablation). Extra arguments go to `sweep run` (--jobs 1, --set ..., --fresh). SWEEP
# names the binary (default: sweep on PATH).
#   OUT=results/keras-b32 examples/keras/run.sh --set 'grid.batch_size=[32]'
# Time on this project's 2-core machine (CPU JAX): the 40 batch-32 runs took 1113.6 s with the
# default --jobs 2 (docs/explanation/keras.md); alone, a run takes about 2.4 s of start-up plus
# 0.045 s an epoch at batch 32 and 0.41 s at batch 4 (one process keeps ~1.2 cores busy, so
# --jobs 2 gains little on 2 cores): about 2.6 h for the whole grid.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/venv.sh
py="$(venv_python examples/keras/requirements.txt)"
PATH="$(dirname "$py"):$PATH" "${SWEEP:-sweep}" run examples/keras/ablation.toml --out "${OUT:-results/keras-ablation}" "$@"
