//! End-to-end tests of the `svcgen` command line: exit codes, error lines,
//! and what is (and is not) written to disk.

use assert_cmd::Command;
use predicates::prelude::*;
use std::fs;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// `svcgen` run in `dir` with a timeout. assert_cmd gives the child a pipe
/// as stdin (not a terminal) and keeps it open, so a stray prompt or stdin
/// read would hang and fail the test instead of passing silently.
fn svcgen(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("svcgen").expect("binary builds");
    cmd.current_dir(dir).timeout(Duration::from_secs(60));
    cmd
}

/// Every entry under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            let e = e.expect("readable");
            e.path()
                .strip_prefix(dir)
                .expect("under dir")
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    out.sort();
    out
}

/// Runs `svcgen new <args>` in a fresh temp dir and checks it is rejected
/// with exit 2, one `error: ` line containing `rule`, and nothing created.
fn rejected(args: &[&str], rule: &str) {
    let tmp = TempDir::new().expect("tempdir");
    let output = svcgen(tmp.path())
        .arg("new")
        .args(args)
        .assert()
        .code(2)
        .stderr(predicate::str::contains(rule))
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("error: ") && stderr.trim_end().lines().count() == 1,
        "one error line for {args:?}, got: {stderr}"
    );
    assert!(
        tree(tmp.path()).is_empty(),
        "nothing may be created for {args:?}: {:?}",
        tree(tmp.path())
    );
}

#[test]
fn rejects_bad_crate_names() {
    rejected(
        &["1abc"],
        r#"invalid crate name "1abc": must not start with a digit"#,
    );
    rejected(&["a.b"], "only ASCII letters, digits");
    rejected(&["héllo"], "only ASCII letters, digits");
    rejected(&[&"a".repeat(65)], "at most 64 characters");
    rejected(&[".."], "must not leave the target directory");
    rejected(&["."], "must not leave the target directory");
    rejected(&["sub/.."], "must not leave the target directory");
    rejected(&["async"], "Rust keyword");
    rejected(&["Self"], "Rust keyword");
    rejected(&["super"], "Rust keyword");
    rejected(&["test"], "reserved");
    rejected(&["proc-macro"], "reserved");
    rejected(&["tokio"], "dependency of the generated project");
    rejected(&["tonic-prost"], "dependency of the generated project");
    rejected(&["serde_json"], "dependency of the generated project");
    rejected(&["deps"], "cargo refuses");
    rejected(&["incremental"], "cargo refuses");
    rejected(&["out/Build"], "cargo refuses");
}

#[test]
fn rejects_bad_method_names() {
    rejected(
        &["svc", "--method", "1abc"],
        r#"invalid method name "1abc": must not start with a digit"#,
    );
    rejected(&["svc", "--method", ""], "must not be empty");
    rejected(&["svc", "--method", "a b"], "only ASCII letters");
    rejected(&["svc", "--method", "../x"], "only ASCII letters");
    rejected(&["svc", "--method", &"M".repeat(65)], "at most 64");
    rejected(&["svc", "--method", "async"], "Rust keyword");
    rejected(&["svc", "--method", "Await"], "Rust keyword");
    rejected(&["svc", "--method", "gen"], "Rust keyword");
    rejected(&["svc", "--method", "SELF"], "Rust keyword");
    rejected(&["svc", "--quick-method", "Crate"], "Rust keyword");
    rejected(&["svc", "--method", "Std"], "reserved");
    rejected(&["svc", "--method", "GetLastResult"], "collides");
    rejected(&["svc", "--method", "empty"], "collides");
    rejected(&["svc", "--method", "LastResult"], "collides");
    rejected(&["svc", "--method", "Health"], "collides");
    rejected(&["svc", "--method", "check"], "collides");
    rejected(&["svc", "--method", "Watch"], "collides");
    rejected(&["svc", "--method", "task_id"], "collides");
    rejected(&["svc", "--method", "Method"], "collides");
    rejected(&["svc", "--method", "result"], "collides");
    rejected(
        &["svc", "--method", "TrainModel", "--method", "train_model"],
        "collides",
    );
    rejected(
        &[
            "svc",
            "--method",
            "ExportONNX",
            "--quick-method",
            "ExportOnnx",
        ],
        "collides",
    );
    rejected(
        &["svc", "--method", "Foo", "--method", "FooRequest"],
        "collides",
    );
    rejected(&["svc", "--method", "New"], "client");
    // tonic's `struct DemoSvc` for method Demo would shadow trait `DemoSvc`.
    rejected(&["demo-svc", "--method", "Demo"], "shadowing");
}

