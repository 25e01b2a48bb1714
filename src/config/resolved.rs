//! The resolved configuration as TOML: defaults filled in, overrides applied, grid values
//! canonical. It is stored in every table's metadata and hashed into the config hash, so two
//! configs that mean the same sweep have the same text.

use toml::{Table, Value};

use super::ablation::{sections_text, Ablation, Scenario};
use super::data_section::{DataConfig, GENERATOR_KEYS};
use super::grid::Grid;
use super::settings::TrainSettings;

/// The top-level scalars of a config.
#[derive(Clone, Debug, PartialEq)]
pub struct TopLevel {
    pub name: String,
    pub seed: u64,
    pub max_runs: u64,
}

/// Everything the resolved text is made of.
pub(crate) struct Resolved<'a> {
    pub top: &'a TopLevel,
    pub data: &'a DataConfig,
    pub base: &'a TrainSettings,
    pub grid: &'a Grid,
    pub ablation: Option<&'a Ablation>,
    pub scenarios: &'a [Scenario],
    pub command: Option<&'a super::CommandSpec>,
}

impl Resolved<'_> {
    /// The resolved TOML text.
    pub fn text(&self) -> String {
        let mut root = Table::new();
        root.insert("name".into(), Value::String(self.top.name.clone()));
        root.insert("seed".into(), Value::Integer(self.top.seed as i64));
        root.insert("max_runs".into(), Value::Integer(self.top.max_runs as i64));
        let mut data = Table::try_from(self.data).expect("data serializes");
        if self.data.source.as_deref() == Some("none") {
            // No data set: the section says so and nothing else (other keys are refused).
            data.retain(|key, _| key == "source");
        } else if self.data.path.is_some() {
            // A data file's section lists the file's keys only (generator keys are refused
            // beside a path, so the text must not hold them to load again).
            for key in GENERATOR_KEYS {
                data.remove(*key);
            }
        }
        root.insert("data".into(), Value::Table(data));
        // The params ride in the settings; the text keeps them in their own section.
        let mut train = self.base.to_table();
        train.retain(|key, _| !self.base.params.contains_key(key));
        root.insert("train".into(), Value::Table(train));
        if !self.base.params.is_empty() {
            let params = self.base.params.clone().into_iter().collect();
            root.insert("params".into(), Value::Table(params));
        }
        let mut grid = Table::new();
        for axis in &self.grid.axes {
            grid.insert(axis.key.clone(), Value::Array(axis.values.clone()));
        }
        if !self.grid.excludes.is_empty() {
            let rules = self
                .grid
                .excludes
                .iter()
                .map(|r| Value::Table(r.iter().cloned().collect()))
                .collect();
            grid.insert("exclude".into(), Value::Array(rules));
        }
        root.insert("grid".into(), Value::Table(grid));
        if let Some(command) = self.command {
            root.insert("command".into(), Value::Table(command.resolved_table()));
        }
        toml::to_string(&root).expect("config serializes")
            + &sections_text(self.ablation, self.scenarios)
    }
}
