#!/usr/bin/env bash
# Command-run memory: one run that writes 1,000,000 metrics lines and 1 GB of stdout
# (bench/command/big.c). Prints sweep's peak resident memory after the run phase and at the end
# (from the folder's timing.toml), the times of each phase, and /usr/bin/time's peak as a check.
# Build first (cargo build --release); needs gcc.
source "$(dirname "$0")/common.sh"
program_config big 1000000
machine
/usr/bin/time -f "time: %e s wall, peak %M KB" "$sweep" run "$work/c.toml" --out "$work/out" --quiet
grep -E "seconds|peak_memory" "$work/out/timing.toml"
echo "epochs.parquet: $(stat -c %s "$work/out/epochs.parquet") bytes"
