//! Sharding a sweep across machines without a coordinator: shard `I` of `N` runs the run groups
//! (runs that train together, see `plan`) whose rank in the sweep's fixed group order is `I`
//! modulo `N`, so no group is split and every run belongs to exactly one shard, whatever is saved
//! already. The index comes from `--shard I/N`, or with `--shards N` from the scheduler:
//! `SLURM_ARRAY_TASK_ID` (Slurm job arrays) or `JOB_COMPLETION_INDEX` (Kubernetes indexed jobs).
//! `N` is never derived from the scheduler (a resubmission of `--array=3,17` must keep `N`).

use std::collections::{BTreeMap, BTreeSet};

use super::plan::group_key;
use crate::config::Sweep;
use crate::error::{Error, Result};

/// The environment variables that may give a shard index, in the order they are tried.
pub const INDEX_VARIABLES: &[&str] = &["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"];

/// One shard of a sweep: index `index` (0-based) of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// From `--shard I/N`.
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = |why: &str| {
            Error::Usage(format!(
                "--shard {text} is not accepted: {why} (give I/N with 0 <= I < N, e.g. --shard 3/8)"
            ))
        };
        let (i, n) = text.split_once('/').ok_or_else(|| bad("no `/`"))?;
        let index: usize = i
            .trim()
            .parse()
            .map_err(|_| bad("I is not a whole number"))?;
        let count: usize = n
            .trim()
            .parse()
            .map_err(|_| bad("N is not a whole number"))?;
        Shard::new(index, count, &format!("--shard {text}"))
    }

    /// From `--shards N` and the first of [`INDEX_VARIABLES`] that is set; also says which.
    pub fn from_env(
        count: usize,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<(Shard, &'static str)> {
        for var in INDEX_VARIABLES {
            if let Some(value) = env(var) {
                let index: usize = value.trim().parse().map_err(|_| {
                    Error::Usage(format!(
                        "{var} = \"{value}\" is not accepted as a shard index: must be a whole number >= 0"
                    ))
                })?;
                let shard = Shard::new(
                    index,
                    count,
                    &format!("{var} = {index} with --shards {count}"),
                )?;
                return Ok((shard, var));
            }
        }
        Err(Error::Usage(format!(
            "--shards {count} takes the shard index from {}, and neither is set: run inside a Slurm job array \
             or a Kubernetes indexed job, or give the index with --shard I/{count}",
            INDEX_VARIABLES.join(" or ")
        )))
    }

    fn new(index: usize, count: usize, what: &str) -> Result<Shard> {
        if count == 0 {
            return Err(Error::Usage(format!(
                "{what}: a shard count of 0 is not accepted: must be >= 1"
            )));
        }
        if index >= count {
            return Err(Error::Usage(format!(
                "{what}: shard index {index} is not accepted: must be in [0, {count}) (0-based)"
            )));
        }
        Ok(Shard { index, count })
    }

    /// The name parts of this shard carry, e.g. `s03of08`.
    pub fn tag(&self) -> String {
        let width = (self.count - 1).to_string().len().max(2);
        format!("s{:0width$}of{:0width$}", self.index, self.count)
    }
}

/// The shard (of `count`) of every run of the sweep, in run order.
pub fn shard_of_runs(sweep: &Sweep, count: usize) -> Vec<usize> {
    // Ranks in key order, not in order of appearance, so that they do not depend on run order.
    let keys: BTreeSet<_> = sweep.runs.iter().map(group_key).collect();
    let ordered: BTreeMap<_, usize> = keys
        .into_iter()
        .enumerate()
        .map(|(g, key)| (key, g))
        .collect();
    sweep
        .runs
        .iter()
        .map(|run| ordered[&group_key(run)] % count)
        .collect()
}

/// Whether each run, in run order, belongs to `shard` (every run does without one).
pub fn in_share(sweep: &Sweep, shard: Option<Shard>) -> Vec<bool> {
    match shard {
        Some(s) => shard_of_runs(sweep, s.count)
            .into_iter()
            .map(|of| of == s.index)
            .collect(),
        None => vec![true; sweep.runs.len()],
    }
}

/// `3,17` or `0-2,5`: a sorted list of indices as ranges, the way `sbatch --array` takes them.
pub fn ranges(indices: &[usize]) -> String {
    let mut parts = Vec::new();
    let mut iter = indices.iter().copied().peekable();
    while let Some(start) = iter.next() {
        let mut end = start;
        while iter.peek() == Some(&(end + 1)) {
            end = iter.next().unwrap_or(end);
        }
        parts.push(if end == start {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_arguments_are_checked() {
        assert_eq!(Shard::parse("3/8").unwrap(), Shard { index: 3, count: 8 });
        for bad in ["8/8", "3", "a/8", "1/0", "-1/4"] {
            let err = Shard::parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}: {err}");
            assert!(err.to_string().contains(bad), "{err}");
        }
        let env = |v: &str| (v == "JOB_COMPLETION_INDEX").then(|| "2".to_string());
        assert_eq!(
            Shard::from_env(4, env).unwrap(),
            (Shard { index: 2, count: 4 }, "JOB_COMPLETION_INDEX")
        );
        let slurm = |v: &str| (v == "SLURM_ARRAY_TASK_ID").then(|| "5".to_string());
        assert!(Shard::from_env(4, slurm)
            .unwrap_err()
            .to_string()
            .contains("[0, 4)"));
        assert!(Shard::from_env(4, |_| None)
            .unwrap_err()
            .to_string()
            .contains("SLURM_ARRAY_TASK_ID"));
        assert_eq!(Shard { index: 3, count: 8 }.tag(), "s03of08");
        assert_eq!(
            Shard {
                index: 3,
                count: 120
            }
            .tag(),
            "s003of120"
        );
    }

    #[test]
    fn ranges_compress_runs_of_indices() {
        assert_eq!(ranges(&[3, 17]), "3,17");
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
        assert_eq!(ranges(&[]), "");
    }
}
