//! Static checks of the generated Dockerfile (no Docker engine runs here):
//! multi-stage, a Rust image at least the crate's rust-version, everything
//! the build reads copied into the build stage (the vendored runtime too),
//! non-root, both ports exposed, the right binary, and no toolchain in the
//! final stage.

mod common;

struct Stage {
    base: String,
    lines: Vec<String>,
}

/// Splits a Dockerfile into stages (continuation lines joined).
fn stages(dockerfile: &str) -> Vec<Stage> {
    let joined = dockerfile.replace("\\\n", " ");
    let mut stages: Vec<Stage> = Vec::new();
    for line in joined
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
    {
        if let Some(rest) = line.strip_prefix("FROM ") {
            let base = rest.split_whitespace().next().unwrap_or("").to_string();
            stages.push(Stage {
                base,
                lines: Vec::new(),
            });
        } else if let Some(stage) = stages.last_mut() {
            stage.lines.push(line.to_string());
        }
    }
    stages
}

fn generate(args: &[&str], created: &str) -> (String, String) {
    let work = tempfile::tempdir().expect("temp dir");
    common::svcgen_ok(work.path(), args);
    let read =
        |name: &str| std::fs::read_to_string(work.path().join(created).join(name)).expect(name);
    (read("Dockerfile"), read("Cargo.toml"))
}

/// What `cargo build` reads in the project: its manifest, lock, build
/// script, proto and sources, and every path dependency (the vendored
/// runtime).
fn build_inputs(cargo_toml: &str) -> Vec<String> {
    let mut inputs: Vec<String> = ["Cargo.toml", "Cargo.lock", "build.rs", "proto", "src"]
        .map(String::from)
        .to_vec();
    for line in cargo_toml.lines() {
        if let Some((_, rest)) = line.split_once("path = \"") {
            let path = rest.split('"').next().unwrap_or_default();
            inputs.push(path.to_string());
        }
    }
    assert!(
        inputs.iter().any(|input| input == "svcgen-runtime"),
        "the runtime is vendored and depended on by path: {cargo_toml}"
    );
    inputs
}

fn version(text: &str) -> (u32, u32) {
    let mut parts = text
        .split('.')
        .map(|part| part.parse::<u32>().expect("numeric version"));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[test]
fn dockerfile_is_multi_stage_non_root_and_exposes_both_ports() {
    for (args, dir, binary, ports) in [
        (
            vec!["new", "demo-svc", "--no-input"],
            "demo-svc",
            "demo-svc",
            ("8080", "50051"),
        ),
        (
            vec![
                "new",
                "scorer",
                "--http-port",
                "9000",
                "--grpc-port",
                "9001",
                "--no-input",
            ],
            "scorer",
            "scorer",
            ("9000", "9001"),
        ),
    ] {
        let (dockerfile, cargo_toml) = generate(&args, dir);
        let stages = stages(&dockerfile);
        assert!(stages.len() >= 2, "multi-stage: {dockerfile}");

        let build = &stages[0];
        let tag = build
            .base
            .strip_prefix("rust:")
            .expect("builds on the official rust image");
        let rust_version = cargo_toml
            .lines()
            .find_map(|line| line.strip_prefix("rust-version = "))
            .expect("rust-version set")
            .trim_matches('"');
        assert!(
            version(tag.split('-').next().unwrap_or("")) >= version(rust_version),
            "{tag} < {rust_version}"
        );
        assert!(build
            .lines
            .iter()
            .any(|line| line.contains("cargo build --release --locked")));
        for needed in build_inputs(&cargo_toml) {
            let copied = build.lines.iter().any(|line| {
                line.strip_prefix("COPY ")
                    .is_some_and(|args| args.split_whitespace().any(|arg| arg == needed))
            });
            assert!(
                copied,
                "the build stage never copies {needed}:\n{dockerfile}"
            );
        }

        let last = stages.last().expect("final stage");
        assert!(
            !last.base.starts_with("rust"),
            "final stage must not be a toolchain image: {}",
            last.base
        );
        let final_text = last.lines.join("\n");
        for forbidden in ["cargo", "rustc", "rustup", "COPY . ", "COPY src"] {
            assert!(
                !final_text.contains(forbidden),
                "final stage contains {forbidden:?}:\n{final_text}"
            );
        }
        let user = last
            .lines
            .iter()
            .rev()
            .find_map(|line| line.strip_prefix("USER "))
            .expect("USER in final stage");
        assert!(user != "root" && user != "0", "runs as root: {user}");
        let expose = last
            .lines
            .iter()
            .find_map(|line| line.strip_prefix("EXPOSE "))
            .expect("EXPOSE");
        let exposed: Vec<&str> = expose.split_whitespace().collect();
        assert!(
            exposed.contains(&ports.0) && exposed.contains(&ports.1),
            "EXPOSE {expose}"
        );
        let binary_path = format!("/usr/local/bin/{binary}");
        assert!(
            final_text.contains(&format!("COPY --from=build {binary_path} {binary_path}")),
            "{final_text}"
        );
        assert!(
            final_text.contains(&format!("ENTRYPOINT [\"{binary_path}\"]")),
            "{final_text}"
        );
    }
}
