//! An output folder's `manifest.toml`: the config hash, run count, shard count, resolved config
//! and execution settings of the sweep it holds, with the builds allowed to add runs; and the
//! check, before anything is written, that a folder may take a sweep.

use std::collections::BTreeMap;
use std::path::Path;

use super::persist::{part_provenance, MANIFEST};
use super::shard::Shard;
use crate::config::Sweep;
use crate::error::{Error, Result};
use crate::results;

/// What `manifest.toml` records.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Manifest {
    pub config_hash: String,
    pub runs: u64,
    pub version: String,
    /// The build that created the folder (see [`crate::BUILD`]; empty in older folders).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub build: String,
    /// The shard count of a sharded sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u64>,
    /// The resolved config (absent in folders of older versions).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub config: String,
    /// SHA-256 of the data file of a file-backed sweep, and where it was (absolute; the config
    /// records the path as written, relative to the config's folder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_path: Option<String>,
    /// The feature columns the data resolved to (absent in folders of older versions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
    /// A command sweep's execution settings (`[command]` keys outside the hash) as TOML, as the
    /// folder's first `sweep run` gave them.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub command_execution: String,
    /// A command sweep's `inputs`: path and hex SHA-256 when the folder began.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs_sha256: BTreeMap<String, String>,
    /// Other builds allowed to add runs (`--allow-build-change`), in the order they came.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also_builds: Vec<String>,
    /// The machine that created the folder: CPU model, SIMD level of the kernels, host name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cpu: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub simd: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
}

impl Manifest {
    /// The manifest of a folder that `sweep` (one shard of it, with `shard`) begins, on this
    /// build and machine.
    pub fn of(sweep: &Sweep, shard: Option<Shard>) -> Manifest {
        Manifest {
            config_hash: sweep.config_hash.clone(),
            runs: sweep.runs.len() as u64,
            version: crate::VERSION.into(),
            build: crate::BUILD.into(),
            shards: shard.map(|s| s.count as u64),
            config: sweep.resolved_toml.clone(),
            data_sha256: sweep.data_sha256.clone(),
            data_path: match &sweep.data.source {
                crate::config::DataSource::File { path, .. } => Some(
                    std::path::absolute(path)
                        .unwrap_or_else(|_| path.clone())
                        .display()
                        .to_string(),
                ),
                crate::config::DataSource::LaggedLevels | crate::config::DataSource::None => None,
            },
            features: sweep.features.clone(),
            command_execution: sweep
                .command
                .as_ref()
                .map_or(String::new(), |c| c.execution_text()),
            inputs_sha256: super::commands::input_hashes(sweep),
            also_builds: Vec::new(),
            cpu: crate::cpu_model(),
            simd: crate::simd::SimdLevel::detect().to_string(),
            host: crate::host_name(),
        }
    }

    /// The folder's build and the builds allowed beside it, as its parts record them: a folder
    /// whose version recorded no build (or [`UNKNOWN_BUILD`]) accepts parts that record none.
    pub fn accepted_builds(&self) -> Vec<&str> {
        let unknown = (self.build == UNKNOWN_BUILD).then_some("");
        std::iter::once(self.build.as_str())
            .chain(unknown)
            .chain(self.also_builds.iter().map(String::as_str))
            .collect()
    }

    /// The builds recorded, as `sweep status` prints them: `a + b`, or "not recorded".
    pub fn builds_text(&self) -> String {
        let builds: Vec<&str> = self
            .accepted_builds()
            .into_iter()
            .filter(|b| !b.is_empty())
            .collect();
        if builds.is_empty() {
            "not recorded".to_string()
        } else {
            builds.join(" + ")
        }
    }

    /// A manifest this tool could have written: the hash is 64 hex digits.
    fn check(&self, path: &Path) -> Result<()> {
        let hex =
            self.config_hash.len() == 64 && self.config_hash.bytes().all(|b| b.is_ascii_hexdigit());
        if hex {
            Ok(())
        } else {
            Err(Error::Results(format!(
                "{}: config_hash = \"{}\" is not accepted: must be 64 hex digits (the SHA-256 sweep writes); \
                 the manifest was edited or is damaged: rerun with --fresh to start afresh",
                path.display(),
                self.config_hash
            )))
        }
    }

    /// The first 16 hex digits of the config hash, for messages.
    pub fn short_hash(&self) -> &str {
        &self.config_hash[..16]
    }
}

/// Reads `OUT/manifest.toml`, if any; a manifest that does not parse or check is an error.
pub fn read_manifest(out: &Path) -> Result<Option<Manifest>> {
    let path = out.join(MANIFEST);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let manifest: Manifest = toml::from_str(&text).map_err(|e| {
                Error::Results(format!(
                    "{} is not a sweep manifest: {}",
                    path.display(),
                    e.message()
                ))
            })?;
            manifest.check(&path)?;
            Ok(Some(manifest))
        }
        // No folder, or a file where the folder should be: no manifest (the writability check reports the latter).
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            Ok(None)
        }
        Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
    }
}