#[test]
fn rejects_bad_proto_and_host_names() {
    rejected(&["svc", "--proto-service", "Empty"], "equals the message");
    rejected(
        &["svc", "--proto-service", "LastResult"],
        "equals the message",
    );
    rejected(
        &["svc", "--method", "Foo", "--proto-service", "FooRequest"],
        "equals the request message",
    );
    rejected(&["svc", "--proto-service", "lower"], "UpperCamelCase");
    rejected(
        &["svc", "--proto-service", "Has_Underscore"],
        "UpperCamelCase",
    );
    rejected(&["empty"], "pass --proto-service");
    rejected(&["svc", "--proto-package", "Acme.v1"], "lowercase");
    rejected(&["svc", "--proto-package", "acme..v1"], "empty segment");
    rejected(&["svc", "--proto-package", "acme.type.v1"], "Rust keyword");
    rejected(&["svc", "--grpc-host", "bad_host"], "hostname");
    rejected(&["svc", "--grpc-host=-bad"], "must not start or end");
    rejected(
        &["svc", "--http-port", "9000", "--grpc-port", "9000"],
        "must differ",
    );
}

#[test]
fn bad_usage_exits_2() {
    let tmp = TempDir::new().expect("tempdir");
    svcgen(tmp.path())
        .args(["new", "svc", "--http-port", "99999"])
        .assert()
        .code(2);
    svcgen(tmp.path()).args(["new"]).assert().code(2);
    // clap refuses an empty PATH itself.
    svcgen(tmp.path()).args(["new", ""]).assert().code(2);
    svcgen(tmp.path())
        .args(["new", "svc", "--bogus"])
        .assert()
        .code(2);
    assert!(tree(tmp.path()).is_empty());
}

#[test]
fn new_creates_the_project() {
    let tmp = TempDir::new().expect("tempdir");
    svcgen(tmp.path())
        .args(["new", "out/My_Service", "--method", "ExportONNX"])
        .args(["--quick-method", "train-model"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Created service `my-service` at out/My_Service",
        ))
        .stdout(predicate::str::contains("cd out/My_Service"))
        .stdout(predicate::str::contains("cargo test"));
    let root = tmp.path().join("out/My_Service");
    assert!(root.join("Cargo.toml").is_file());
    assert!(root.join("src/main.rs").is_file());
    assert!(fs::read_to_string(root.join("Cargo.toml"))
        .expect("Cargo.toml")
        .contains("my-service"));
    // No staging directory is left beside the target.
    assert_eq!(
        tree(&tmp.path().join("out")).first().map(String::as_str),
        Some("My_Service")
    );
    assert!(tree(&tmp.path().join("out"))
        .iter()
        .all(|p| !p.contains(".svcgen-staging")));
}

#[test]
fn new_fills_an_empty_existing_dir() {
    let tmp = TempDir::new().expect("tempdir");
    fs::create_dir(tmp.path().join("svc")).expect("mkdir");
    svcgen(tmp.path()).args(["new", "svc"]).assert().success();
    assert!(tmp.path().join("svc/Cargo.toml").is_file());
    assert_eq!(fs::read_dir(tmp.path()).expect("read").count(), 1);
}

