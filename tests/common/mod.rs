//! Helpers shared by svcgen's integration tests: running the binary, the
//! customised service several suites generate, and checking what a command
//! did to a project (trees hashed before and after, refusals, the manifest).

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sha2::{Digest, Sha256};

/// The svcgen binary under test.
pub const SVCGEN: &str = env!("CARGO_BIN_EXE_svcgen");

/// Every non-default setting except the methods: ports, gRPC host, a dotted
/// proto package and an explicit proto service.
pub const CUSTOM_FLAGS: [&str; 10] = [
    "--http-port",
    "9000",
    "--grpc-port",
    "9001",
    "--grpc-host",
    "reports.internal",
    "--proto-package",
    "acme.reports.v1",
    "--proto-service",
    "ReportApi",
];

/// The directory `custom_new_args` creates.
pub const CUSTOM_DIR: &str = "Report_Builder";

/// `svcgen new` of the customised service: three methods in three spellings
/// (UpperCamel, snake_case, a capital run), one of them quick.
pub fn custom_new_args() -> Vec<&'static str> {
    let mut args = vec![
        "new",
        CUSTOM_DIR,
        "--method",
        "TrainModel",
        "--method",
        "score_batch",
        "--quick-method",
        "ExportONNX",
    ];
    args.extend(CUSTOM_FLAGS);
    args.push("--no-input");
    args
}

/// Runs `svcgen <args>` in `dir` with stdin closed (a prompt would fail, not hang).
pub fn svcgen(dir: &Path, args: &[&str]) -> Output {
    Command::new(SVCGEN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("run svcgen")
}

/// Runs `svcgen <args>` with stdin closed and neither key from the
/// environment (SERVICE_API_KEY, ORCHESTRATOR_API_KEY): only the flags given
/// count.
pub fn svcgen_without_keys(args: &[&str]) -> Output {
    Command::new(SVCGEN)
        .args(args)
        .env_remove("SERVICE_API_KEY")
        .env_remove("ORCHESTRATOR_API_KEY")
        .stdin(Stdio::null())
        .output()
        .expect("run svcgen")
}

/// Runs `svcgen <args>` in `dir` and panics with its stderr unless it succeeds.
pub fn svcgen_ok(dir: &Path, args: &[&str]) -> Output {
    let output = svcgen(dir, args);
    assert!(
        output.status.success(),
        "svcgen {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

// ------------------------------------------ running svcgen on a project

/// The stderr of `output`, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The stdout of `output`, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts `svcgen <args>` in `dir` succeeded; returns its stdout.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    let output = svcgen(dir, args);
    assert!(
        output.status.success(),
        "svcgen {args:?} failed ({:?}): {}",
        output.status.code(),
        stderr(&output)
    );
    stdout(&output)
}

/// `svcgen new <args> --no-input` in `parent`; returns the project root.
pub fn new_project(parent: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let mut args = vec!["new", name];
    args.extend_from_slice(extra);
    args.push("--no-input");
    fs::create_dir_all(parent).expect("create the parent directory");
    ok(parent, &args);
    parent.join(name)
}

/// Every entry under `root` (relative path → bytes; `None` for a directory).
pub type Tree = BTreeMap<String, Option<Vec<u8>>>;

pub fn tree(root: &Path) -> Tree {
    walkdir::WalkDir::new(root)
        .min_depth(1)
        .into_iter()
        .map(|entry| {
            let entry = entry.expect("walk");
            let path = relative(root, entry.path());
            let bytes = entry
                .file_type()
                .is_file()
                .then(|| fs::read(entry.path()).expect("read"));
            (path, bytes)
        })
        .collect()
}

/// `path` relative to `root`, with `/` separators.
pub fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .expect("under root")
        .to_string_lossy()
        .replace('\\', "/")
}

/// The paths added, removed or changed between two trees (empty: identical).
pub fn tree_changes(before: &Tree, after: &Tree) -> Vec<String> {
    let mut out = Vec::new();
    for (path, bytes) in before {
        match after.get(path) {
            None => out.push(format!("removed {path}")),
            Some(now) if now != bytes => out.push(format!("changed {path}")),
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|path| !before.contains_key(*path)) {
        out.push(format!("added {path}"));
    }
    out
}

/// Asserts the tree under `root` is still `before`; `what` names the culprit.
pub fn assert_unchanged(root: &Path, before: &Tree, what: &str) {
    let changes = tree_changes(before, &tree(root));
    assert!(changes.is_empty(), "{what} changed the tree: {changes:?}");
}

/// Runs `svcgen <args>` in `cwd` and checks: exit `code`, one `error: ` line
/// on stderr containing every one of `needles`, nothing on stdout, and the
/// tree under `root` byte-identical before and after. Returns the stderr.
pub fn refused(cwd: &Path, root: &Path, args: &[&str], code: i32, needles: &[&str]) -> String {
    let before = tree(root);
    let output = svcgen(cwd, args);
    let err = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "svcgen {args:?}: expected exit {code}; stderr: {err}"
    );
    assert!(
        err.starts_with("error: ") && err.ends_with('\n') && err.lines().count() == 1,
        "svcgen {args:?}: expected one `error: ` line, got: {err:?}"
    );
    for needle in needles {
        assert!(
            err.contains(needle),
            "svcgen {args:?}: stderr lacks {needle:?}: {err}"
        );
    }
    assert!(
        output.stdout.is_empty(),
        "svcgen {args:?}: refusal printed on stdout: {}",
        stdout(&output)
    );
    assert_unchanged(root, &before, &format!("refused svcgen {args:?}"));
    err
}

/// The text of `root/path`.
pub fn read(root: &Path, path: &str) -> String {
    fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// Writes `contents` to `root/path`, creating its parent directories.
pub fn write(root: &Path, path: &str, contents: &str) {
    let target = root.join(path);
    if let Some(parent) = target.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("create the folder of {path}: {e}"));
    }
    fs::write(target, contents).unwrap_or_else(|e| panic!("write {path}: {e}"));
}

