//! Who holds a lock or a claim on a folder: the host, its boot, the process id and the
//! process's start time (so that a reused pid is not taken for the holder). On its own host a
//! holder is alive exactly when a process of that pid and start time runs in the same boot; on
//! another host it cannot be asked, and callers judge it by the age of what it wrote.

use serde::{Deserialize, Serialize};

/// A process that holds something, as it recorded itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub host: String,
    /// The boot `started` counts from (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: String,
    pub pid: i32,
    /// Clock ticks since boot.
    pub started: u64,
}

impl Holder {
    /// This process.
    pub fn this_process() -> Holder {
        let pid = std::process::id() as i32;
        Holder {
            host: crate::host_name(),
            boot_id: boot_id(),
            pid,
            started: start_time(pid).unwrap_or(0),
        }
    }

    /// Whether the holder still runs: `Some` on this host, `None` on another one.
    pub fn alive_here(&self) -> Option<bool> {
        (self.host == crate::host_name())
            .then(|| self.boot_id == boot_id() && start_time(self.pid) == Some(self.started))
    }

    /// `pid 123 on host h`.
    pub fn describe(&self) -> String {
        format!("pid {} on host {}", self.pid, self.host)
    }
}

/// This machine's boot id (empty when it cannot be read).
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Fields of `/proc/<pid>/stat` after the command's closing ')': state first.
pub fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// A process's start time in clock ticks since boot (field 22 of its stat).
pub fn start_time(pid: i32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_here_and_a_reused_pid_is_not_the_holder() {
        let me = Holder::this_process();
        assert!(me.started > 0);
        assert_eq!(me.alive_here(), Some(true));
        let reused = Holder {
            started: me.started + 1,
            ..me.clone()
        };
        assert_eq!(reused.alive_here(), Some(false));
        let rebooted = Holder {
            boot_id: "another boot".into(),
            ..me.clone()
        };
        assert_eq!(rebooted.alive_here(), Some(false));
        let elsewhere = Holder {
            host: format!("{}-elsewhere", me.host),
            ..me
        };
        assert_eq!(elsewhere.alive_here(), None);
    }
}
