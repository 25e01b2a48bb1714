#!/usr/bin/env bash
# The seed's ablation in Keras (examples/keras/ablation.toml, 80 runs x 500 epochs): makes the
# virtual environment of the pinned examples/keras/requirements.txt (scripts/venv.sh, cached under
# ~/.cache/sweep-venvs) and runs the sweep with its python3 first on PATH, into $OUT (default
# results/keras-ablation). Extra arguments go to `sweep run` (--jobs 1, --set ..., --fresh). SWEEP
# names the binary (default: sweep on PATH).
#   OUT=results/keras-b32 examples/keras/run.sh --set 'grid.batch_size=[32]'
# Time on this project's 2-core machine (CPU JAX, one jitted call per epoch): alone, a run takes
# about 2.4 s of start-up plus 0.33 s an epoch at batch 4 (one process keeps ~1.5 cores busy); two
# at once (--jobs 2) make 0.19 s per run-epoch at batch 4. The whole grid (80 runs) took about two
# hours on 2026-12-07, on a machine shared with builds (docs/explanation/keras.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/venv.sh
py="$(venv_python examples/keras/requirements.txt)"
PATH="$(dirname "$py"):$PATH" "${SWEEP:-sweep}" run examples/keras/ablation.toml --out "${OUT:-results/keras-ablation}" "$@"
