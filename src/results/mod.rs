//! Results: one row struct per table (`rows`), each table's schema to and from a DataFrame by
//! column name (`schema`), Parquet and atomic file I/O with metadata (`parquet`), and the two
//! findings computed from the rows: the ablation verdict (`verdict`) and the report's scenarios
//! (`scenarios`).

mod effects;
mod judging;
mod parquet;
mod paths;
mod rows;
mod scenarios;
mod schema;
mod stats;
mod verdict;
mod verdict_table;

pub use effects::{
    designs, effects, effects_frame, effects_of, factorial_effects, judged_designs, reading,
    response, responses, Design, EffectRow, BOOTSTRAP_SAMPLES, BOUND_RESPONSES, EXCESS_FLOOR,
    RESPONSES,
};
pub use judging::{final_value, Judging};
pub use parquet::{
    read_metadata_value, read_parquet, write_atomic, write_csv, write_new, write_parquet,
    write_parquet_batches_new, write_parquet_new, write_text, ParquetSink,
};
pub use paths::{paths, paths_frame, paths_of, PathRow};
pub use rows::{cell_settings, median, summarize, RunRow, SummaryRow};
pub use scenarios::{
    evaluate, evaluate_all, same_sign_and_magnitude, scenarios_frame, ScenarioRow,
};
pub use schema::{
    epoch_rows_frame, epochs_frame, epochs_from_frame, frame, reference_frame, run_statuses,
    runs_frame, runs_from_frame, settings_columns, summary_frame,
};
pub use stats::{clopper_pearson, fisher_exact, mcnemar_exact};
pub use verdict::{label, labels_along_tolerance, verdict, CellFigures, Label, VerdictRow};
pub use verdict_table::{printed_verdict, verdict_frame, CERTAINTY_COLUMNS};
