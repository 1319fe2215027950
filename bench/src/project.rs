//! The benchmark service: builds svcgen, generates a project with a long
//! method `Sleep` (sleeps `parameters.sleep_ms`) and a quick no-op `Noop`,
//! edits their handler files as a user would, and builds it with cargo on a
//! PATH without `protoc`. Also times `svcgen new` against `cargo new`, a
//! cold debug build and the rebuild after an edit of one handler.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::stats;

/// The generated service's crate (and directory) name.
pub const CRATE: &str = "bench-svc";

/// `svcgen new` arguments of the benchmark service (two methods).
pub const NEW_ARGS: [&str; 7] = [
    "new",
    CRATE,
    "--method",
    "Sleep",
    "--quick-method",
    "Noop",
    "--no-input",
];

/// The long method's handler: sleeps without blocking its thread.
pub const SLEEP_HANDLER: &str = r#"//! The Sleep handler (benchmark): sleeps `parameters.sleep_ms`, then answers.

use std::time::Duration;

use crate::proto::SleepResponse;
use crate::svcgen::{HandlerError, TaskContext};

/// Sleeps `sleep_ms` milliseconds (default 0), then answers with the number
/// of inputs it was given.
pub async fn sleep(ctx: TaskContext) -> Result<SleepResponse, HandlerError> {
    let sleep_ms: u64 = ctx.parameter("sleep_ms")?.unwrap_or(0);
    if sleep_ms > 0 {
        tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
    }
    ctx.set_progress(100);
    Ok(SleepResponse {
        summary: "slept".to_string(),
        steps: ctx.inputs().len() as u32,
    })
}
"#;

/// The quick method's handler: nothing.
pub const NOOP_HANDLER: &str = r#"//! The Noop handler (benchmark): answers at once.

use crate::proto::NoopResponse;
use crate::svcgen::{HandlerError, TaskContext};

/// Does nothing and succeeds.
pub async fn noop(_ctx: TaskContext) -> Result<NoopResponse, HandlerError> {
    Ok(NoopResponse {
        summary: String::new(),
        steps: 0,
    })
}
"#;

/// The workspace root (this crate's parent directory).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

/// Where the benchmark service's sources live between runs (so cargo
/// rebuilds only what changed): a directory under the system's temp dir
/// named after this workspace, outside of it (cargo would take a project
/// inside the workspace for a stray member).
pub fn work_dir(root: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    root.hash(&mut hasher);
    std::env::temp_dir().join(format!("svcgen-bench-{:016x}", hasher.finish()))
}

