#!/usr/bin/env bash
# Command-run throughput: 1,000 runs of a small C program that appends one metrics line, as a
# whole `sweep run` (tables included) with --jobs 2, against `xargs -P 2` running the same program
# with a metrics file per run. Alternated REPEATS times (default 5), on tmpfs (/dev/shm) and on the
# disk of $DISK (default: this folder's file system); each side's output stays until the end, so
# that no deletion between rounds slows the next one's file creation. Prints every time and the
# median ratio of throughputs (xargs time / sweep time: above 1 means sweep is faster).
# Build first (cargo build --release); needs gcc.
source "$(dirname "$0")/common.sh"
repeats="${REPEATS:-5}"
program_config one 1 "seed = [$(seq -s, 0 999)]"
seconds() { local s e; s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo "scale=3; ($e - $s) / 1000000000" | bc; }
machine
for place in /dev/shm "${DISK:-$PWD}"; do
  dir="$(mktemp -d -p "$place")"
  ratios=()
  for i in $(seq "$repeats"); do
    ts=$(seconds "$sweep" run "$work/c.toml" --out "$dir/sweep-$i" --quiet --jobs 2)
    mkdir "$dir/xargs-$i"
    tx=$(seconds sh -c "seq 0 999 | xargs -P 2 -I{} '$work/one' '$dir/xargs-$i/{}.jsonl'")
    ratios+=("$(echo "scale=3; $tx / $ts" | bc)")
    echo "$place round $i: sweep $ts s, xargs $tx s, throughput ratio ${ratios[-1]}"
  done
  median=$(printf '%s\n' "${ratios[@]}" | sort -n | sed -n "$(( (repeats + 1) / 2 ))p")
  echo "$place: median throughput of sweep / xargs over $repeats rounds: $median"
  rm -rf "$dir"
done