#[test]
fn never_prompts_without_a_terminal() {
    // stdin is /dev/null (not a terminal), no --no-input: defaults, no prompt.
    let tmp = TempDir::new().expect("tempdir");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_svcgen"))
        .current_dir(tmp.path())
        .args(["new", "svc"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn svcgen");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("svcgen hung with stdin at /dev/null");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success());
    assert!(tmp.path().join("svc/Cargo.toml").is_file());
}

#[test]
fn no_input_uses_defaults() {
    let tmp = TempDir::new().expect("tempdir");
    svcgen(tmp.path())
        .args(["new", "svc", "--no-input"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Process"));
    assert!(tmp.path().join("svc/src/main.rs").is_file());
}

#[test]
fn dry_run_lists_files_and_writes_nothing() {
    let tmp = TempDir::new().expect("tempdir");
    svcgen(tmp.path())
        .args(["new", "out/svc", "--dry-run", "--method", "TrainModel"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Cargo.toml"))
        .stdout(predicate::str::contains("src/main.rs"))
        .stdout(predicate::str::contains("nothing was written"));
    assert!(tree(tmp.path()).is_empty());
}

#[test]
fn refuses_a_non_empty_target_and_leaves_it_alone() {
    let tmp = TempDir::new().expect("tempdir");
    let target = tmp.path().join("svc");
    fs::create_dir(&target).expect("mkdir");
    fs::write(target.join("Cargo.toml"), "mine").expect("write");
    for extra in [&[][..], &["--dry-run"][..]] {
        svcgen(tmp.path())
            .args(["new", "svc"])
            .args(extra)
            .assert()
            .code(1)
            .stderr(predicate::str::starts_with("error: "))
            .stderr(predicate::str::contains("not empty"))
            .stderr(predicate::str::contains("--force"));
        assert_eq!(tree(tmp.path()), vec!["svc", "svc/Cargo.toml"]);
        assert_eq!(
            fs::read_to_string(target.join("Cargo.toml")).expect("read"),
            "mine"
        );
    }
}

#[test]
fn refuses_a_file_as_target() {
    let tmp = TempDir::new().expect("tempdir");
    fs::write(tmp.path().join("svc"), "a file").expect("write");
    svcgen(tmp.path())
        .args(["new", "svc", "--force"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("not a directory"));
    assert_eq!(
        fs::read_to_string(tmp.path().join("svc")).expect("read"),
        "a file"
    );
}

#[test]
fn force_overwrites_svcgen_files_and_deletes_nothing() {
    let tmp = TempDir::new().expect("tempdir");
    let target = tmp.path().join("svc");
    fs::create_dir_all(target.join("src")).expect("mkdir");
    fs::write(target.join("Cargo.toml"), "old").expect("write");
    fs::write(target.join("src/main.rs"), "old").expect("write");
    fs::write(target.join("NOTES.md"), "keep me").expect("write");
    fs::write(target.join("src/extra.rs"), "keep me too").expect("write");

    // Dry run with --force: lists, marks overwrites, touches nothing.
    svcgen(tmp.path())
        .args(["new", "svc", "--force", "--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains("overwrite"));
    assert_eq!(
        fs::read_to_string(target.join("Cargo.toml")).expect("read"),
        "old"
    );

    svcgen(tmp.path())
        .args(["new", "svc", "--force"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Created service `svc`"));
    assert_ne!(
        fs::read_to_string(target.join("Cargo.toml")).expect("read"),
        "old"
    );
    assert_ne!(
        fs::read_to_string(target.join("src/main.rs")).expect("read"),
        "old"
    );
    assert_eq!(
        fs::read_to_string(target.join("NOTES.md")).expect("read"),
        "keep me"
    );
    assert_eq!(
        fs::read_to_string(target.join("src/extra.rs")).expect("read"),
        "keep me too"
    );
    assert!(
        tree(&target).iter().all(|p| !p.contains("svcgen-tmp")),
        "no temp files left: {:?}",
        tree(&target)
    );
}
