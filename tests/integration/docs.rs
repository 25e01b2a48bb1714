//! The docs against the code: `docs/cli.md` is the `--help` of every command (regenerate it with
//! `SWEEP_BLESS=1 cargo test --release docs::`), every config key has its row in
//! `docs/reference/config.md`, every command its line in the README, the README stays a short
//! front door, prose lines stay within 100 characters, and `CITATION.cff` names this version.
//! (`scripts/check_docs.py`, run by `.ci/run`, runs the table-reading code blocks.)

use std::path::{Path, PathBuf};

use crate::common::sweep;

fn project() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(path: &str) -> String {
    std::fs::read_to_string(project().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn help(args: &[&str]) -> String {
    let output = sweep().args(args).arg("--help").output().unwrap();
    assert!(output.status.success(), "sweep {args:?} --help failed");
    String::from_utf8(output.stdout).unwrap()
}

/// The subcommands `sweep --help` lists (without `help`).
fn commands() -> Vec<String> {
    let root = help(&[]);
    let listed = root
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_string)
        .collect::<Vec<_>>();
    assert!(listed.len() >= 12, "{root}");
    listed
}

/// `docs/cli.md` as the help texts make it.
fn cli_reference() -> String {
    let mut md = String::from(
        "# Command-line reference\n\n\
         Every command's `--help`, generated: do not edit by hand. After changing a help text, run\n\
         `SWEEP_BLESS=1 cargo test --release docs::` to write this file again (the tests compare it).\n\n",
    );
    md += "Commands: ";
    md += &commands()
        .iter()
        .map(|c| format!("[`{c}`](#sweep-{c})"))
        .collect::<Vec<_>>()
        .join(", ");
    md += ".\n\n## sweep\n\n```text\n";
    md += help(&[]).trim_end();
    md += "\n```\n";
    for command in commands() {
        md += &format!("\n## sweep {command}\n\n```text\n");
        md += help(&[&command]).trim_end();
        md += "\n```\n";
    }
    md
}

#[test]
fn cli_reference_is_the_help_of_every_command() {
    let expected = cli_reference();
    let path = project().join("docs/cli.md");
    if std::env::var_os("SWEEP_BLESS").is_some() {
        std::fs::write(&path, &expected).unwrap();
    }
    let found = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        found == expected,
        "docs/cli.md differs from the --help texts: run `SWEEP_BLESS=1 cargo test --release docs::`"
    );
}

#[test]
fn every_config_key_has_its_row_in_the_config_reference() {
    let reference = text("docs/reference/config.md");
    let missing: Vec<String> = sweep::config::documented_keys()
        .into_iter()
        .filter(|(_, key)| !reference.contains(&format!("`{key}`")))
        .map(|(section, key)| format!("{section}.{key}"))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/reference/config.md lacks {missing:?}"
    );
    for section in ["[data]", "[train]", "[grid]", "[ablation]", "[[scenario]]"] {
        assert!(reference.contains(section), "no {section} section");
    }
}

#[test]
fn every_command_has_its_line_in_the_readme() {
    let readme = text("README.md");
    for command in commands() {
        assert!(
            readme.contains(&format!("`sweep {command}")),
            "README.md does not list `sweep {command}`"
        );
    }
}

#[test]
fn the_readme_is_a_front_door_and_prose_lines_stay_short() {
    let readme = text("README.md");
    let lines = readme.lines().count();
    assert!(lines <= 250, "README.md has {lines} lines (at most 250)");
    for command in [
        "cargo test --release",
        "configs/ablation.toml",
        "configs/quick.toml",
    ] {
        assert!(readme.contains(command), "README.md lacks {command}");
    }
    let mut files = vec![project().join("README.md"), project().join("CHANGELOG.md")];
    collect_markdown(&project().join("docs"), &mut files);
    let mut long = Vec::new();
    for file in &files {
        let body = std::fs::read_to_string(file).unwrap();
        let mut in_code = false;
        for (i, line) in body.lines().enumerate() {
            if line.trim_start().starts_with("```") {
                in_code = !in_code;
                continue;
            }
            // Code, tables and lines that are one long link or path are not prose.
            let prose = !in_code && !line.starts_with('|') && line.contains(' ');
            if prose && line.chars().count() > 100 {
                let name = file.strip_prefix(project()).unwrap().display().to_string();
                long.push(format!("{name}:{}", i + 1));
            }
        }
    }
    assert!(long.is_empty(), "prose lines over 100 characters: {long:?}");
}

fn collect_markdown(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_markdown(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") && !path.ends_with("cli.md") {
            out.push(path);
        }
    }
}

#[test]
fn the_citation_and_the_changelog_name_this_version() {
    let citation = text("CITATION.cff");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        citation
            .lines()
            .any(|l| l == format!("version: {version}") || l == format!("version: \"{version}\"")),
        "CITATION.cff does not give version {version}"
    );
    assert!(
        citation.contains("date-released:"),
        "CITATION.cff lacks date-released"
    );
    let changelog = text("CHANGELOG.md");
    assert!(
        changelog.contains(&format!("## {version}"))
            || changelog.contains(&format!("## [{version}]"))
    );
}