/// Builds the svcgen binary of this workspace in release and returns its
/// path (from cargo's JSON messages, so `CARGO_TARGET_DIR` is honoured).
pub fn build_svcgen() -> Result<PathBuf> {
    let output = Command::new(cargo())
        .args([
            "build",
            "-p",
            "svcgen",
            "--release",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .context("running cargo build -p svcgen")?;
    if !output.status.success() {
        bail!("cargo build -p svcgen --release failed ({})", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    executable_from_messages(&stdout, "svcgen").context("cargo reported no svcgen executable")
}

/// The `executable` of the `compiler-artifact` message for target `name`
/// in cargo's `--message-format=json` output.
pub fn executable_from_messages(messages: &str, name: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| message["target"]["name"] == name)
        .filter_map(|message| message["executable"].as_str().map(PathBuf::from))
        .next_back()
}

/// Generates the benchmark service in `parent` and writes its handlers.
pub fn generate(svcgen: &Path, parent: &Path) -> Result<PathBuf> {
    run_ok(Command::new(svcgen).args(NEW_ARGS).current_dir(parent))?;
    let project = parent.join(CRATE);
    for (file, text) in [("sleep.rs", SLEEP_HANDLER), ("noop.rs", NOOP_HANDLER)] {
        let path = project.join("src/methods").join(file);
        if !path.is_file() {
            bail!("svcgen wrote no {}", path.display());
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(project)
}

/// Makes `dst` hold exactly the files of `src`, rewriting only those whose
/// bytes differ (so cargo rebuilds only what changed) and deleting the
/// rest. Returns how many files were written. At most `MAX_FILES` files.
pub fn sync_tree(src: &Path, dst: &Path) -> Result<usize> {
    const MAX_FILES: usize = 10_000;
    let wanted = list_files(src, MAX_FILES)?;
    let mut written = 0;
    for relative in &wanted {
        let from = src.join(relative);
        let to = dst.join(relative);
        let bytes = std::fs::read(&from).with_context(|| format!("reading {}", from.display()))?;
        if std::fs::read(&to).ok().as_deref() == Some(&bytes[..]) {
            continue;
        }
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&to, &bytes).with_context(|| format!("writing {}", to.display()))?;
        written += 1;
    }
    if dst.is_dir() {
        for relative in list_files(dst, MAX_FILES)? {
            if !wanted.contains(&relative) {
                let stale = dst.join(&relative);
                std::fs::remove_file(&stale)
                    .with_context(|| format!("removing {}", stale.display()))?;
            }
        }
    }
    Ok(written)
}

/// The files under `root`, relative to it, sorted; fails past `max`.
fn list_files(root: &Path, max: usize) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut dirs = vec![PathBuf::new()];
    while let Some(dir) = dirs.pop() {
        let full = root.join(&dir);
        let entries =
            std::fs::read_dir(&full).with_context(|| format!("listing {}", full.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("listing {}", full.display()))?;
            let relative = dir.join(entry.file_name());
            let kind = entry
                .file_type()
                .with_context(|| format!("inspecting {}", entry.path().display()))?;
            if kind.is_dir() {
                dirs.push(relative);
            } else {
                files.push(relative);
            }
            if files.len() + dirs.len() > max {
                bail!("more than {max} files under {}", root.display());
            }
        }
    }
    files.sort();
    Ok(files)
}

/// `cargo build [--release] --locked` of `project` into `target_dir`, on a
/// PATH without `protoc`; returns how long it took.
pub fn cargo_build(project: &Path, target_dir: &Path, release: bool) -> Result<Duration> {
    let mut command = Command::new(cargo());
    command.args(["build", "--locked"]);
    if release {
        command.arg("--release");
    }
    command
        .current_dir(project)
        .env("CARGO_TARGET_DIR", target_dir)
        .env("PATH", path_without_protoc()?)
        .env("PROTOC", "/nonexistent/protoc")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS");
    let started = Instant::now();
    run_ok(&mut command)?;
    Ok(started.elapsed())
}

/// The binary `cargo_build` made.
pub fn binary(target_dir: &Path, release: bool) -> PathBuf {
    target_dir
        .join(if release { "release" } else { "debug" })
        .join(CRATE)
}

/// An edit of the Sleep handler a user might make (one string changed);
/// `generation` makes each edit different from the last.
pub fn edit_handler(project: &Path, generation: u64) -> Result<()> {
    let path = project.join("src/methods/sleep.rs");
    let text = SLEEP_HANDLER.replace("\"slept\"", &format!("\"slept (edit {generation})\""));
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}

/// Median times of `svcgen new` (the benchmark service) and of
/// `cargo new` (a default binary crate), alternated, each in a fresh
/// directory.
pub fn time_new(svcgen: &Path, runs: usize) -> Result<(Duration, Duration)> {
    let mut svcgen_times = Vec::new();
    let mut cargo_times = Vec::new();
    for _ in 0..runs.max(1) {
        let dir = tempfile::tempdir().context("a temp dir")?;
        let started = Instant::now();
        run_ok(Command::new(svcgen).args(NEW_ARGS).current_dir(dir.path()))?;
        svcgen_times.push(started.elapsed());
        let started = Instant::now();
        run_ok(
            Command::new(cargo())
                .args(["new", "--quiet", "plain-crate"])
                .current_dir(dir.path()),
        )?;
        cargo_times.push(started.elapsed());
    }
    let median = |times: &[Duration]| stats::median(times).unwrap_or_default();
    Ok((median(&svcgen_times), median(&cargo_times)))
}

/// Cold debug build of a freshly generated project into a fresh target
/// dir.
pub fn time_cold_build(svcgen: &Path) -> Result<Duration> {
    let dir = tempfile::tempdir().context("a temp dir")?;
    let project = generate(svcgen, dir.path())?;
    cargo_build(&project, &dir.path().join("target"), false)
}

/// The rebuild of `project` (debug, into `target_dir`) after one handler
/// edit, once its dependencies are built.
pub fn time_rebuild(project: &Path, target_dir: &Path) -> Result<Duration> {
    cargo_build(project, target_dir, false)?;
    let generation = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_secs());
    edit_handler(project, generation)?;
    let rebuild = cargo_build(project, target_dir, false);
    // Put the handler back so the release build stays as generated.
    std::fs::write(project.join("src/methods/sleep.rs"), SLEEP_HANDLER)
        .context("restoring the Sleep handler")?;
    rebuild
}

/// The cargo that runs this harness, or `cargo`.
fn cargo() -> PathBuf {
    std::env::var_os("CARGO").map_or_else(|| PathBuf::from("cargo"), PathBuf::from)
}

/// PATH without any directory holding a `protoc`: generated projects must
/// build with their pure-Rust proto compiler alone.
fn path_without_protoc() -> Result<std::ffi::OsString> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).filter(|dir| !dir.join("protoc").exists());
    std::env::join_paths(dirs).context("rebuilding PATH")
}

/// Runs `command` with stdin closed; fails with the tail of its output.
fn run_ok(command: &mut Command) -> Result<()> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !output.status.success() {
        let tail = |bytes: &[u8]| {
            let text = String::from_utf8_lossy(bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(30)..].join("\n")
        };
        bail!(
            "{command:?} failed ({}):\n{}\n{}",
            output.status,
            tail(&output.stdout),
            tail(&output.stderr)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_executable_comes_from_cargos_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"name":"svcgen-runtime"},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"name":"svcgen"},"executable":"/t/release/svcgen"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
            "\nnot json\n"
        );
        assert_eq!(
            executable_from_messages(messages, "svcgen"),
            Some(PathBuf::from("/t/release/svcgen"))
        );
        assert_eq!(executable_from_messages(messages, "other"), None);
    }

    #[test]
    fn sync_tree_rewrites_only_what_changed_and_removes_the_rest() {
        let src = tempfile::tempdir().unwrap();
        let dst = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("a/b")).unwrap();
        std::fs::write(src.path().join("a/b/one.rs"), "one").unwrap();
        std::fs::write(src.path().join("two.rs"), "two").unwrap();
        assert_eq!(sync_tree(src.path(), dst.path()).unwrap(), 2);
        assert_eq!(sync_tree(src.path(), dst.path()).unwrap(), 0);
        std::fs::write(src.path().join("two.rs"), "2").unwrap();
        std::fs::write(dst.path().join("stale.rs"), "x").unwrap();
        assert_eq!(sync_tree(src.path(), dst.path()).unwrap(), 1);
        assert_eq!(
            std::fs::read_to_string(dst.path().join("two.rs")).unwrap(),
            "2"
        );
        assert!(!dst.path().join("stale.rs").exists());
        assert!(dst.path().join("a/b/one.rs").is_file());
    }
}
