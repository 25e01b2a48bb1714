//! `sweep slurm` and `sweep k8s`: ready-to-submit launchers for a sharded sweep. They only print
//! text; the scheduler runs `sweep run --shards N` in every task and `sweep merge` at the end.
//! Paths are made absolute so the printed launcher works from any directory; values are
//! shell-quoted.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{K8sArgs, SlurmArgs};
use crate::config;
use crate::error::{Error, Result};

/// `'text'`, safe for any shell word.
pub(super) fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).map_err(|e| Error::io(format!("resolving {}", path.display()), e))
}

/// The folder a launcher writes into: `--out`, or `results/<name>` (absolute).
fn out_dir(out: Option<&Path>, name: &str) -> Result<PathBuf> {
    absolute(&out.map_or_else(|| Path::new("results").join(name), Path::to_path_buf))
}

/// `--set K=V` words for every override, shell-quoted.
fn set_words(set: &[String]) -> String {
    set.iter()
        .map(|s| format!(" --set {}", shell_quote(s)))
        .collect()
}

/// Each `--prelude` must be one shell line.
fn check_prelude(prelude: &[String]) -> Result<()> {
    match prelude.iter().find(|p| p.contains(['\n', '\r'])) {
        Some(bad) => Err(Error::Usage(format!(
            "--prelude {bad:?} is not accepted: one shell line per flag (give the flag again for more)"
        ))),
        None => Ok(()),
    }
}

/// The `#SBATCH` lines of the array job (every option) and of the merge job (only those every
/// job must carry: account, QoS, reservation), checked.
fn sbatch_lines(args: &SlurmArgs) -> Result<(String, String)> {
    if let Some(bad) = args
        .sbatch_arg
        .iter()
        .find(|a| !a.starts_with('-') || a.contains(['\n', '\r']))
    {
        return Err(Error::Usage(format!(
            "--sbatch-arg {bad:?} is not accepted: give one sbatch option per flag, starting with '-', e.g. \
             --sbatch-arg=--gres=gpu:1"
        )));
    }
    let mut task = format!("#SBATCH --cpus-per-task={}\n", args.cpus_per_task);
    for (flag, value) in [
        ("partition", &args.partition),
        ("time", &args.time),
        ("constraint", &args.constraint),
    ] {
        if let Some(v) = value {
            task.push_str(&format!("#SBATCH --{flag}={v}\n"));
        }
    }
    let for_every_job = ["--account", "-A", "--qos", "-q", "--reservation"];
    let mut merge = String::new();
    for a in &args.sbatch_arg {
        task.push_str(&format!("#SBATCH {a}\n"));
        if for_every_job.iter().any(|f| a.starts_with(f)) {
            merge.push_str(&format!("#SBATCH {a}\n"));
        }
    }
    Ok((task, merge))
}

/// A bash launcher for the login node: writes the array job's script and the merge job's script
/// into the output folder and submits both, the merge with `--dependency=afterany`, so that it
/// runs (and names the indices to resubmit) even when a task failed. With adaptive seeds it
/// submits rounds: each round's merge job submits the next round when the verdict asks for one
/// (`sweep merge --round K` exits 6), through `round.sh`.
pub(super) fn slurm_script(args: &SlurmArgs) -> Result<String> {
    let sweep = config::load(&args.config, &args.set)?;
    if args.array == 0 {
        return Err(Error::Usage(
            "--array 0 is not accepted: give the number of array tasks, >= 1".into(),
        ));
    }
    let exe = std::env::current_exe().map_err(|e| Error::io("locating the sweep binary", e))?;
    let (config, out) = (
        absolute(&args.config)?,
        out_dir(args.out.as_deref(), &sweep.name)?,
    );
    let q = |p: &Path| shell_quote(&p.to_string_lossy());
    let (options, merge_options) = sbatch_lines(args)?;
    check_prelude(&args.prelude)?;
    let prelude: String = args.prelude.iter().map(|p| format!("{p}\n")).collect();
    let (n, name) = (args.array, &sweep.name);
    let (out_q, out_plain, exe) = (q(&out), out.display(), q(&exe));
    let adaptive = sweep.adaptive_seeds().is_some();
    let run = format!(
        "{prelude}exec {exe} run {} --out {out_q} --shards {n} --quiet{}{}",
        q(&config),
        set_words(&args.set),
        if adaptive { " --round \"$1\"" } else { "" }
    );
    let (merge, submit) = merge_and_submit(adaptive, &exe, &out_q, n);
    let rounds = if adaptive {
        " With adaptive seeds, in rounds:\n# each round's merge job submits the next round while the \
         verdict asks for more seeds (ROUND=K bash THIS_FILE\n# submits round K by hand)."
    } else {
        ""
    };
    Ok(format!(
        r#"#!/usr/bin/env bash
# Made by `sweep slurm`: sweep "{name}" as {n} Slurm array tasks (`sweep run --shards {n}`), then
# `sweep merge` once every task has ended.{rounds} Run it on the login node: bash THIS_FILE. To run
# some tasks again (the ones `sweep merge` names): ARRAY=3,17 bash THIS_FILE, or
# sbatch --array=3,17 {out_plain}/shard.sbatch.
set -euo pipefail
out={out_q}
mkdir -p "$out"
cat > "$out/shard.sbatch" <<'SBATCH'
#!/usr/bin/env bash
#SBATCH --job-name=sweep-{name}
{options}#SBATCH --output={out_plain}/slurm-%A_%a.out
{run}
SBATCH
cat > "$out/merge.sbatch" <<'SBATCH'
#!/usr/bin/env bash
#SBATCH --job-name=sweep-{name}-merge
#SBATCH --cpus-per-task=1
{merge_options}#SBATCH --output={out_plain}/slurm-merge-%j.out
{merge}
SBATCH
{submit}"#
    ))
}

