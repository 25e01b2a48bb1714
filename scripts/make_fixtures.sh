#!/usr/bin/env bash
# Regenerates the committed reference results under tests/fixtures/ from their configs, with the
# release binary (default target/release/sweep or $CARGO_TARGET_DIR/release/sweep). Run it in the
# commit that deliberately changes the numbers, and say why in that commit's message.
set -euo pipefail
cd "$(dirname "$0")/.."
sweep="${1:-${CARGO_TARGET_DIR:-target}/release/sweep}"
for config in tests/fixtures/*.toml; do
  out="tests/fixtures/$(basename "$config" .toml)"
  "$sweep" run "$config" --out "$out" --fresh --quiet
  # Tables and manifest only: the parts and the wall-clock figures are not results.
  rm -rf "$out/parts" "$out/timing.toml"
  echo "wrote $out ($(du -sk "$out" | cut -f1) KB)"
done
