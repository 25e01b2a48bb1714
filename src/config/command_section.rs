//! The `[command]` section: a run is the user's own training command. Here its keys are checked
//! and resolved into a [`CommandSpec`]: the argv template (parsed once, rendered per run by
//! [`CommandSpec::render`]), the judged metric and its threshold, and the execution settings
//! (timeout, grace, environment, working directory, input files), which stay out of run ids
//! and the config hash. Spawning and reading metrics is the `command` engine's work.

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::{Table, Value};

use super::argv_template::ArgvTemplate;
use super::command_values::{parse_bound, parse_duration, parse_env, parse_gpus, string_list};
use super::locate::{type_name, Locator};
use super::reproducibility::Reproducibility;
use super::settings::{TrainSettings, TRAIN_KEYS};
use crate::error::Result;

/// Keys of `[command]`.
pub(crate) const COMMAND_KEYS: &[&str] = &[
    "argv",
    "metric",
    "converged",
    "timeout",
    "grace",
    "gpus",
    "fail_fast",
    "inputs",
    "workdir",
    "env",
    "volatile",
    "determinism_check",
    "provenance",
];

/// The run's own names, as `{sweep.NAME}` placeholders and `SWEEP_NAME` variables.
pub const RUN_NAMES: &[&str] = &[
    "run_id", "run_dir", "params", "metrics", "data", "seed", "attempt",
];

/// The default grace between TERM and KILL.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// The threshold that decides `converged` when no OLS reference judges the metric.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Bound {
    AtMost(f64),
    AtLeast(f64),
}

impl Bound {
    pub fn holds(&self, value: f64) -> bool {
        match *self {
            Bound::AtMost(x) => value <= x,
            Bound::AtLeast(x) => value >= x,
        }
    }

    /// The bound as the config writes it: `{ at_most = 0.5 }`.
    pub fn text(&self) -> String {
        match self {
            Bound::AtMost(x) => format!("{{ at_most = {} }}", Value::Float(*x)),
            Bound::AtLeast(x) => format!("{{ at_least = {} }}", Value::Float(*x)),
        }
    }
}

/// The validated `[command]` section.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandSpec {
    /// The argv as written.
    pub argv_template: Vec<String>,
    template: ArgvTemplate,
    /// The metrics key that decides the outcome (default `train_mse`).
    pub metric: String,
    /// The threshold on `metric`; `None` when the OLS reference judges `train_mse`.
    pub converged: Option<Bound>,
    pub timeout: Option<Duration>,
    pub grace: Duration,
    /// GPU slots: indices into the inherited `CUDA_VISIBLE_DEVICES` (or device numbers when it
    /// is not set); each run holds one while it runs.
    pub gpus: Vec<u32>,
    /// Stop when the first this-many runs to finish all failed.
    pub fail_fast: Option<u32>,
    /// Files whose SHA-256 is recorded (resolved against `workdir`).
    pub inputs: Vec<PathBuf>,
    /// The runs' working directory (resolved against the config's folder).
    pub workdir: PathBuf,
    pub env: Vec<(String, String)>,
    /// `volatile`, `determinism_check` and `provenance`.
    pub reproducibility: Reproducibility,
}

/// What a placeholder may name: `{key}` of a train key, `data_seed`, or a run name.
fn accepted_placeholders() -> Vec<String> {
    TRAIN_KEYS
        .iter()
        .map(|k| k.to_string())
        .chain(["data_seed".to_string()])
        .chain(RUN_NAMES.iter().map(|n| format!("sweep.{n}")))
        .collect()
}