/// The merge job's command and the launcher's submission lines: one array and its merge; with
/// adaptive seeds, `round.sh`, which submits a round, and a merge that submits the next round.
fn merge_and_submit(adaptive: bool, exe: &str, out_q: &str, n: usize) -> (String, String) {
    let last = n - 1;
    if adaptive {
        (
            format!(
                "code=0\n{exe} merge {out_q} --round \"$1\" || code=$?\n\
                 # 6: this round is done and the verdict asks for another: submit it.\n\
                 [ \"$code\" -eq 6 ] && exec env -u ARRAY bash {out_q}/round.sh $(($1 + 1))\n\
                 exit \"$code\""
            ),
            format!(
                "cat > \"$out/round.sh\" <<'SBATCH'\n#!/usr/bin/env bash\n\
                 # Submits round $1 of the adaptive seeds: its shards, then its merge.\nset -euo pipefail\n\
                 array=$(sbatch --parsable --array=\"${{ARRAY:-0-{last}}}\" {out_q}/shard.sbatch \"$1\")\n\
                 merge=$(sbatch --parsable --dependency=\"afterany:${{array%%;*}}\" {out_q}/merge.sbatch \"$1\")\n\
                 echo \"round $1: submitted array job $array ({n} tasks) and merge job $merge\"\nSBATCH\n\
                 bash \"$out/round.sh\" \"${{ROUND:-1}}\"\n\
                 echo \"each round's merge job submits the next one; watch with: {exe} status {out_q}\"\n"
            ),
        )
    } else {
        (
            format!("exec {exe} merge {out_q}"),
            format!(
                "array=$(sbatch --parsable --array=\"${{ARRAY:-0-{last}}}\" \"$out/shard.sbatch\")\n\
                 merge=$(sbatch --parsable --dependency=\"afterany:${{array%%;*}}\" \"$out/merge.sbatch\")\n\
                 echo \"submitted array job $array ({n} tasks) and merge job $merge; watch with: {exe} status {out_q}\"\n"
            ),
        )
    }
}

