#!/usr/bin/env python3
"""Writes tests/data/typed_columns.parquet: a small Parquet file whose numeric columns
(a, b, y: y = a + 2 b + noise) sit beside columns of the types a data file may hold but sweep
cannot train on (bool, date, categorical, decimal, text). The test
`data_files::parquet_columns_of_other_types_are_named_when_left_out` reads it. Run once, with
pyarrow (requirements/ci.txt): python3 scripts/make_data_fixtures.py
"""
import datetime
import decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

n = 40
a = [float((7 * i) % 11) for i in range(n)]
b = [float((5 * i) % 13) / 2 for i in range(n)]
y = [a[i] + 2 * b[i] + ((i * 37) % 17 - 8) / 100 for i in range(n)]
table = pa.table({
    "a": pa.array(a, pa.float64()),
    "flag": pa.array([i % 3 == 0 for i in range(n)], pa.bool_()),
    "day": pa.array([datetime.date(2026, 1, 1) + datetime.timedelta(days=i) for i in range(n)], pa.date32()),
    "b": pa.array(b, pa.float64()),
    "group": pa.array(["north" if i % 2 else "south" for i in range(n)]).dictionary_encode(),
    "price": pa.array([decimal.Decimal(f"{i}.25") for i in range(n)], pa.decimal128(10, 2)),
    "note": pa.array([f"row {i}" for i in range(n)], pa.string()),
    "y": pa.array(y, pa.float64()),
})
out = Path(__file__).resolve().parent.parent / "tests" / "data" / "typed_columns.parquet"
pq.write_table(table, out, compression="zstd")
print(out)
