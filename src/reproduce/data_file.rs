//! Where a file-backed sweep's data file is, for a reproduction. The tables record its SHA-256
//! (`sweep.data_sha256`) and its path relative to the output folder (`sweep.data_path`); the
//! folder's manifest records its absolute path, and the recorded config the path as written.
//! `--data FILE` is taken as given (its hash is checked with the config); otherwise the first of
//! the manifest's path, the recorded relative path from the table's folder, and the written path
//! (from the table's folder, then from the current folder) whose SHA-256 matches is the file.

use std::path::{Path, PathBuf};

use crate::config::hex_sha256_of_file;
use crate::error::{Error, Result};
use crate::results::read_metadata_value;

/// The metadata key of the data file's path relative to the output folder.
pub const DATA_PATH_KEY: &str = "sweep.data_path";

/// The data file to reproduce the tables at `first` (a table of the folder `tables_dir`) with:
/// `given`, else the first candidate with the recorded SHA-256; `None` for the built-in data.
pub fn find(tables_dir: &Path, first: &Path, given: Option<PathBuf>) -> Result<Option<PathBuf>> {
    let Some(want) = read_metadata_value(first, "sweep.data_sha256")? else {
        return Ok(given);
    };
    if given.is_some() {
        return Ok(given);
    }
    let mut tried: Vec<(PathBuf, &str)> = Vec::new();
    for candidate in candidates(tables_dir, first)? {
        let same =
            |p: &PathBuf| std::fs::canonicalize(p).ok() == std::fs::canonicalize(&candidate).ok();
        if tried.iter().any(|(p, _)| p == &candidate || same(p)) {
            continue;
        }
        match hex_sha256_of_file(&candidate) {
            Ok(hash) if hash == want => return Ok(Some(candidate)),
            Ok(_) => tried.push((candidate, "another SHA-256")),
            Err(_) => tried.push((candidate, "not found")),
        }
    }
    let list: Vec<String> = tried
        .iter()
        .map(|(p, why)| format!("{} ({why})", p.display()))
        .collect();
    Err(Error::Data(format!(
        "the tables were made from a data file with SHA-256 {want}, which is at none of the places tried: {}; \
         give it with --data FILE",
        if list.is_empty() { "none recorded".to_string() } else { list.join(", ") }
    )))
}

/// The places the data file may be, in the order they are tried.
fn candidates(tables_dir: &Path, first: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    if let Some(manifest) = crate::sweep::read_manifest(tables_dir).ok().flatten() {
        found.extend(manifest.data_path.map(PathBuf::from));
    }
    if let Some(relative) = read_metadata_value(first, DATA_PATH_KEY)? {
        found.push(tables_dir.join(relative));
    }
    let config = read_metadata_value(first, "sweep.config")?.unwrap_or_default();
    let written = config
        .parse::<toml::Table>()
        .ok()
        .and_then(|t| Some(PathBuf::from(t.get("data")?.get("path")?.as_str()?)));
    if let Some(written) = written {
        found.push(tables_dir.join(&written));
        if let Ok(cwd) = std::env::current_dir() {
            found.push(cwd.join(&written));
        }
    }
    Ok(found)
}

/// The tables' record of a file-backed sweep's data file: its path relative to the output
/// folder `out` (nothing for the built-in data).
pub fn data_location(out: &Path, sweep: &crate::config::Sweep) -> Vec<(String, String)> {
    match &sweep.data.source {
        crate::config::DataSource::File { path, .. } => relative_to(out, path)
            .map(|r| (DATA_PATH_KEY.to_string(), r.display().to_string()))
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

/// `to` relative to the folder `from` (both made absolute, symbolic links resolved where they
/// exist): `../data/energy.csv`.
pub fn relative_to(from: &Path, to: &Path) -> Option<PathBuf> {
    let absolute = |p: &Path| {
        std::fs::canonicalize(p)
            .or_else(|_| std::path::absolute(p))
            .ok()
    };
    let (from, to) = (absolute(from)?, absolute(to)?);
    let common = from
        .components()
        .zip(to.components())
        .take_while(|(a, b)| a == b)
        .count();
    let mut relative: PathBuf = from.components().skip(common).map(|_| "..").collect();
    relative.extend(to.components().skip(common));
    Some(relative)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_relative_to_a_folder_climbs_out_of_it_and_down_to_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (out, data) = (dir.path().join("results/a"), dir.path().join("data/x.csv"));
        std::fs::create_dir_all(&out).unwrap();
        std::fs::create_dir_all(data.parent().unwrap()).unwrap();
        std::fs::write(&data, "x\n1\n").unwrap();
        let relative = relative_to(&out, &data).unwrap();
        assert_eq!(relative, Path::new("../../data/x.csv"));
        assert_eq!(
            std::fs::canonicalize(out.join(&relative)).unwrap(),
            std::fs::canonicalize(&data).unwrap()
        );
        assert_eq!(
            relative_to(&out, &out.join("d.csv")).unwrap(),
            Path::new("d.csv")
        );
    }
}