impl CommandSpec {
    /// Checks the `[command]` table. `judged_by_reference`: the sweep has a data set (handed to
    /// the runs as `SWEEP_DATA`) whose OLS reference can judge `train_mse`.
    pub(crate) fn parse(
        table: &Table,
        loc: &Locator,
        config_dir: &Path,
        judged_by_reference: bool,
        params: &super::Params,
    ) -> Result<CommandSpec> {
        loc.check_keys(table, "command.", COMMAND_KEYS)?;
        let (argv_template, template) = parse_argv(table, loc, judged_by_reference, params)?;
        let (metric, converged) = parse_judging(table, loc, judged_by_reference)?;
        let timeout = match table.get("timeout") {
            None => None,
            Some(v) => Some(parse_duration(v).map_err(|m| loc.error("command.timeout", m))?),
        };
        let grace = match table.get("grace") {
            None => DEFAULT_GRACE,
            Some(v) => parse_duration(v).map_err(|m| loc.error("command.grace", m))?,
        };
        let (workdir, inputs) = parse_folders(table, loc, config_dir)?;
        let env = parse_env(table, loc)?;
        let gpus = match table.get("gpus") {
            None => Vec::new(),
            Some(v) => parse_gpus(v).map_err(|m| loc.error("command.gpus", m))?,
        };
        if !gpus.is_empty() && env.iter().any(|(k, _)| k == "CUDA_VISIBLE_DEVICES") {
            return Err(loc.error(
                "command.env.CUDA_VISIBLE_DEVICES",
                "is set by the gpus slots: leave it out of env, or leave gpus out",
            ));
        }
        let fail_fast = match table.get("fail_fast") {
            None => None,
            Some(Value::Integer(k)) if *k >= 1 => Some(*k as u32),
            Some(v) => {
                return Err(loc.error(
                    "command.fail_fast",
                    format!("{v} is not accepted: an integer >= 1, the number of first runs to finish that must all fail"),
                ))
            }
        };
        Ok(CommandSpec {
            argv_template,
            template,
            metric,
            converged,
            timeout,
            grace,
            gpus,
            fail_fast,
            inputs,
            workdir,
            env,
            reproducibility: Reproducibility::parse(table, loc)?,
        })
    }

    /// What enters run ids beside the settings: the engine, the argv template, the metric and
    /// its threshold.
    pub fn identity(&self) -> String {
        format!(
            "engine=command\nargv={}\nmetric={}\nconverged={}",
            serde_json::to_string(&self.argv_template).expect("strings serialize"),
            self.metric,
            self.converged.map_or("reference".to_string(), |b| b.text())
        )
    }

    /// The section as the resolved config (and so the config hash) holds it: the keys that
    /// decide results; the execution settings are recorded in the manifest instead.
    pub fn resolved_table(&self) -> Table {
        let mut t = Table::new();
        t.insert(
            "argv".into(),
            Value::Array(
                self.argv_template
                    .iter()
                    .cloned()
                    .map(Value::String)
                    .collect(),
            ),
        );
        t.insert("metric".into(), Value::String(self.metric.clone()));
        if let Some(bound) = self.converged {
            let (key, x) = match bound {
                Bound::AtMost(x) => ("at_most", x),
                Bound::AtLeast(x) => ("at_least", x),
            };
            t.insert(
                "converged".into(),
                Value::Table(Table::from_iter([(key.to_string(), Value::Float(x))])),
            );
        }
        t
    }

    /// The execution settings as TOML (paths absolute), for the manifest and the tables'
    /// metadata (`sweep.command_execution`).
    pub fn execution_text(&self) -> String {
        let mut t = Table::new();
        if let Some(timeout) = self.timeout {
            t.insert(
                "timeout".into(),
                Value::String(format!("{}s", timeout.as_secs())),
            );
        }
        t.insert(
            "grace".into(),
            Value::String(format!("{}s", self.grace.as_secs())),
        );
        if !self.gpus.is_empty() {
            let gpus = self.gpus.iter().map(|g| Value::Integer(i64::from(*g)));
            t.insert("gpus".into(), Value::Array(gpus.collect()));
        }
        if let Some(k) = self.fail_fast {
            t.insert("fail_fast".into(), Value::Integer(i64::from(k)));
        }
        // Absolute, so that `sweep reproduce` finds the script from anywhere.
        let absolute = |p: &Path| {
            let p = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
            Value::String(p.display().to_string())
        };
        t.insert("workdir".into(), absolute(&self.workdir));
        let inputs = self.inputs.iter().map(|p| absolute(p));
        t.insert("inputs".into(), Value::Array(inputs.collect()));
        let env = self
            .env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())));
        t.insert("env".into(), Value::Table(env.collect()));
        self.reproducibility.insert_into(&mut t);
        toml::to_string(&t).expect("a table serializes")
    }

    /// The program, when it is written without placeholders.
    pub fn program(&self) -> Option<&str> {
        self.template.program()
    }

    /// The argv of one run: see [`ArgvTemplate::render`].
    pub fn render(&self, value: impl Fn(&str) -> Option<String>) -> Vec<String> {
        self.template.render(value)
    }
}

