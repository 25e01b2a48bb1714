#!/usr/bin/env bash
# The seed's ablation in Keras (examples/keras/ablation.toml, 80 runs x 500 epochs): makes the
# virtual environment of the pinned examples/keras/requirements.txt (scripts/venv.sh, cached under
# ~/.cache/sweep-venvs) and runs the sweep with its python3 first on PATH. Extra arguments go to
# `sweep run` (--jobs 1, --set ..., --fresh). SWEEP names the binary (default: sweep on PATH).
#   examples/keras/run.sh [--jobs N] [...]
# Time on this project's 2-core machine (CPU JAX): per run about 2.4 s of start-up (imports and
# compiling) plus 0.04 s an epoch at batch 32 and 0.40 s an epoch at batch 4, so ~22 s and ~200 s
# a run: ~2.5 h with --jobs 1, an estimated ~1.5 h with the default --jobs 2 (one Keras process
# keeps ~1.2 cores busy, so two do not run twice as fast). The built-in engine runs the same grid
# in ~2 minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/venv.sh
py="$(venv_python examples/keras/requirements.txt)"
PATH="$(dirname "$py"):$PATH" "${SWEEP:-sweep}" run examples/keras/ablation.toml --out results/keras-ablation "$@"
