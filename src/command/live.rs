//! Records of the command runs alive, one file per run in `OUT/live/`, created whole by a link
//! (as parts are, so that it works on the NFS shares of a cluster) when the run starts and
//! removed when it has ended. A sweep killed with SIGKILL cannot end its runs; the next `sweep
//! run` into the folder finds their records, and stops (exit 2) naming the runs still alive on
//! its host, or with `--kill-stale` ends them first. Records of other hosts are reported, never
//! signalled; records of a sweep still alive (another shard on this host) are left alone.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::atomic_file::write_new_unsynced;
use crate::error::{Error, Result};
use crate::holder::{boot_id, start_time, stat_fields};

/// The folder of the records, in the output folder.
pub const LIVE_DIR: &str = "live";

/// One live run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub run_id: String,
    pub host: String,
    /// The boot the times below count from (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: String,
    /// The sweep that started the run, and its start time (clock ticks since boot).
    pub sweep_pid: i32,
    pub sweep_started: u64,
    /// The run's process group (its leader's pid) and the leader's start time.
    pub group: i32,
    pub started: u64,
}

impl Record {
    /// The record of a run whose leader is `group`, started by this process.
    pub fn of(run_id: &str, group: i32) -> Record {
        let me = std::process::id() as i32;
        Record {
            run_id: run_id.to_string(),
            host: crate::host_name(),
            boot_id: boot_id(),
            sweep_pid: me,
            sweep_started: start_time(me).unwrap_or(0),
            group,
            started: start_time(group).unwrap_or(0),
        }
    }

    fn path(&self, out: &Path) -> PathBuf {
        out.join(LIVE_DIR)
            .join(format!("{}-{}-{}.toml", self.host, self.group, self.run_id))
    }

    /// Writes the record (a failure to write is reported, not fatal: the run goes on).
    pub fn create(&self, out: &Path) -> Option<PathBuf> {
        let path = self.path(out);
        let text = toml::to_string(self).expect("a record serializes");
        let written = std::fs::create_dir_all(out.join(LIVE_DIR))
            .map_err(|e| Error::io("creating the live-run folder", e))
            .and_then(|_| {
                write_new_unsynced(&path, |f| {
                    use std::io::Write;
                    f.write_all(text.as_bytes())
                        .map_err(|e| Error::io("writing a live-run record", e))
                })
            });
        match written {
            Ok(_) => Some(path),
            Err(e) => {
                eprintln!(
                    "warning: run {}: its live-run record was not written ({e})",
                    self.run_id
                );
                None
            }
        }
    }

    /// Whether the sweep that started the run is still alive on this host.
    fn sweep_alive(&self) -> bool {
        start_time(self.sweep_pid).is_some_and(|t| t == self.sweep_started)
    }

    /// Whether any process of the run's group, started no earlier than its leader, lives.
    fn run_alive(&self) -> bool {
        group_members(self.group, self.started) > 0
    }
}

/// How many live (not zombie) processes of `group` started at or after `not_before`.
fn group_members(group: i32, not_before: u64) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(stat_fields)
        .filter(|f| {
            f.len() > 19
                && f[0] != "Z"
                && f[2].parse::<i32>() == Ok(group)
                && f[19].parse::<u64>().is_ok_and(|t| t >= not_before)
        })
        .count()
}

/// Every record in `out`.
fn records(out: &Path) -> Vec<(PathBuf, Record)> {
    let Ok(entries) = std::fs::read_dir(out.join(LIVE_DIR)) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter_map(|p| {
            let record = toml::from_str(&std::fs::read_to_string(&p).ok()?).ok()?;
            Some((p, record))
        })
        .collect()
}

/// Before a command sweep starts: removes the records of runs that are over, ends the runs a
/// dead sweep of this host left alive when `kill_stale` (TERM, KILL after `grace`), and refuses
/// (exit 2) to start beside them otherwise. Records of other hosts are named on stderr.
pub fn check_stale(out: &Path, kill_stale: bool, grace: Duration) -> Result<()> {
    let (host, boot) = (crate::host_name(), boot_id());
    let mut stale = Vec::new();
    for (path, record) in records(out) {
        if record.host != host {
            eprintln!(
                "note: run {} may still be alive on host {} (process group {}): sweep signals no other host",
                record.run_id, record.host, record.group
            );
        } else if record.boot_id != boot || (!record.sweep_alive() && !record.run_alive()) {
            let _ = std::fs::remove_file(&path);
        } else if !record.sweep_alive() {
            stale.push((path, record));
        }
    }
    if stale.is_empty() {
        return Ok(());
    }
    if !kill_stale {
        let list: Vec<String> = stale
            .iter()
            .map(|(_, r)| {
                format!(
                    "run {} (process group {}, started by sweep pid {})",
                    r.run_id, r.group, r.sweep_pid
                )
            })
            .collect();
        return Err(Error::Config(format!(
            "{} has command runs still alive on this host from a sweep that was killed: {}; end them with \
             `sweep run ... --kill-stale` (TERM, then KILL after the grace), or by hand, then rerun",
            out.display(),
            list.join(", ")
        )));
    }
    for (path, record) in stale {
        eprintln!(
            "ending stale run {} (process group {})",
            record.run_id, record.group
        );
        end_group(&record, grace);
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}

/// TERM to a stale run's group, KILL after `grace`, until none of it is left.
fn end_group(record: &Record, grace: Duration) {
    let signal = |s| {
        // SAFETY: killpg only sends a signal; the group was checked to be this run's.
        unsafe { libc::killpg(record.group, s) };
    };
    signal(libc::SIGTERM);
    let start = Instant::now();
    while record.run_alive() {
        if start.elapsed() >= grace {
            signal(libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
