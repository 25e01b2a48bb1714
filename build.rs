//! Records the build id as `SWEEP_BUILD`: the git commit, plus a hash of the uncommitted changes
//! to the sources, `Cargo.toml`, `Cargo.lock` and this file when there are any (a dirty tree is not
//! the same build). Git computes the hash (`git hash-object`), so no crate is built for it; outside
//! a git checkout the id is `unknown`. Also the compiler (`SWEEP_RUSTC`), the target triple
//! (`SWEEP_TARGET`) and the locked faer and polars versions (`SWEEP_FAER`, `SWEEP_POLARS`), which
//! every table's metadata records.

use std::io::Write;
use std::process::{Command, Stdio};

const TRACKED: &[&str] = &["src", "Cargo.toml", "Cargo.lock", "build.rs"];

fn git(args: &[&str]) -> Option<Vec<u8>> {
    let output = Command::new("git").args(args).output().ok()?;
    output.status.success().then_some(output.stdout)
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).trim().to_string()
}

/// The SHA-1 git gives `bytes`.
fn hash(bytes: &[u8]) -> Option<String> {
    let mut child = Command::new("git")
        .args(["hash-object", "--stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(bytes).ok()?;
    let output = child.wait_with_output().ok()?;
    output.status.success().then(|| text(output.stdout))
}

fn build_id() -> Option<String> {
    let commit = text(git(&["rev-parse", "HEAD"])?);
    let mut changes = git(&[&["diff", "HEAD", "--binary", "--"][..], TRACKED].concat())?;
    // New files git does not track yet change the build too.
    let untracked = text(git(&[
        &["ls-files", "--others", "--exclude-standard", "--"][..],
        TRACKED,
    ]
    .concat())?);
    for name in untracked.lines() {
        changes.extend_from_slice(name.as_bytes());
        changes.extend_from_slice(&std::fs::read(name).unwrap_or_default());
    }
    let short = &commit[..commit.len().min(12)];
    if changes.is_empty() {
        Some(short.to_string())
    } else {
        let digest = hash(&changes)?;
        Some(format!("{short}+dirty.{}", &digest[..12]))
    }
}

/// The version `Cargo.lock` pins for package `name`.
fn locked_version(lock: &str, name: &str) -> String {
    let wanted = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == wanted {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
            {
                return v.trim_matches('"').to_string();
            }
        }
    }
    "unknown".to_string()
}

fn main() {
    for path in TRACKED {
        println!("cargo:rerun-if-changed={path}");
    }
    if let Some(dir) = git(&["rev-parse", "--git-dir"]).map(text) {
        for file in ["HEAD", "index"] {
            println!("cargo:rerun-if-changed={dir}/{file}");
        }
        if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]).map(text) {
            println!("cargo:rerun-if-changed={dir}/{head}");
        }
    }
    let id = build_id().unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=SWEEP_BUILD={id}");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(|| "unknown".to_string(), |o| text(o.stdout));
    println!("cargo:rustc-env=SWEEP_RUSTC={version}");
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_string());
    println!("cargo:rustc-env=SWEEP_TARGET={target}");
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    println!(
        "cargo:rustc-env=SWEEP_FAER={}",
        locked_version(&lock, "faer")
    );
    println!(
        "cargo:rustc-env=SWEEP_POLARS={}",
        locked_version(&lock, "polars")
    );
}
