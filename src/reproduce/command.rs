//! Reproducing a command sweep: its script runs again where the tables say it ran (or in
//! `--workdir`) once its inputs are checked to be the files it ran with, and its volatile
//! metrics are left out of the comparison.

use std::path::{Path, PathBuf};

use crate::config;
use crate::error::{Error, Result};
use crate::results::read_metadata_value;

/// The recorded config as it can run again: a command sweep's with its script where the tables
/// say it ran (or in `workdir`), once its inputs are checked to be the files it ran with.
pub(super) fn runnable_text(first: &Path, text: &str, workdir: Option<&Path>) -> Result<String> {
    let execution = read_metadata_value(first, "sweep.command_execution")?;
    let Some(execution) = execution else {
        if workdir.is_some() {
            return Err(Error::Usage(
                "--workdir is for command sweeps, and these tables record no [command] execution settings"
                    .into(),
            ));
        }
        return Ok(text.to_string());
    };
    if let Some(inputs) = read_metadata_value(first, "sweep.inputs_sha256")? {
        check_inputs(&inputs, &execution, workdir)?;
    }
    config::with_execution(text, &execution, workdir)
        .map_err(|why| Error::Results(format!("{}: {why}", first.display())))
}

/// Checks that the command's inputs are the files the tables were made with (under `workdir`,
/// when given, those that were under the recorded one).
fn check_inputs(recorded: &str, execution: &str, workdir: Option<&Path>) -> Result<()> {
    let then: std::collections::BTreeMap<String, String> = serde_json::from_str(recorded)
        .map_err(|e| Error::Results(format!("sweep.inputs_sha256 is not a JSON object: {e}")))?;
    let old_workdir = toml::from_str::<toml::Table>(execution)
        .ok()
        .and_then(|t| t.get("workdir")?.as_str().map(PathBuf::from));
    for (path, was) in &then {
        let path = Path::new(path);
        let now_path = match (workdir, &old_workdir) {
            (Some(new), Some(old)) => path
                .strip_prefix(old)
                .map_or_else(|_| path.to_path_buf(), |rel| new.join(rel)),
            _ => path.to_path_buf(),
        };
        let is = config::hex_sha256_of_file(&now_path).unwrap_or_else(|_| "unreadable".to_string());
        if &is != was {
            let hint = if workdir.is_some() {
                "the script in --workdir is not the one that ran"
            } else {
                "give --workdir DIR where the script as it ran is kept"
            };
            return Err(Error::Data(format!(
                "input {} has SHA-256 {is}, and the tables were made with {} of SHA-256 {was}: {hint}",
                now_path.display(),
                path.display()
            )));
        }
    }
    Ok(())
}

/// The columns of volatile metrics: `<key>` in epochs, `final_<key>` in runs.
pub(super) fn volatile_columns(volatile: &[String]) -> Vec<String> {
    volatile
        .iter()
        .flat_map(|k| [k.clone(), format!("final_{k}")])
        .collect()
}