/// The build a manifest records for a folder of a version that recorded none, once
/// `--allow-build-change` let another build add runs to it.
pub const UNKNOWN_BUILD: &str = "unknown";

/// Checks, before anything is written, that `out` may hold this sweep: either it holds no
/// sweep, or the same config run by this build (or `fresh` is set; or, for a run that is not a
/// shard, `allow_build_change`). A shard must also agree with the folder's shard count.
pub fn check_compatible(
    out: &Path,
    sweep: &Sweep,
    fresh: bool,
    shard: Option<Shard>,
    allow_build_change: bool,
) -> Result<()> {
    if fresh {
        return Ok(());
    }
    if let Some(m) = read_manifest(out)? {
        if m.config_hash == sweep.config_hash && shard.is_none() && !allow_build_change {
            let other = other_builds(out, &m)?;
            if !other.is_empty() {
                return Err(Error::Config(format!(
                    "{} holds runs of build {}, and this is build {}: the numbers of another build may differ, \
                     so its runs are not mixed with this build's; rerun with --fresh to delete them and start \
                     afresh, or with --allow-build-change to add this build's runs to them (the manifest then \
                     records both builds)",
                    out.display(),
                    other.join(", "),
                    crate::BUILD
                )));
            }
        }
    }
    match read_manifest(out)? {
        Some(m) if m.config_hash != sweep.config_hash => Err(Error::Config(format!(
            "{} holds the results of another config (hash {}), not of this one (hash {}): rerun with --fresh to \
             delete them and start afresh, or choose another folder with --out",
            out.display(),
            m.short_hash(),
            &sweep.config_hash[..16]
        ))),
        Some(m) => match shard {
            Some(s) if m.shards != Some(s.count as u64) => Err(Error::Config(format!(
                "{} holds a sweep {}, not one of {} shards: give the same shard count as the other shards, \
                 or another folder with --out",
                out.display(),
                m.shards.map_or("run without shards".to_string(), |n| format!("of {n} shards")),
                s.count
            ))),
            // A folder of a version that recorded no build: its parts' build is unknown.
            Some(_) if m.build.is_empty() && !allow_build_change => Err(Error::Config(format!(
                "{} was made by a version of sweep that recorded no build, and this is build {}: its runs \
                 and this build's may differ in the last bits, and the shards of a sweep must be merged \
                 from one build; rerun with --allow-build-change to add this build's shards to it (the \
                 manifest then records the build \"unknown\" and this one, and the merge accepts both), \
                 or use another folder with --out",
                out.display(),
                crate::BUILD
            ))),
            Some(_) if !m.build.is_empty() && m.build != crate::BUILD && !m.accepted_builds().contains(&crate::BUILD) => Err(Error::Config(format!(
                "{} holds shards of build {}, and this is build {}: every shard of a sweep must run the same \
                 build (its numbers may differ in the last bits); run the shards with that build, or use \
                 another folder with --out",
                out.display(),
                m.build,
                crate::BUILD
            ))),
            _ => Ok(()),
        },
        None => Ok(()),
    }
}

/// Records this build in the manifest beside the folder's own (`--allow-build-change`), unless
/// it is one of them already.
pub(super) fn allow_this_build(out: &Path) -> Result<()> {
    // Under the folder's lock: two builds allowed at the same moment both stay recorded.
    let _lock = super::claim::FolderLock::acquire(out)?;
    let Some(mut manifest) = read_manifest(out)? else {
        return Ok(());
    };
    if manifest.accepted_builds().contains(&crate::BUILD) {
        return Ok(());
    }
    if manifest.build.is_empty() {
        manifest.build = UNKNOWN_BUILD.to_string();
    }
    manifest.also_builds.push(crate::BUILD.to_string());
    let text = toml::to_string(&manifest).expect("manifest serializes");
    results::write_atomic(&out.join(MANIFEST), |f| {
        use std::io::Write;
        f.write_all(text.as_bytes())
            .map_err(|e| Error::io("writing the manifest", e))
    })
}

/// The builds other than this one whose runs `out` holds: the folder's own build and those of
/// its parts, less those the manifest allows (`--allow-build-change`). Folders and parts of
/// versions that did not record a build count as no build.
fn other_builds(out: &Path, manifest: &Manifest) -> Result<Vec<String>> {
    let (mut builds, _) = part_provenance(out)?;
    builds.push(manifest.build.clone());
    builds.sort();
    builds.dedup();
    let accepted = manifest.accepted_builds();
    // Once this build was allowed beside the folder's, the builds allowed with it are too.
    let mixed = accepted.contains(&crate::BUILD);
    Ok(builds
        .into_iter()
        .filter(|b| {
            !b.is_empty() && b != crate::BUILD && !(mixed && accepted.contains(&b.as_str()))
        })
        .collect())
}