/// SHA-256 (hex) of `text` with CRLF turned into LF, as svcgen.toml records it.
pub fn sha256_lf(text: &str) -> String {
    Sha256::digest(text.replace("\r\n", "\n").as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The parsed `svcgen.toml` of `root`.
pub fn manifest(root: &Path) -> toml::Table {
    toml::from_str(&read(root, "svcgen.toml")).expect("svcgen.toml parses")
}

/// `[[methods]]` as (name, kind, tag).
pub fn manifest_methods(root: &Path) -> Vec<(String, String, i64)> {
    let table = manifest(root);
    table["methods"]
        .as_array()
        .expect("[[methods]]")
        .iter()
        .map(|m| {
            (
                m["name"].as_str().expect("name").to_string(),
                m["kind"].as_str().expect("kind").to_string(),
                m["tag"].as_integer().expect("tag"),
            )
        })
        .collect()
}

/// `[owned]` paths, sorted.
pub fn owned_paths(root: &Path) -> Vec<String> {
    manifest(root)["owned"]
        .as_table()
        .expect("[owned]")
        .keys()
        .cloned()
        .collect()
}

/// Every `[owned]` hash matches the file on disk, and no staging file is left.
pub fn assert_owned_hashes_match(root: &Path) {
    let table = manifest(root);
    let owned = table["owned"].as_table().expect("[owned]");
    assert!(owned.len() > 5, "too few owned files: {owned:?}");
    for (path, hash) in owned {
        assert_eq!(
            hash.as_str(),
            Some(sha256_lf(&read(root, path)).as_str()),
            "[owned] hash of {path} does not match the file"
        );
    }
    let leftovers: Vec<String> = tree(root)
        .into_keys()
        .filter(|path| path.ends_with(".svcgen-new"))
        .collect();
    assert!(leftovers.is_empty(), "staging files left: {leftovers:?}");
}

// ------------------------------------------- a project made by svcgen 0.1.0

/// The project svcgen 0.1.0 made (runtime in `src/svcgen/`, manifest schema
/// 1), committed as a fixture: see tests/fixtures/svcgen-0.1.0/README.md.
/// Never change it in place; work on a copy from [`legacy_project`].
pub fn legacy_fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/svcgen-0.1.0/demo-svc")
}

/// Copies the svcgen 0.1.0 project into `into` (created when missing);
/// returns the copy's root, `into/demo-svc`.
pub fn legacy_project(into: &Path) -> PathBuf {
    let from = legacy_fixture();
    let root = into.join("demo-svc");
    for entry in walkdir::WalkDir::new(&from) {
        let entry = entry.expect("walk the svcgen 0.1.0 fixture");
        let relative = entry.path().strip_prefix(&from).expect("under the fixture");
        let target = root.join(relative);
        let copied = if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target)
        } else {
            // Read and write rather than fs::copy: the copy must be
            // writable even if the checkout is not.
            std::fs::read(entry.path()).and_then(|bytes| std::fs::write(&target, bytes))
        };
        copied.unwrap_or_else(|e| {
            panic!(
                "copy {} to {}: {e}",
                entry.path().display(),
                target.display()
            )
        });
    }
    root
}

