//! The schemas against the train keys, and round trips of the rows through their frames.

use super::*;
use crate::config::display_value;

/// The train keys, the defaults and the settings columns of the tables are written in three
/// places (the struct, `TRAIN_KEYS`, `settings_column`): they must agree key by key.
#[test]
fn settings_columns_follow_the_train_keys_and_carry_the_defaults() {
    let defaults = TrainSettings::default();
    let columns = settings_columns(&[&defaults], |_| true);
    let names: Vec<&str> = columns.iter().map(|c| c.name().as_str()).collect();
    assert_eq!(names, TRAIN_KEYS);
    for column in &columns {
        let key = column.name().as_str();
        let cell = column.get(0).unwrap();
        let expected = display_value(&defaults.value_of(key).unwrap());
        let shown = match cell {
            AnyValue::String(s) => s.to_string(),
            AnyValue::Float64(v) => toml::Value::Float(v).to_string(),
            other => other.to_string(),
        };
        assert_eq!(shown, expected, "column {key}");
    }
}

#[test]
fn runs_round_trip_through_their_frame() {
    let spec = RunSpec {
        index: 3,
        id: "abc".into(),
        settings: TrainSettings::default(),
        data_seed: Some(7),
        scenario: None,
    };
    let mut row = RunRow::saved(&spec, None, Status::Diverged);
    row.epochs_run = 12;
    row.final_train_r2 = -0.25;
    row.slow_share = Some(0.5);
    let df = runs_frame(std::slice::from_ref(&row)).unwrap();
    let specs = BTreeMap::from([("abc", &spec)]);
    let back = runs_from_frame(&df, &specs, |_| String::new()).unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].status, Status::Diverged);
    assert_eq!(back[0].epochs_run, 12);
    assert_eq!(back[0].final_train_r2, -0.25);
    assert_eq!(back[0].slow_share, Some(0.5));
    assert!(back[0].initial_train_mse.is_nan());
    for name in ["run_index", "epochs", "seed", "data_seed", "epochs_run"] {
        assert_eq!(df.column(name).unwrap().dtype(), &DataType::Int64, "{name}");
    }
}

#[test]
fn an_unknown_status_is_an_error_not_a_failed_run() {
    let spec = RunSpec {
        index: 0,
        id: "abc".into(),
        settings: TrainSettings::default(),
        data_seed: None,
        scenario: None,
    };
    let mut df = runs_frame(&[RunRow::saved(&spec, None, Status::Converged)]).unwrap();
    df.replace("status", Column::new("status".into(), ["exploded"]))
        .unwrap();
    let specs = BTreeMap::from([("abc", &spec)]);
    let err = runs_from_frame(&df, &specs, |_| String::new()).unwrap_err();
    assert!(err.to_string().contains("exploded"), "{err}");
    assert!(run_statuses(&df).is_err());
}

#[test]
fn epochs_round_trip_through_their_frame() {
    let stats = EpochStats {
        epoch: 2,
        weight_norm: 1.5,
        train_r2: 0.25,
        ..EpochStats::default()
    };
    let df = epochs_frame(&[("r", std::slice::from_ref(&stats))]).unwrap();
    let back = epochs_from_frame(&df).unwrap();
    assert_eq!(back["r"], vec![stats]);
}
