//! The settings of one run: every `[train]` key, its default, and what it accepts.
//!
//! [`TrainSettings`] is the one definition of the train keys: its field order is the canonical
//! order of run ids and table columns, serde gives the names, and [`TRAIN_KEYS`] lists them for
//! schema checks and "did you mean" (a test keeps the list, the defaults and the table columns in
//! step). This module checks values one key at a time; where they may appear (`[train]`, the grid,
//! scenarios) is decided by the modules that parse those sections.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use crate::enums::named_enum;

named_enum! {
    /// Feature whitening applied before training.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Whiten {
        None => "none",
        Zca => "zca",
        Pca => "pca",
    }
}

named_enum! {
    /// Weight initialization scheme.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Init {
        Zeros => "zeros",
        HeNormal => "he_normal",
        XavierNormal => "xavier_normal",
        Ols => "ols",
    }
}

named_enum! {
    /// Optimizer applied to the (possibly clipped) gradient.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Optimizer {
        Sgd => "sgd",
        Momentum => "momentum",
        Adam => "adam",
    }
}

named_enum! {
    /// Floating-point type of the training features, parameters, gradients and optimizer state.
    /// Every reported figure (train MSE and R², `excess_mse`, status) is computed in f64 or better.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Dtype {
        #[default]
        F64 => "f64",
        F32 => "f32",
    }
}

impl Dtype {
    fn is_f64(&self) -> bool {
        *self == Dtype::F64
    }
}

named_enum! {
    /// Which weights `weight_decay` penalizes: the training-coordinate weights `w'` (after any
    /// whitening), or the same model's weights in the data set's feature units, `u = W^T w'` (the
    /// ridge penalty on the features, in the run's target units; the same penalty whatever the
    /// whitening).
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum DecayOn {
        #[default]
        Training => "training",
        Features => "features",
    }
}

impl DecayOn {
    fn is_training(&self) -> bool {
        *self == DecayOn::Training
    }
}

/// The settings of one run: every `[train]` key. Field order is the canonical order used for
/// run ids and table columns, so it must not depend on the order of keys in a file.
///
/// A command sweep's `[params]` ride along as `params`, written after the train keys in the
/// canonical text (so they enter run ids) and left out of it when there are none. Unknown keys
/// land there too: every key is checked by the section that parses it before it reaches here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainSettings {
    pub epochs: u32,
    pub batch_size: u32,
    pub learning_rate: f64,
    pub whiten: Whiten,
    pub whiten_eps: f64,
    pub normalize_target: bool,
    pub clip: bool,
    pub clip_norm: f64,
    pub init: Init,
    pub init_scale: f64,
    pub init_zero_fraction: f64,
    pub weight_decay: f64,
    pub optimizer: Optimizer,
    pub momentum: f64,
    pub seed: u64,
    pub converge_tol: f64,
    /// Added after the first tables were published: left out of the canonical text (run ids,
    /// config hash) at its default, so that the ids of existing runs stay valid. Every key added
    /// later follows the same rule.
    #[serde(skip_serializing_if = "Dtype::is_f64")]
    pub dtype: Dtype,
    #[serde(skip_serializing_if = "DecayOn::is_training")]
    pub weight_decay_on: DecayOn,
    /// A command sweep's `[params]` values, by key (empty otherwise).
    #[serde(flatten, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, Value>,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            epochs: 500,
            batch_size: 32,
            learning_rate: 1e-3,
            whiten: Whiten::None,
            whiten_eps: 0.0,
            normalize_target: false,
            clip: false,
            clip_norm: 1.0,
            init: Init::HeNormal,
            init_scale: 1.0,
            init_zero_fraction: 0.0,
            weight_decay: 0.0,
            optimizer: Optimizer::Sgd,
            momentum: 0.9,
            seed: 0,
            converge_tol: 0.01,
            dtype: Dtype::F64,
            weight_decay_on: DecayOn::Training,
            params: BTreeMap::new(),
        }
    }
}

/// Every `[train]` key, in canonical (field) order.
pub const TRAIN_KEYS: &[&str] = &[
    "epochs",
    "batch_size",
    "learning_rate",
    "whiten",
    "whiten_eps",
    "normalize_target",
    "clip",
    "clip_norm",
    "init",
    "init_scale",
    "init_zero_fraction",
    "weight_decay",
    "optimizer",
    "momentum",
    "seed",
    "converge_tol",
    "dtype",
    "weight_decay_on",
];

/// A range check failed: the key and what is accepted.
type Rejected = (&'static str, String);

fn positive_finite(key: &'static str, v: f64) -> Result<(), Rejected> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err((
            key,
            format!("{v} is not accepted: must be a finite number > 0"),
        ))
    }
}

fn non_negative(key: &'static str, v: f64) -> Result<(), Rejected> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err((
            key,
            format!("{v} is not accepted: must be a finite number >= 0"),
        ))
    }
}

fn unit_interval(key: &'static str, v: f64) -> Result<(), Rejected> {
    if (0.0..1.0).contains(&v) {
        Ok(())
    } else {
        Err((key, format!("{v} is not accepted: must be in [0, 1)")))
    }
}

fn at_least_one(key: &'static str, v: u32) -> Result<(), Rejected> {
    if v >= 1 {
        Ok(())
    } else {
        Err((key, format!("{v} is not accepted: must be an integer >= 1")))
    }
}

