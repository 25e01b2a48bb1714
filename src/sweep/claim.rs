//! One writer per share of a results folder. `OUT/.lock`, made whole by a hard link (as parts
//! and live-run records are: `flock` is unreliable on the NFS shares clusters use), is held for
//! the moments in which a process reads and rewrites the folder's shared records: the claims,
//! the manifest's builds and the live-run records of command runs. A claim,
//! `OUT/claims/<host>-<pid>.toml`, says which share of the sweep a process is running (all runs,
//! or one shard); it is refreshed every [`HEARTBEAT`] and removed when the process ends.
//!
//! `sweep run` is refused (exit 2) beside a live claim it would collide with: any claim, for a
//! run without shards; a claim of the whole sweep or of the same shard, for a shard (shards of
//! one sweep run side by side). A claim or lock whose process is gone is dropped: at once on its
//! own host (pid and start time, see [`Holder`]), and when it is older than [`CLAIM_STALE`]
//! (a claim) or [`LOCK_STALE`] (a lock) for another host, whose processes cannot be asked; a
//! colliding claim of another host is waited for until it is refreshed (refused then) or stale.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::shard::Shard;
use crate::atomic_file::write_new_unsynced;
use crate::error::{Error, Result};
use crate::holder::Holder;

/// The lock file and the folder of claims, in the output folder.
pub const LOCK: &str = ".lock";
pub const CLAIMS: &str = "claims";
/// A lock of another host older than this was left by a dead process (locks are held for
/// milliseconds, or a run's `grace` while stale runs are ended).
pub const LOCK_STALE: Duration = Duration::from_secs(120);
/// How often a claim is refreshed, and the age at which a claim of another host counts as dead.
pub const HEARTBEAT: Duration = Duration::from_secs(30);
pub const CLAIM_STALE: Duration = Duration::from_secs(120);
/// How long to wait for a lock whose holder lives.
const LOCK_WAIT: Duration = Duration::from_secs(600);

/// The folder's lock, released when dropped.
pub struct FolderLock {
    path: PathBuf,
}

