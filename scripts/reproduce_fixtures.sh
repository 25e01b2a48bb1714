#!/usr/bin/env bash
# Re-runs every committed reference result under tests/fixtures/ with `sweep reproduce`. Where the
# fixture's recorded machine (CPU model and SIMD level) is this machine, every table must be
# identical; elsewhere (another CPU kind may differ in the last bits of the linear algebra) the
# numbers must agree within --rtol 1e-9 (--atol 1e-12 for values near zero), with statuses and labels
# identical. Says which it checked.
set -euo pipefail
cd "$(dirname "$0")/.."
sweep="$1"
status=0
for dir in tests/fixtures/*/; do
  dir="${dir%/}"
  if out="$("$sweep" reproduce "$dir" 2>&1)"; then
    echo "$dir: identical"
    continue
  fi
  echo "$out"
  if grep -q '^  \* machine' <<<"$out"; then
    echo "$dir: recorded on another CPU kind or SIMD level; checking within --rtol 1e-9 --atol 1e-12"
    if "$sweep" reproduce "$dir" --rtol 1e-9 --atol 1e-12; then
      echo "$dir: reproduced within rtol 1e-9, atol 1e-12 (statuses and labels identical)"
      continue
    fi
  fi
  echo "$dir: NOT reproduced"
  status=1
done
exit "$status"
