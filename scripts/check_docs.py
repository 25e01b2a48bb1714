#!/usr/bin/env python3
"""Runs the code blocks of docs/guide/tables.md against the committed fixture results.

Usage: python scripts/check_docs.py [DOC.md]   (default: docs/guide/tables.md; run from anywhere)

Makes a temporary folder holding `results/ablation/`, a copy of `tests/fixtures/ablation/`, and
with that folder as the working directory:
- runs every ```python block of DOC in order, in one Python process (this interpreter, with
  MPLBACKEND=Agg), as if they were one script; every file a block saves with `savefig("NAME")`
  must exist afterwards and be non-empty;
- runs every ```sql block through DuckDB (one connection, in order) and fetches its rows.
Exits 1 on the first failure, naming the block (its number and line in DOC) and the error.
Needs the packages of requirements/ci.txt (pandas, polars, pyarrow, duckdb, matplotlib).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "ablation"

# Runs in the child process: every block in one namespace, in order; names the block that fails.
RUNNER = r"""
import json, sys, traceback
blocks = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for number, line, code in blocks:
    try:
        exec(compile(code, f"<python block {number}, line {line}>", "exec"), namespace)
    except BaseException:
        traceback.print_exc()
        print(f"FAILED: python block {number} (line {line} of the doc)", file=sys.stderr)
        sys.exit(1)
"""


def blocks(text, language):
    """(number, first line of the code, code) of every ```language block, in order."""
    found = []
    pattern = re.compile(r"^```" + language + r"[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
    for number, match in enumerate(pattern.finditer(text), start=1):
        line = text.count("\n", 0, match.start(1)) + 1
        found.append((number, line, match.group(1)))
    return found


def run_python(python_blocks, cwd):
    import json

    spec = Path(cwd) / ".blocks.json"
    spec.write_text(json.dumps(python_blocks))
    env = dict(os.environ, MPLBACKEND="Agg")
    done = subprocess.run([sys.executable, "-c", RUNNER, str(spec)], cwd=cwd, env=env)
    spec.unlink()
    if done.returncode != 0:
        return False
    ok = True
    for number, line, code in python_blocks:
        for name in re.findall(r"savefig\(\s*[\"']([^\"']+)[\"']", code):
            path = Path(cwd) / name
            if not path.is_file() or path.stat().st_size == 0:
                print(f"FAILED: python block {number} (line {line}): {name} was not saved "
                      f"or is empty", file=sys.stderr)
                ok = False
            else:
                print(f"python block {number}: {name} saved ({path.stat().st_size} bytes)")
    return ok


def run_sql(sql_blocks, cwd):
    import duckdb

    here = os.getcwd()
    os.chdir(cwd)
    try:
        con = duckdb.connect()
        for number, line, code in sql_blocks:
            try:
                rows = con.execute(code).fetchall()
            except Exception as e:  # duckdb raises several error types
                print(f"FAILED: sql block {number} (line {line} of the doc): {e}", file=sys.stderr)
                return False
            print(f"sql block {number}: {len(rows)} row(s)")
        return True
    finally:
        os.chdir(here)


def main(doc):
    text = doc.read_text()
    python_blocks = blocks(text, "python")
    sql_blocks = blocks(text, "sql")
    if not python_blocks and not sql_blocks:
        print(f"FAILED: {doc} has no ```python or ```sql block", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="check-docs-") as tmp:
        shutil.copytree(FIXTURE, Path(tmp) / "results" / "ablation")
        print(f"{doc}: {len(python_blocks)} python and {len(sql_blocks)} sql block(s), "
              f"run in {tmp} with results/ablation = a copy of {FIXTURE}")
        ok = run_python(python_blocks, tmp) if python_blocks else True
        ok = ok and (run_sql(sql_blocks, tmp) if sql_blocks else True)
    print("ok: every block ran" if ok else "check_docs: a block failed (above)")
    return 0 if ok else 1


if __name__ == "__main__":
    arg = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "guide" / "tables.md"
    sys.exit(main(arg.resolve()))