impl TrainSettings {
    /// Range checks. Returns the offending key and what is accepted.
    pub fn validate(&self) -> Result<(), Rejected> {
        at_least_one("epochs", self.epochs)?;
        at_least_one("batch_size", self.batch_size)?;
        positive_finite("learning_rate", self.learning_rate)?;
        non_negative("whiten_eps", self.whiten_eps)?;
        positive_finite("clip_norm", self.clip_norm)?;
        if !self.init_scale.is_finite() {
            return Err((
                "init_scale",
                format!("{} is not accepted: must be finite", self.init_scale),
            ));
        }
        unit_interval("init_zero_fraction", self.init_zero_fraction)?;
        non_negative("weight_decay", self.weight_decay)?;
        unit_interval("momentum", self.momentum)?;
        non_negative("converge_tol", self.converge_tol)?;
        Ok(())
    }

    /// The canonical text of these settings (TOML, keys in declaration order).
    pub fn canonical(&self) -> String {
        toml::to_string(self).expect("settings serialize")
    }

    /// The settings as a TOML table.
    pub fn to_table(&self) -> Table {
        Table::try_from(self).expect("settings serialize")
    }

    /// The settings as a TOML table with every key, those left out of the canonical text at
    /// their default included.
    pub fn full_table(&self) -> Table {
        let mut table = self.to_table();
        table
            .entry("dtype")
            .or_insert_with(|| Value::String(self.dtype.as_str().into()));
        table
            .entry("weight_decay_on")
            .or_insert_with(|| Value::String(self.weight_decay_on.as_str().into()));
        table
    }

    /// The value of one key as a TOML value (used for grid listing and excludes).
    pub fn value_of(&self, key: &str) -> Option<Value> {
        self.full_table().get(key).cloned()
    }

    /// These settings with `key` set to a canonical value (already checked).
    pub fn with_value(&self, key: &str, value: &Value) -> TrainSettings {
        let mut table = self.to_table();
        table.insert(key.to_string(), value.clone());
        Value::Table(table).try_into().expect("canonical value")
    }

    /// These settings with every key of `table` set (keys and values already checked).
    pub fn with_table(&self, overrides: &Table) -> TrainSettings {
        let mut table = self.to_table();
        table.extend(overrides.clone());
        Value::Table(table).try_into().expect("checked settings")
    }
}

/// Checks one `[train]` (or grid) value: type and range. Returns the canonical value.
pub fn canonical_train_value(key: &str, value: &Value) -> Result<Value, String> {
    let mut table = Table::new();
    table.insert(key.to_string(), value.clone());
    let settings: TrainSettings = table.try_into().map_err(|e: toml::de::Error| {
        let msg = e
            .message()
            .trim()
            .replace("expected u32", "expected a whole number")
            .replace("expected u64", "expected a whole number")
            .replace("expected f64", "expected a number");
        format!("{value} is not accepted ({msg})")
    })?;
    settings.validate().map_err(|(_, msg)| msg)?;
    Ok(settings.value_of(key).expect("known key"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn train_keys_follow_the_fields_of_the_defaults() {
        let keys = |s: &TrainSettings| -> Vec<String> {
            s.canonical()
                .lines()
                .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.to_string()))
                .collect()
        };
        let all = TrainSettings {
            dtype: Dtype::F32,
            weight_decay_on: DecayOn::Features,
            ..TrainSettings::default()
        };
        assert_eq!(keys(&all), TRAIN_KEYS);
        // Keys added later stay out of the canonical text (run ids, config hash) at their default.
        let defaults = TrainSettings::default();
        assert_eq!(keys(&defaults), TRAIN_KEYS[..TRAIN_KEYS.len() - 2]);
        let listed: Vec<String> = defaults.full_table().keys().cloned().collect();
        assert_eq!(listed.len(), TRAIN_KEYS.len());
        assert_eq!(
            defaults.value_of("dtype"),
            Some(Value::String("f64".into()))
        );
    }

    #[test]
    fn serde_names_agree_with_the_declared_names() {
        fn check<T: Serialize + Copy + std::fmt::Display>(all: &[T]) {
            for v in all {
                assert_eq!(
                    Value::try_from(*v).unwrap().as_str(),
                    Some(v.to_string().as_str())
                );
            }
        }
        check(Whiten::ALL);
        check(Init::ALL);
        check(Optimizer::ALL);
        check(Dtype::ALL);
        check(DecayOn::ALL);
    }

    #[test]
    fn names_parse_back_and_unknown_names_list_the_accepted() {
        for w in Whiten::ALL {
            assert_eq!(w.as_str().parse::<Whiten>().unwrap(), *w);
        }
        let err = "zsa".parse::<Whiten>().unwrap_err();
        assert!(
            err.contains("`zsa`") && err.contains("none, zca, pca"),
            "{err}"
        );
    }

    #[test]
    fn each_range_check_names_its_key() {
        let cases: Vec<(TrainSettings, &str)> = vec![
            (
                TrainSettings {
                    epochs: 0,
                    ..Default::default()
                },
                "epochs",
            ),
            (
                TrainSettings {
                    learning_rate: f64::NAN,
                    ..Default::default()
                },
                "learning_rate",
            ),
            (
                TrainSettings {
                    momentum: 1.0,
                    ..Default::default()
                },
                "momentum",
            ),
            (
                TrainSettings {
                    init_zero_fraction: -0.1,
                    ..Default::default()
                },
                "init_zero_fraction",
            ),
            (
                TrainSettings {
                    converge_tol: -1.0,
                    ..Default::default()
                },
                "converge_tol",
            ),
        ];
        for (settings, key) in cases {
            assert_eq!(settings.validate().unwrap_err().0, key);
        }
        assert!(TrainSettings::default().validate().is_ok());
    }
}