impl FolderLock {
    /// Waits for the lock of folder `out` (which must exist) and takes it.
    pub fn acquire(out: &Path) -> Result<FolderLock> {
        let path = out.join(LOCK);
        let me = toml::to_string(&Holder::this_process()).expect("a holder serializes");
        let start = Instant::now();
        loop {
            let created = write_new_unsynced(&path, |f| {
                f.write_all(me.as_bytes())
                    .map_err(|e| Error::io(format!("writing {}", path.display()), e))
            })?;
            if created {
                return Ok(FolderLock { path });
            }
            let holder = read_holder(&path);
            if is_dead(holder.as_ref(), age(&path), LOCK_STALE) {
                break_stale(&path, holder.as_ref());
                continue;
            }
            if start.elapsed() > LOCK_WAIT {
                return Err(Error::Config(format!(
                    "{} has been held by {} for more than {} s; if that process is gone, remove the file",
                    path.display(),
                    holder.map_or("another process".to_string(), |h| h.describe()),
                    LOCK_WAIT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(2 + rand::random::<u64>() % 10));
        }
    }
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn read_holder(path: &Path) -> Option<Holder> {
    toml::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// How long ago `path` was last written (zero when it cannot be told).
fn age(path: &Path) -> Duration {
    modified(path)
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default()
}

/// Whether what `holder` wrote `age` ago was left by a dead process: on its host, when the
/// process is gone; elsewhere (or unreadable), when it is older than `stale`.
fn is_dead(holder: Option<&Holder>, age: Duration, stale: Duration) -> bool {
    match holder.and_then(Holder::alive_here) {
        Some(alive) => !alive,
        None => age > stale,
    }
}

/// Removes the lock a dead `holder` left. Another process may have broken it and taken the
/// lock in the meantime: the lock is moved aside first, and put back when it turns out to be
/// someone else's.
fn break_stale(path: &Path, holder: Option<&Holder>) {
    let aside = path.with_extension(format!(
        "stale-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    if std::fs::rename(path, &aside).is_err() {
        return;
    }
    if read_holder(&aside).as_ref() != holder {
        let _ = std::fs::hard_link(&aside, path);
    }
    let _ = std::fs::remove_file(&aside);
}

/// What a claim file records.
#[derive(Serialize, Deserialize)]
struct ClaimRecord {
    /// `all`, or the shard's tag (`s01of04`).
    share: String,
    holder: Holder,
}

/// This process's claim on a folder: refreshed while it lives, removed when dropped.
pub struct Claim {
    path: Option<PathBuf>,
    stop: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(beat) = self.heartbeat.take() {
            beat.thread().unpark();
            let _ = beat.join();
        }
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Claims the share of folder `out` (which must exist) that this process runs, under the
/// folder's lock, and runs `under_lock` (the checks of the folder's live runs) before the lock
/// is released. Refused when a live claim collides with it; a colliding claim of another host
/// is waited for while it is not refreshed (its process may be gone: a node that died), up to
/// [`CLAIM_STALE`]. A claim this process holds already (the next batch of an adaptive sweep)
/// stands, and the claim returned then owns nothing.
pub fn claim(
    out: &Path,
    shard: Option<Shard>,
    under_lock: impl FnOnce() -> Result<()>,
) -> Result<Claim> {
    let dir = out.join(CLAIMS);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
    let me = Holder::this_process();
    let share = shard.map_or("all".to_string(), |s| s.tag());
    let path = dir.join(format!("{}-{}.toml", me.host, me.pid));
    let mut owned = Claim {
        path: None,
        stop: Arc::new(AtomicBool::new(false)),
        heartbeat: None,
    };
    // Claims of other hosts waited for, with the time they were last refreshed when first seen.
    let mut waited: Vec<(PathBuf, Option<SystemTime>)> = Vec::new();
    let lock = loop {
        let lock = FolderLock::acquire(out)?;
        if read_claim(&path).is_some_and(|c| c.holder == me) {
            under_lock()?;
            return Ok(owned);
        }
        let Some((other, record)) = colliding(&dir, &share) else {
            break lock;
        };
        let refreshed = modified(&other);
        let first_seen = match waited.iter().find(|(p, _)| *p == other) {
            Some((_, seen)) => *seen,
            None => {
                eprintln!(
                    "note: {} is claimed by {} on another host, not refreshed for {} s; waiting up to {} s \
                     in case that process is gone",
                    out.display(),
                    record.holder.describe(),
                    age(&other).as_secs(),
                    CLAIM_STALE.as_secs()
                );
                waited.push((other.clone(), refreshed));
                refreshed
            }
        };
        if record.holder.alive_here().is_some() || refreshed != first_seen {
            return Err(collision(out, &other, &record));
        }
        drop(lock);
        std::thread::sleep(Duration::from_secs(1));
    };
    under_lock()?;
    let text = toml::to_string(&ClaimRecord { share, holder: me }).expect("a claim serializes");
    write_new_unsynced(&path, |f| {
        f.write_all(text.as_bytes())
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    })?;
    drop(lock);
    owned.heartbeat = Some(heartbeat(path.clone(), owned.stop.clone()));
    owned.path = Some(path);
    Ok(owned)
}

/// The first live claim in `dir` that collides with `share` (removing dead claims on the way):
/// any claim for the whole sweep; a claim of the whole sweep or of the same shard for a shard.
fn colliding(dir: &Path, share: &str) -> Option<(PathBuf, ClaimRecord)> {
    for other in claim_files(dir) {
        let Some(record) = read_claim(&other) else {
            continue;
        };
        if is_dead(Some(&record.holder), age(&other), CLAIM_STALE) {
            let _ = std::fs::remove_file(&other);
        } else if share == "all" || record.share == "all" || record.share == share {
            return Some((other, record));
        }
    }
    None
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn read_claim(path: &Path) -> Option<ClaimRecord> {
    toml::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

fn claim_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect()
}

fn collision(out: &Path, path: &Path, other: &ClaimRecord) -> Error {
    let what = if other.share == "all" {
        "all of its runs".to_string()
    } else {
        format!("shard {}", other.share)
    };
    Error::Config(format!(
        "{} is being written by another `sweep run` ({what}, {}): two processes adding the same runs to \
         one folder would run them twice; wait for it to end, or write to another folder with --out \
         (if that process is gone, remove {})",
        out.display(),
        other.holder.describe(),
        path.display()
    ))
}

/// Refreshes the claim's time every [`HEARTBEAT`] until `stop`.
fn heartbeat(path: PathBuf, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || loop {
        std::thread::park_timeout(HEARTBEAT);
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if let Ok(f) = std::fs::File::options().write(true).open(&path) {
            let _ = f.set_modified(SystemTime::now());
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Threads taking turns under the lock lose no update of a shared counter file.
    #[test]
    fn the_lock_excludes_and_a_dead_holders_lock_is_broken() {
        let dir = tempfile::tempdir().unwrap();
        let counter = dir.path().join("counter");
        std::fs::write(&counter, "0").unwrap();
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (out, counter) = (dir.path().to_path_buf(), counter.clone());
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        let _lock = FolderLock::acquire(&out).unwrap();
                        let n: u32 = std::fs::read_to_string(&counter).unwrap().parse().unwrap();
                        std::thread::yield_now();
                        std::fs::write(&counter, (n + 1).to_string()).unwrap();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        assert_eq!(std::fs::read_to_string(&counter).unwrap(), "100");
        assert!(!dir.path().join(LOCK).exists());

        // A lock left by a process of this host that is gone (a start time no process has).
        let dead = Holder {
            started: u64::MAX,
            ..Holder::this_process()
        };
        std::fs::write(dir.path().join(LOCK), toml::to_string(&dead).unwrap()).unwrap();
        drop(FolderLock::acquire(dir.path()).unwrap());
        assert!(!dir.path().join(LOCK).exists());
    }

    /// A claim of another host: dropped once stale; while fresh, waited for until it is
    /// refreshed, then refused.
    #[test]
    fn a_claim_of_another_host_is_dropped_when_stale_and_refused_when_refreshed() {
        let dir = tempfile::tempdir().unwrap();
        let claims = dir.path().join(CLAIMS);
        std::fs::create_dir_all(&claims).unwrap();
        let mut holder = Holder::this_process();
        holder.host = format!("{}-elsewhere", holder.host);
        let record = ClaimRecord {
            share: "all".into(),
            holder: holder.clone(),
        };
        let other = claims.join(format!("{}-{}.toml", holder.host, holder.pid));
        let write_aged = |age: Duration| {
            std::fs::write(&other, toml::to_string(&record).unwrap()).unwrap();
            let file = std::fs::File::options().write(true).open(&other).unwrap();
            file.set_modified(SystemTime::now() - age).unwrap();
        };
        write_aged(CLAIM_STALE + Duration::from_secs(5));
        let mine = claim(dir.path(), None, || Ok(())).unwrap();
        assert!(!other.exists());
        drop(mine);
        assert_eq!(claim_files(&claims).len(), 0);

        write_aged(Duration::from_secs(5));
        let refresh = {
            let other = other.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(300));
                let file = std::fs::File::options().write(true).open(&other).unwrap();
                file.set_modified(SystemTime::now()).unwrap();
            })
        };
        let refused = claim(dir.path(), None, || Ok(())).err().expect("refused");
        refresh.join().unwrap();
        assert!(refused.to_string().contains(&holder.host), "{refused}");
        assert!(other.exists());
    }

    #[test]
    fn dead_means_gone_here_or_silent_too_long_elsewhere() {
        let me = Holder::this_process();
        let other_host = Holder {
            host: format!("{}-elsewhere", me.host),
            ..me.clone()
        };
        let minute = Duration::from_secs(60);
        assert!(!is_dead(Some(&me), 10 * minute, minute));
        assert!(!is_dead(Some(&other_host), minute / 2, minute));
        assert!(is_dead(Some(&other_host), 2 * minute, minute));
        assert!(is_dead(None, 2 * minute, minute));
    }
}
