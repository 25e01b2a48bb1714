//! Files that appear whole or not at all: written to a temporary name, synced, then renamed over
//! the final name, or hard-linked to it when the final name must not exist yet (`link(2)` fails
//! on an existing name, NFS included), so that processes sharing a folder never clobber each
//! other. Parts, tables, the manifest and a command sweep's live-run records are written so.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// How a finished temporary file takes its final name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Commit {
    /// Rename over whatever is there.
    Replace,
    /// Hard-link to the final name, which must not exist yet (`link(2)` fails on an existing
    /// name, on NFS too), then remove the temporary name.
    New,
}

/// Writes `fill`'s bytes to `path` atomically: temporary file, fsync, rename. A reader sees the
/// old file or the new one, never a part; a failed write removes its temporary file.
pub fn write_atomic(path: &Path, fill: impl FnOnce(&mut File) -> Result<()>) -> Result<()> {
    write_committed(path, Commit::Replace, true, fill).map(|_| ())
}

/// Like [`write_atomic`], but never replaces a file: returns `false` (and writes nothing) when
/// `path` exists already, so that processes sharing a folder cannot clobber each other.
pub fn write_new(path: &Path, fill: impl FnOnce(&mut File) -> Result<()>) -> Result<bool> {
    write_committed(path, Commit::New, true, fill)
}

/// Like [`write_new`], but not synced to disk: for records that matter only while this machine
/// runs (a crash ends the processes they describe), where two syncs per record would cost more
/// than the run they record.
pub fn write_new_unsynced(path: &Path, fill: impl FnOnce(&mut File) -> Result<()>) -> Result<bool> {
    write_committed(path, Commit::New, false, fill)
}

fn write_committed(
    path: &Path,
    commit: Commit,
    sync: bool,
    fill: impl FnOnce(&mut File) -> Result<()>,
) -> Result<bool> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // The process id alone could repeat on another machine sharing the folder.
    let tmp: PathBuf = dir.join(format!(
        ".{name}.tmp-{}-{:016x}",
        std::process::id(),
        rand::random::<u64>()
    ));
    let result = (|| {
        let mut file =
            File::create(&tmp).map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
        fill(&mut file)?;
        file.flush()
            .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
        if sync {
            file.sync_all()
                .map_err(|e| Error::io(format!("syncing {}", tmp.display()), e))?;
        }
        let created = match commit {
            Commit::Replace => std::fs::rename(&tmp, path)
                .map(|_| true)
                .map_err(|e| Error::io(format!("renaming to {}", path.display()), e))?,
            Commit::New => match std::fs::hard_link(&tmp, path) {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                Err(e) => return Err(Error::io(format!("linking to {}", path.display()), e)),
            },
        };
        if let (true, Ok(d)) = (sync, File::open(dir)) {
            let _ = d.sync_all();
        }
        Ok(created)
    })();
    if result.is_err() || commit == Commit::New {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes text to `path` atomically.
pub fn write_text(path: &Path, text: &str) -> Result<()> {
    write_atomic(path, |f| {
        f.write_all(text.as_bytes())
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))
    })
}