/// The `[dependencies]` line a project needs for the vendored runtime, as
/// svcgen names it when it refuses to convert a svcgen 0.1.0 project (the
/// version is the workspace's svcgen-runtime crate's).
pub fn runtime_dependency_line() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("svcgen-runtime/Cargo.toml");
    let text = std::fs::read_to_string(&path).expect("read svcgen-runtime/Cargo.toml");
    let manifest: toml::Table = toml::from_str(&text).expect("svcgen-runtime/Cargo.toml parses");
    let version = manifest["package"]["version"]
        .as_str()
        .expect("svcgen-runtime's version");
    format!("svcgen-runtime = {{ version = \"{version}\", path = \"svcgen-runtime\" }}")
}

/// What a user does before `svcgen add-method` can convert a svcgen 0.1.0
/// project: adds [`runtime_dependency_line`] right under `[dependencies]`
/// in its (user-owned) Cargo.toml. Nothing else changes.
pub fn add_runtime_dependency(project: &Path) {
    let path = project.join("Cargo.toml");
    let text = std::fs::read_to_string(&path).expect("read the project's Cargo.toml");
    let header = "[dependencies]";
    assert_eq!(
        text.lines().filter(|line| *line == header).count(),
        1,
        "expected one {header} line in {}",
        path.display()
    );
    let updated = text.replacen(
        &format!("{header}\n"),
        &format!("{header}\n{}\n", runtime_dependency_line()),
        1,
    );
    assert_ne!(updated, text, "no `{header}` line ending in a newline");
    std::fs::write(&path, updated).expect("write the project's Cargo.toml");
}

// ------------------------------- generated services, built and started
//
// Used by the tests that run svcgen's commands against real generated
// services (exec, pipeline run).

/// The CARGO_TARGET_DIR every generated project is built in, so their
/// dependencies compile once: `SVCGEN_TEST_TARGET_DIR`, else
/// `target/generated-projects`.
pub fn generated_target_dir() -> PathBuf {
    std::env::var_os("SVCGEN_TEST_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/generated-projects"))
}

/// PATH without any directory holding a `protoc`: generated projects build
/// with the pure-Rust compiler alone.
pub fn path_without_protoc() -> std::ffi::OsString {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path).filter(|dir| !dir.join("protoc").exists());
    std::env::join_paths(dirs).expect("PATH")
}

/// `cargo <args>` in a generated project, in the shared target dir;
/// panics with the tail of its output unless it succeeds.
pub fn cargo_in(project: &Path, args: &[&str]) {
    let output = Command::new("cargo")
        .args(args)
        .current_dir(project)
        .env("CARGO_TARGET_DIR", generated_target_dir())
        .env("PATH", path_without_protoc())
        .env("PROTOC", "/nonexistent/protoc")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .stdin(Stdio::null())
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "cargo {args:?} failed in {}:\n{}",
        project.display(),
        describe(&output)
    );
}

/// `rustfmt --check` of `files`, run in `dir`, with rustfmt's defaults
/// exactly, edition 2021: an empty configuration, written to `dir` for
/// the run, so no rustfmt.toml around counts. Panics, saying how
/// to install it, when rustfmt cannot be run.
pub fn rustfmt_check<P: AsRef<std::ffi::OsStr>>(dir: &Path, files: &[P]) -> Output {
    let config = dir.join("rustfmt-defaults.toml");
    fs::write(&config, "").expect("write the empty rustfmt config");
    let output = Command::new("rustfmt")
        .args(["--check", "--edition", "2021", "--config-path"])
        .arg(&config)
        .args(files)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|err| {
            panic!("rustfmt is required by this test (rustup component add rustfmt): {err}")
        });
    fs::remove_file(&config).expect("remove the rustfmt config");
    output
}

/// A finished process for a failure message: its status and the last 60
/// lines of its stdout and of its stderr.
pub fn describe(output: &Output) -> String {
    let tail = |bytes: &[u8]| {
        let text = String::from_utf8_lossy(bytes);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    };
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        tail(&output.stdout),
        tail(&output.stderr)
    )
}

