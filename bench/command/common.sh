# Sourced by the command-run benchmarks: `$sweep` (the binary), `$work` (a temporary folder, removed
# on exit), and `program_config NAME EPOCHS [GRID]`, which compiles bench/command/NAME.c into
# $work/NAME and writes $work/c.toml running it on a small built-in data set.
set -euo pipefail
shopt -s inherit_errexit
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
sweep="$(realpath "${SWEEP:-${CARGO_TARGET_DIR:-target}/release/sweep}")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
program_config() {
  gcc -O2 -o "$work/$1" "bench/command/$1.c"
  cat > "$work/c.toml" <<TOML
[data]
n_rows = 120
n_features = 4
signal_lags = 2
[train]
epochs = $2
[grid]
${3:-}
[command]
argv = ["$work/$1"]
metric = "val_loss"
converged = { at_most = 1.0 }
TOML
}
machine() {
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); sweep $("$sweep" --version)"
}