pub(super) fn valid_metric(m: &str) -> bool {
    let mut chars = m.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `argv`: the template, parsed against the accepted placeholders; `{key?...}` elements name
/// true/false keys; `{sweep.data}` needs a data set.
fn parse_argv(
    table: &Table,
    loc: &Locator,
    has_data: bool,
    params: &super::Params,
) -> Result<(Vec<String>, ArgvTemplate)> {
    let argv_template = string_list(table, "argv", loc)?.ok_or_else(|| {
        loc.error(
            "command.argv",
            "is required: the command to run, as a list of strings",
        )
    })?;
    if argv_template.is_empty() {
        return Err(loc.error("command.argv", "empty list: name the program to run"));
    }
    if !has_data && argv_template.iter().any(|e| e.contains("{sweep.data}")) {
        return Err(loc.error(
            "command.argv",
            "{sweep.data} is not accepted with [data] source = \"none\": there is no data file to hand over",
        ));
    }
    let mut accepted = accepted_placeholders();
    accepted.extend(params.keys().cloned());
    let template =
        ArgvTemplate::parse(&argv_template, &accepted).map_err(|m| loc.error("command.argv", m))?;
    for key in template.flag_keys() {
        let default = params
            .get(key)
            .cloned()
            .or_else(|| TrainSettings::default().value_of(key));
        if !default.is_some_and(|v| v.is_bool()) {
            return Err(loc.error(
                "command.argv",
                format!("{{{key}?...}} needs a true/false key, and `{key}` is not one"),
            ));
        }
    }
    Ok((argv_template, template))
}

/// `metric` and `converged`: the bound is required unless the reference judges `train_mse`.
fn parse_judging(
    table: &Table,
    loc: &Locator,
    judged_by_reference: bool,
) -> Result<(String, Option<Bound>)> {
    let metric = match table.get("metric") {
        None => "train_mse".to_string(),
        Some(Value::String(m)) if valid_metric(m) => m.clone(),
        Some(v) => {
            return Err(loc.error(
                "command.metric",
                format!("{v} is not accepted: a metrics key of lower-case letters, digits and '_' (default \"train_mse\")"),
            ))
        }
    };
    let converged = match table.get("converged") {
        None => None,
        Some(v) => Some(parse_bound(v).map_err(|m| loc.error("command.converged", m))?),
    };
    if converged.is_none() && !(judged_by_reference && metric == "train_mse") {
        return Err(loc.error(
            "command.converged",
            format!(
                "is required here: `{metric}` has no OLS reference to be judged against (only train_mse on a data \
                 set has one); give converged = {{ at_most = X }} or {{ at_least = X }}"
            ),
        ));
    }
    Ok((metric, converged))
}

/// `workdir` (relative to the config's folder, must exist) and `inputs` (relative to it, must
/// be files).
fn parse_folders(
    table: &Table,
    loc: &Locator,
    config_dir: &Path,
) -> Result<(PathBuf, Vec<PathBuf>)> {
    let config_dir = if config_dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        config_dir
    };
    let workdir = match table.get("workdir") {
        None => config_dir.to_path_buf(),
        Some(Value::String(w)) => config_dir.join(w),
        Some(v) => {
            return Err(loc.error(
                "command.workdir",
                format!("expected a folder path, found {}", type_name(v)),
            ))
        }
    };
    if !workdir.is_dir() {
        return Err(loc.error(
            "command.workdir",
            format!(
                "{} is not a folder (workdir is relative to the config's folder)",
                workdir.display()
            ),
        ));
    }
    let inputs: Vec<PathBuf> = string_list(table, "inputs", loc)?
        .unwrap_or_default()
        .iter()
        .map(|p| workdir.join(p))
        .collect();
    if let Some(missing) = inputs.iter().find(|p| !p.is_file()) {
        return Err(loc.error(
            "command.inputs",
            format!(
                "{} is not a file (inputs are relative to workdir)",
                missing.display()
            ),
        ));
    }
    Ok((workdir, inputs))
}

#[cfg(test)]
#[path = "command_values_tests.rs"]
mod tests;