/// A Kubernetes manifest (JSON, which is YAML): the config as a ConfigMap, an Indexed Job of
/// `completions` shards on a ReadWriteMany claim, and a Job that merges as soon as every shard
/// is done (it retries while `sweep merge` exits 3). With adaptive seeds, one round's Jobs.
pub(super) fn k8s_manifest(args: &K8sArgs) -> Result<String> {
    let sweep = config::load(&args.config, &args.set)?;
    if args.completions == 0 || args.parallelism == 0 {
        return Err(Error::Usage(
            "--completions and --parallelism must be >= 1".into(),
        ));
    }
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| Error::io(format!("reading {}", args.config.display()), e))?;
    let name = format!(
        "sweep-{}",
        sweep.name.to_lowercase().replace(['_', ' ', '.'], "-")
    );
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| format!("/results/{}", sweep.name));
    let round = match (sweep.adaptive_seeds(), args.round) {
        (Some(_), k) => Some(k.unwrap_or(1)),
        (None, None) => None,
        (None, Some(_)) => {
            return Err(Error::Usage(
                "--round is for a sweep with adaptive seeds (ablation.seeds)".into(),
            ))
        }
    };
    // A round's Jobs are named after it, so that the next round's do not collide with them.
    let jobs = round.map_or(name.clone(), |k| format!("{name}-round{k}"));
    let pod = |container: serde_json::Value| {
        let mounts = json!([
            {"name": "results", "mountPath": "/results"},
            {"name": "config", "mountPath": "/config"}
        ]);
        let mut container = container;
        container["image"] = json!(args.image);
        container["volumeMounts"] = mounts;
        json!({
            "restartPolicy": "Never",
            "containers": [container],
            "volumes": [
                {"name": "results", "persistentVolumeClaim": {"claimName": args.claim}},
                {"name": "config", "configMap": {"name": name}}
            ]
        })
    };
    let shards = pod(json!({"name": "shard", "command": shard_command(args, &out, round)?}));
    let merge =
        pod(json!({"name": "merge", "command": ["sh", "-c", merge_loop(&out, round, &jobs)]}));
    let manifest = json!({
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name},
                "data": {"config.toml": text}
            },
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": format!("{jobs}-shards")},
                "spec": {
                    "completionMode": "Indexed",
                    "completions": args.completions,
                    "parallelism": args.parallelism,
                    "backoffLimitPerIndex": 2,
                    "template": {"spec": shards}
                }
            },
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": format!("{jobs}-merge")},
                "spec": {"backoffLimit": 2, "template": {"spec": merge}}
            }
        ]
    });
    Ok(serde_json::to_string_pretty(&manifest).expect("a manifest serializes") + "\n")
}

/// The merge Job's shell loop: `sweep merge` every 30 s while runs are missing (exit 3); for a
/// round of adaptive seeds, a done round whose verdict asks for the next (exit 6) ends the Job
/// with a note of how the next round is made, also said on stderr now.
fn merge_loop(out: &str, round: Option<u64>, jobs: &str) -> String {
    let out_q = shell_quote(out);
    let Some(k) = round else {
        return format!(
            "until sweep merge {out_q}; do code=$?; [ $code -eq 3 ] || exit $code; sleep 30; done"
        );
    };
    let next = format!(
        "round {k} is done and the verdict asks for round {}: apply the manifest of `sweep k8s ... \
         --round {}`",
        k + 1,
        k + 1
    );
    eprintln!(
        "sweep k8s: adaptive seeds: this manifest runs round {k} (Jobs {jobs}-shards and \
         {jobs}-merge). A Job cannot submit the next round without rights on the cluster: when the \
         merge Job's log says the next round is due, apply the output of the same `sweep k8s` \
         command with --round {}; when the verdict is settled it writes the tables instead.",
        k + 1
    );
    format!(
        "until sweep merge {out_q} --round {k}; do code=$?; \
         if [ $code -eq 6 ]; then echo {}; exit 0; fi; \
         [ $code -eq 3 ] || exit $code; sleep 30; done",
        shell_quote(&next)
    )
}

/// The command of each shard's container: `sweep run ... --shards N`, or with `--prelude`, a
/// shell that runs the lines and then becomes sweep (`exec`: the pod's stop signal reaches it).
fn shard_command(args: &K8sArgs, out: &str, round: Option<u64>) -> Result<Vec<String>> {
    let mut run = vec![
        "sweep".to_string(),
        "run".into(),
        "/config/config.toml".into(),
        "--out".into(),
        out.to_string(),
        "--shards".into(),
        args.completions.to_string(),
        "--quiet".into(),
    ];
    for s in &args.set {
        run.extend(["--set".to_string(), s.clone()]);
    }
    if let Some(k) = round {
        run.extend(["--round".to_string(), k.to_string()]);
    }
    check_prelude(&args.prelude)?;
    if !args.prelude.is_empty() {
        let words: Vec<String> = run.iter().map(|w| shell_quote(w)).collect();
        let script: String = args.prelude.iter().map(|p| format!("{p}\n")).collect();
        run = vec![
            "sh".into(),
            "-c".into(),
            format!("{script}exec {}", words.join(" ")),
        ];
    }
    Ok(run)
}
