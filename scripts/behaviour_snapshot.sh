#!/usr/bin/env bash
# Records what a `sweep` binary does, so that a refactoring can be checked to change nothing:
#   scripts/behaviour_snapshot.sh SWEEP_BINARY PYTHON SNAPSHOT_DIR
# then `diff -r` two snapshots. It records `sweep list` of every config; the Parquet values and
# key-value metadata of `sweep run` on configs/quick.toml, on ablation.toml and seed.toml with
# train.epochs=3, and on a file-backed sweep (as JSON, so a change of column type alone does not
# show); stdout of `sweep run` (wall times removed), `sweep report` stdout, report.md and the SVG
# figures' hashes; `sweep status`, `sweep ols --format json` and `sweep nist`, each with its exit
# code. PYTHON needs pyarrow (requirements/ci.txt). The stderr of the bad-input corpus is
# recorded by the tests: SWEEP_BAD_INPUT_DUMP=DIR cargo test --release bad_input.
set -uo pipefail
sweep="$(realpath "$1")"; py="$2"; snap="$3"
repo="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$snap" && cd "$snap" || exit 1
rm -rf work && mkdir work && cd work || exit 1
cp -r "$repo/configs" configs

record() { # name, command...
  local name="$1"; shift
  "$@" > "../$name.out" 2> "../$name.err"
  echo "exit $?" >> "../$name.out"
}

for c in configs/*.toml; do record "list_$(basename "$c" .toml)" "$sweep" list "$c"; done
record run_quick "$sweep" run configs/quick.toml --out r/quick
record run_ablation "$sweep" run configs/ablation.toml --set train.epochs=3 --out r/ablation
record run_seed "$sweep" run configs/seed.toml --set train.epochs=3 --out r/seed
record data_csv "$sweep" data configs/quick.toml --out d.csv
printf '[data]\npath = "../d.csv"\ntarget = "y"\n[train]\nepochs = 3\n[grid]\nseed = [0, 1]\nwhiten = ["none", "zca"]\n' > configs/file.toml
record run_file "$sweep" run configs/file.toml --out r/file
for r in quick ablation seed file; do
  record "report_$r" "$sweep" report "r/$r"
  record "status_$r" "$sweep" status "r/$r"
  cp "r/$r/report.md" "../report_$r.md"
  (cd "r/$r/figures" && sha256sum *.svg) > "../figures_$r.sha256"
done
record ols_json "$sweep" ols d.csv --target y --format json
record ols_table "$sweep" ols d.csv --target y --features x000,x001 --poly x000:3
record nist "$sweep" nist "${SWEEP_NIST_DIR:-$repo/../shared/data/nist-strd}"
sed -i -E 's/wall time [0-9.]+ s/wall time - s/' ../run_*.out
"$py" - r/quick r/ablation r/seed r/file > ../tables.json <<'EOF'
import json, sys
from pathlib import Path
import pyarrow.parquet as pq

def cell(v):
    return {"f": v.hex()} if isinstance(v, float) else v

out = {}
for d in sys.argv[1:]:
    for p in sorted(Path(d).glob("*.parquet")):
        t = pq.read_table(p)
        meta = {k.decode(): v.decode() for k, v in (pq.read_metadata(p).metadata or {}).items() if k != b"ARROW:schema"}
        out[str(p)] = {"metadata": meta, "columns": {n: [cell(v) for v in t.column(n).to_pylist()] for n in t.column_names}}
json.dump(out, sys.stdout, indent=0, sort_keys=True)
EOF
echo "snapshot in $snap"
