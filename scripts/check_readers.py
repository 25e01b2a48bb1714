#!/usr/bin/env python3
"""Opens every table of sweep results folders with several Parquet readers and checks they all see
the same values.

Usage:
  python scripts/check_readers.py dump OUT.json DIR...     (any pyarrow, e.g. 14 from requirements/compat.txt)
  python scripts/check_readers.py compare OLD.json DIR...  (requirements/ci.txt: pyarrow, pandas, polars, DuckDB)

`dump` reads each DIR/*.parquet with pyarrow and writes its values. `compare` reads the same files with
current pyarrow, pandas, polars and DuckDB, and checks that each reader's values, and the values in OLD.json
(written by an older pyarrow), are identical to current pyarrow's: the same column names, row count, and
bit-identical numbers (floats compared by their hex form). pandas has one null for floats (NaN) and turns
integer columns with nulls into floats, so for pandas a null equals NaN and an integer equals the same float.
Exits non-zero, naming the file, reader and column, on any difference or on a file a reader cannot open.
"""
import json
import math
import sys
from pathlib import Path


def canonical(value):
    """A JSON-able form of one cell that keeps every bit of a float."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        return {"f": value.hex()}
    if isinstance(value, int):
        return value
    if hasattr(value, "item"):  # numpy scalars
        return canonical(value.item())
    return str(value)


def columns_of(names, rows_by_column):
    return {name: [canonical(v) for v in values] for name, values in zip(names, rows_by_column)}


def read_pyarrow(path):
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    return columns_of(table.column_names, [table.column(n).to_pylist() for n in table.column_names])


def read_pandas(path):
    import pandas as pd

    df = pd.read_parquet(path)
    return columns_of(list(df.columns), [df[c].tolist() for c in df.columns])


def read_polars(path):
    import polars as pl

    df = pl.read_parquet(path)
    return columns_of(df.columns, [df[c].to_list() for c in df.columns])


def read_duckdb(path):
    import duckdb

    rel = duckdb.sql(f"SELECT * FROM read_parquet('{path}')")
    rows = rel.fetchall()
    names = [d[0] for d in rel.description]
    return columns_of(names, [[r[i] for r in rows] for i in range(len(names))])


def tables(dirs):
    for d in dirs:
        for path in sorted(Path(d).glob("*.parquet")):
            yield f"{Path(d).name}/{path.name}", path


def pandas_equal(a, b):
    """Cells equal as pandas represents them: null == NaN, int == the same float."""
    def number(v):
        if v is None:
            return math.nan
        if isinstance(v, dict):
            return float.fromhex(v["f"])
        if isinstance(v, bool):
            return v
        return float(v) if isinstance(v, int) else v

    x, y = number(a), number(b)
    if isinstance(x, float) and isinstance(y, float):
        return (math.isnan(x) and math.isnan(y)) or x == y
    return x == y


def differences(reference, other, reader):
    problems = []
    if list(reference) != list(other):
        return [f"{reader}: columns {list(other)} != {list(reference)}"]
    for name, values in reference.items():
        seen = other[name]
        if len(seen) != len(values):
            problems.append(f"{reader}: column {name} has {len(seen)} rows, expected {len(values)}")
            continue
        same = pandas_equal if reader == "pandas" else (lambda a, b: a == b)
        bad = [i for i, (a, b) in enumerate(zip(values, seen)) if not same(a, b)]
        if bad:
            i = bad[0]
            problems.append(f"{reader}: column {name} differs in {len(bad)} rows, first row {i}: {seen[i]} != {values[i]}")
    return problems


def dump(out, dirs):
    import pyarrow

    values = {}
    for name, path in tables(dirs):
        values[name] = read_pyarrow(path)
    Path(out).write_text(json.dumps({"pyarrow": pyarrow.__version__, "tables": values}))
    print(f"check_readers: pyarrow {pyarrow.__version__} opened {len(values)} tables")
    return 0


def compare(old_json, dirs):
    import duckdb
    import pandas
    import polars
    import pyarrow

    old = json.loads(Path(old_json).read_text())
    readers = {"pandas": read_pandas, "polars": read_polars, "duckdb": read_duckdb}
    problems = []
    count = 0
    for name, path in tables(dirs):
        count += 1
        reference = read_pyarrow(path)
        others = {f"pyarrow {old['pyarrow']}": old["tables"].get(name)}
        for reader, read in readers.items():
            try:
                others[reader] = read(path)
            except Exception as e:  # a reader that cannot open the file is the failure we look for
                problems.append(f"{name}: {reader} cannot read it: {e}")
        for reader, values in others.items():
            if values is None:
                problems.append(f"{name}: {reader} has no values for it")
                continue
            problems += [f"{name}: {p}" for p in differences(reference, values, reader)]
    for p in problems:
        print("FAIL", p)
    print(
        f"check_readers: {count} tables; pyarrow {pyarrow.__version__} and {old['pyarrow']}, pandas {pandas.__version__}, "
        f"polars {polars.__version__}, DuckDB {duckdb.__version__}: {len(problems)} differences"
    )
    return 1 if problems or count == 0 else 0


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[1] not in ("dump", "compare"):
        print(__doc__)
        sys.exit(2)
    mode, target, dirs = sys.argv[1], sys.argv[2], sys.argv[3:]
    sys.exit(dump(target, dirs) if mode == "dump" else compare(target, dirs))