/// A built generated service running on free loopback ports, its log kept;
/// killed on drop.
pub struct RunningService {
    child: std::process::Child,
    /// The control address, `127.0.0.1:PORT`.
    pub http: String,
    /// The data address, `127.0.0.1:PORT`.
    pub grpc: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl RunningService {
    /// Starts `binary` with HOST=127.0.0.1, PORT=0 and GRPC_PORT=0, plus
    /// `env` (GRPC_HOST=127.0.0.1 makes its output references reachable
    /// here); waits (at most 30 s a line, 200 lines) for its `listening`
    /// line, which names both addresses. Its log is echoed as test output.
    pub fn start(binary: &Path, env: &[(&str, &str)]) -> RunningService {
        use std::io::BufRead;
        let mut child = Command::new(binary)
            .envs([
                ("HOST", "127.0.0.1"),
                ("PORT", "0"),
                ("GRPC_PORT", "0"),
                ("RUST_LOG", "info"),
                ("NO_COLOR", "1"),
            ])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| panic!("start {}: {err}", binary.display()));
        let stdout = child.stdout.take().expect("stdout");
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (lines_tx, lines) = std::sync::mpsc::channel();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                println!("[service] {line}");
                kept.lock().expect("log").push(line.clone());
                let _ = lines_tx.send(line);
            }
        });
        let mut service = RunningService {
            child,
            http: String::new(),
            grpc: String::new(),
            log,
        };
        for _ in 0..200 {
            let line = lines
                .recv_timeout(std::time::Duration::from_secs(30))
                .expect("the service logs its addresses within 30 s");
            if line.contains("listening") {
                service.http = log_field(&line, "http_addr=");
                service.grpc = log_field(&line, "grpc_addr=");
                return service;
            }
        }
        panic!("no `listening` line in the service's first 200 log lines");
    }

    /// The control URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Stops the service.
    pub fn stop(self) {}

    /// Every line the service has logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().expect("log").clone()
    }
}

impl Drop for RunningService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value after `key` in a log line, up to the next space.
fn log_field(line: &str, key: &str) -> String {
    let start = line
        .find(key)
        .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        + key.len();
    line[start..]
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_string()
}

/// A loopback address nothing listens on (a port bound, then released).
pub fn closed_loopback_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

// ------------------------------------------------------ conformance Python

/// The Python interpreter with the packages of
/// tests/conformance/requirements.txt (the orchestrator conformance driver,
/// the export checker, PyYAML): `SVCGEN_CONFORMANCE_PYTHON`, or a venv
/// under target/ made (or completed) on first use.
pub fn conformance_python() -> PathBuf {
    if let Some(python) = std::env::var_os("SVCGEN_CONFORMANCE_PYTHON") {
        return PathBuf::from(python);
    }
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let venv = manifest_dir.join("target/conformance-venv");
    let python = venv.join("bin/python");
    let ready = Command::new(&python)
        .args([
            "-c",
            "import grpc_tools, grpc_health, httpx, pydantic, yaml",
        ])
        .output()
        .is_ok_and(|output| output.status.success());
    if !ready {
        let requirements = manifest_dir.join("tests/conformance/requirements.txt");
        for command in [
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
            Command::new(&python)
                .args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    "-r",
                ])
                .arg(&requirements),
        ] {
            let output = command.stdin(Stdio::null()).output().expect("run");
            assert!(
                output.status.success(),
                "{command:?} failed:\n{}{}",
                stdout(&output),
                stderr(&output)
            );
        }
    }
    python
}

/// The protos of a two-node use case under `dir`: `alpha.Make` returns the
/// `MakeResponse` that `beta.Take` takes.
pub fn write_alpha_beta_protos(dir: &Path) {
    write(
        dir,
        "services/alpha/proto/alpha.proto",
        "syntax = \"proto3\";\npackage alpha;\n\nmessage MakeRequest {}\nmessage MakeResponse {\n  string text = 1;\n}\n\nservice Alpha {\n  rpc Make(MakeRequest) returns (MakeResponse);\n}\n",
    );
    write(
        dir,
        "services/beta/proto/beta.proto",
        "syntax = \"proto3\";\npackage beta;\n\nmessage MakeResponse {\n  string text = 1;\n}\nmessage TakeResponse {\n  string text = 1;\n}\n\nservice Beta {\n  rpc Take(MakeResponse) returns (TakeResponse);\n}\n",
    );
}

/// Runs tests/conformance/`script` on `arg` with [`conformance_python`].
pub fn run_conformance_script(script: &str, arg: &Path) -> Output {
    Command::new(conformance_python())
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/conformance")
                .join(script),
        )
        .arg(arg)
        .stdin(Stdio::null())
        .output()
        .expect("run python")
}

/// blueprint_check.py (the orchestrator's models, extra keys forbidden, and
/// its graph rules) on a folder with blueprint.json and dockerinfo.json:
/// the orchestrator accepts them.
pub fn assert_orchestrator_accepts(export: &Path) {
    let output = run_conformance_script("blueprint_check.py", export);
    let report = stdout(&output);
    assert!(
        output.status.success() && report.starts_with("ok: "),
        "blueprint_check.py refused {}: {report}{}",
        export.display(),
        stderr(&output)
    );
}
