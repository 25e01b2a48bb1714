//! The columns only command sweeps' runs tables have (attempt, exit code, signal, argv, the
//! `final_<key>` of every other metric), read back from a part.

use std::collections::BTreeSet;

use super::{Reader, FINAL, RUN_F64};
use crate::error::Result;

/// The command-run columns of a runs frame, when it has them.
pub(super) struct CommandColumns {
    pub attempts: Vec<Option<i64>>,
    pub exit_codes: Vec<Option<i64>>,
    pub signals: Vec<Option<i64>>,
    pub argv: Vec<Option<String>>,
    pub finals: Vec<(String, Vec<Option<f64>>)>,
}

impl CommandColumns {
    pub fn read(reader: &Reader) -> Result<Option<CommandColumns>> {
        if reader.df.column("argv").is_err() {
            return Ok(None);
        }
        let fixed: BTreeSet<&str> = RUN_F64.iter().map(|(name, _, _)| *name).collect();
        let finals = reader
            .df
            .get_column_names()
            .into_iter()
            .filter_map(|name| {
                name.strip_prefix(FINAL)
                    .filter(|_| !fixed.contains(name.as_str()))
            })
            .map(|key| Ok((key.to_string(), reader.f64s(&format!("{FINAL}{key}"))?)))
            .collect::<Result<_>>()?;
        Ok(Some(CommandColumns {
            attempts: reader.ints("attempt")?,
            exit_codes: reader.ints("exit_code")?,
            signals: reader.ints("signal")?,
            argv: reader.strings("argv")?,
            finals,
        }))
    }
}
