#!/usr/bin/env python3
"""Opens a sweep's tables with pyarrow and with DuckDB and checks the documented columns and types.

Usage: python3 scripts/check_tables.py RESULTS_DIR
Exits non-zero, naming the table and column, on any mismatch.
"""
import sys
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

STR, I64, F64, BOOL = "str", "i64", "f64", "bool"
SETTINGS = {
    "epochs": I64, "batch_size": I64, "learning_rate": F64, "whiten": STR, "whiten_eps": F64,
    "normalize_target": BOOL, "clip": BOOL, "clip_norm": F64, "init": STR, "init_scale": F64,
    "init_zero_fraction": F64, "weight_decay": F64, "optimizer": STR, "momentum": F64, "seed": I64,
    "converge_tol": F64, "dtype": STR, "weight_decay_on": STR,
}
TABLES = {
    "runs": {"run_id": STR, "run_index": I64, "scenario": STR, **SETTINGS, "data_seed": I64, "status": STR, "message": STR,
             "epochs_run": I64, "epochs_to_converge": I64, "initial_train_mse": F64, "final_train_mse": F64,
             "final_train_r2": F64, "best_train_r2": F64, "excess_mse": F64, "weight_norm": F64,
             "distance_to_ols": F64, "ols_mse": F64, "ols_r2": F64, "slow_share": F64,
             "slowest_signal_epochs": F64},
    "epochs": {"run_id": STR, "epoch": I64, "weight_norm": F64, "prediction": F64, "loss": F64,
               "gradient_norm": F64, "update_ratio": F64, "clipped_fraction": F64, "train_mse": F64,
               "train_r2": F64},
    "summary": {"scenario": STR, "data_seed": I64, **{k: v for k, v in SETTINGS.items() if k != "seed"}, "n_runs": I64, "converged_fraction": F64,
                "diverged_fraction": F64, "r2_median": F64, "r2_mean": F64, "r2_std": F64, "r2_min": F64,
                "r2_max": F64, "epochs_to_converge_median": F64, "excess_mse_median": F64,
                "slow_share_median": F64, "slowest_signal_epochs_median": F64},
    "reference": {"data_seed": I64, "feature_index": I64, "feature": STR, "coefficient": F64, "eigenvalue": F64,
                  "intercept": F64, "mse": F64, "r2": F64, "rank": I64, "condition_number": F64,
                  "weight_norm": F64, "residual_sd": F64},
}
# verdict.parquet (with [ablation]): the context keys, then these columns.
VERDICT = {"data_seed": I64, "pooled": BOOL, "factor": STR, "label": STR, "all_on_converged_fraction": F64,
           "one_off_converged_fraction": F64, "all_on_r2_median": F64, "one_off_r2_median": F64,
           "all_on_epochs_median": F64, "one_off_epochs_median": F64, "all_on_sufficient": BOOL,
           "all_on_converged": I64, "all_on_runs": I64, "one_off_converged": I64, "one_off_runs": I64,
           "fisher_p": F64, "mcnemar_p": F64, "all_on_ci_low": F64, "all_on_ci_high": F64, "one_off_ci_low": F64,
           "one_off_ci_high": F64, "all_on_excess_mse_median": F64, "all_on_excess_mse_min": F64,
           "all_on_excess_mse_max": F64, "one_off_excess_mse_median": F64, "one_off_excess_mse_min": F64,
           "one_off_excess_mse_max": F64, "tol_low": F64, "tol_high": F64, "fragile": BOOL,
           "realizations_agree": BOOL}
# effects.parquet and paths.parquet (with [ablation]): the context keys, then these columns.
EFFECTS = {"pooled": BOOL, "data_seed": I64, "complete": BOOL, "response": STR, "term": STR, "effect": F64,
           "variance_share": F64, "ci_low": F64, "ci_high": F64}
PATHS = {"data_seed": I64, "pooled": BOOL, "response": STR, "direction": STR, "step": I64, "factor": STR,
         "value": F64}
# Plain or large strings (never string_view, which pyarrow < 16 cannot read) and signed 64-bit integers.
ARROW = {STR: (pa.string(), pa.large_string()), I64: (pa.int64(),), F64: (pa.float64(),), BOOL: (pa.bool_(),)}
DUCK = {STR: ("VARCHAR",), I64: ("BIGINT",), F64: ("DOUBLE",), BOOL: ("BOOLEAN",)}


def main(folder: Path) -> int:
    failures = []
    heights = {}
    for table, columns in TABLES.items():
        path = folder / f"{table}.parquet"
        arrow = pq.read_table(path)
        heights[table] = arrow.num_rows
        if list(arrow.schema.names) != list(columns):
            failures.append(f"{table}: columns {arrow.schema.names} != documented {list(columns)}")
        for name, kind in columns.items():
            if name in arrow.schema.names and arrow.schema.field(name).type not in ARROW[kind]:
                failures.append(f"{table}.{name}: pyarrow type {arrow.schema.field(name).type}, expected {kind}")
        meta = pq.read_metadata(path).metadata or {}
        if b"sweep.config" not in meta or b"sweep.version" not in meta:
            failures.append(f"{table}: key-value metadata lacks sweep.config / sweep.version")
        described = duckdb.sql(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()
        for name, duck_type, *_ in described:
            if name in columns and duck_type not in DUCK[columns[name]]:
                failures.append(f"{table}.{name}: DuckDB type {duck_type}, expected {columns[name]}")
        count = duckdb.sql(f"SELECT count(*) FROM read_parquet('{path}')").fetchall()[0][0]
        if count != arrow.num_rows:
            failures.append(f"{table}: DuckDB sees {count} rows, pyarrow {arrow.num_rows}")
    runs = folder / "runs.parquet"
    epochs_expected = duckdb.sql(f"SELECT sum(epochs_run) FROM read_parquet('{runs}')").fetchall()[0][0]
    if epochs_expected != heights["epochs"]:
        failures.append(f"epochs: {heights['epochs']} rows, runs say {epochs_expected}")
    summary = folder / "summary.parquet"
    runs_in_cells = duckdb.sql(f"SELECT sum(n_runs) FROM read_parquet('{summary}')").fetchall()[0][0]
    if runs_in_cells != heights["runs"]:
        failures.append(f"summary: cells hold {runs_in_cells} runs, runs.parquet has {heights['runs']}")
    for table, columns in (("verdict", VERDICT), ("effects", EFFECTS), ("paths", PATHS)):
        path = folder / f"{table}.parquet"
        if not path.exists():
            continue
        arrow = pq.read_table(path)
        names = list(arrow.schema.names)
        if names[-len(columns):] != list(columns):
            failures.append(f"{table}: columns {names} do not end with the documented {list(columns)}")
        for name, kind in columns.items():
            if name in names and arrow.schema.field(name).type not in ARROW[kind]:
                failures.append(f"{table}.{name}: pyarrow type {arrow.schema.field(name).type}, expected {kind}")
        heights[table] = arrow.num_rows
    for f in failures:
        print("FAIL", f)
    print(f"check_tables: {len(heights)} tables, {sum(heights.values())} rows, {len(failures)} problems")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
