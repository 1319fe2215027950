//! In a terminal, `svcgen new` asks for what was not given (methods first,
//! defaults shown, Enter accepts). The terminal is a real pseudo-terminal
//! made by util-linux `script`, answered by typing ahead into it.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SVCGEN: &str = env!("CARGO_BIN_EXE_svcgen");

/// Runs `svcgen <args>` on a pseudo-terminal in `dir`, typing `keys`.
fn run_in_terminal(dir: &Path, args: &str, keys: &str) -> String {
    let mut child = Command::new("script")
        .args(["--quiet", "--return", "--command"])
        .arg(format!("{SVCGEN} {args}"))
        .arg("/dev/null")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` is needed to test prompts");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(keys.as_bytes()).expect("type answers");
    // Keep the terminal open until svcgen is done with it (bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("svcgen did not finish within 30 s on a terminal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(stdin);
    let output = child.wait_with_output().expect("output");
    let screen = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "svcgen failed on a terminal:\n{screen}"
    );
    screen
}

#[test]
fn asks_for_methods_ports_and_host_and_uses_the_answers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let screen = run_in_terminal(
        dir.path(),
        "new scorer",
        "TrainModel, score_batch\r9000\r\rscorer.internal\r",
    );
    for question in [
        "Methods",
        "HTTP (control) port",
        "gRPC (data) port",
        "gRPC host",
    ] {
        assert!(
            screen.contains(question),
            "no {question:?} prompt in:\n{screen}"
        );
    }
    let manifest =
        std::fs::read_to_string(dir.path().join("scorer/svcgen.toml")).expect("manifest");
    for line in [
        "name = \"TrainModel\"",
        "name = \"ScoreBatch\"",
        "http_port = 9000",
        "grpc_port = 50051",
        "grpc_host = \"scorer.internal\"",
    ] {
        assert!(
            manifest.lines().any(|l| l == line),
            "no {line:?} in\n{manifest}"
        );
    }
}

#[test]
fn enter_accepts_every_default_and_given_flags_are_not_asked() {
    let dir = tempfile::tempdir().expect("temp dir");
    let screen = run_in_terminal(
        dir.path(),
        "new scorer --method Rank --grpc-port 7000",
        "\r\r",
    );
    assert!(
        !screen.contains("Methods"),
        "asked for methods that were given:\n{screen}"
    );
    assert!(
        !screen.contains("gRPC (data) port"),
        "asked for a given port:\n{screen}"
    );
    let manifest =
        std::fs::read_to_string(dir.path().join("scorer/svcgen.toml")).expect("manifest");
    for line in [
        "name = \"Rank\"",
        "http_port = 8080",
        "grpc_port = 7000",
        "grpc_host = \"scorer\"",
    ] {
        assert!(
            manifest.lines().any(|l| l == line),
            "no {line:?} in\n{manifest}"
        );
    }
}
