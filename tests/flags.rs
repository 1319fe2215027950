//! Each `svcgen new` setting reaches every file that uses it: the crate name
//! from PATH, `--method`/`--quick-method`, `--http-port`, `--grpc-port`,
//! `--grpc-host`, `--proto-package` and `--proto-service`. Every test names
//! the files and the exact text expected there, checks the same places
//! carry the default when the flag is not given, and that the replaced
//! default is left nowhere it would be wrong.
//!
//! Only the project's own files are searched for leftovers: the vendored
//! runtime (`svcgen-runtime/`) is the workspace crate byte for byte whatever
//! the flags (its docs use `demo-svc` and the default ports as examples).

use std::collections::BTreeMap;

mod common;

/// The vendored runtime's directory in a generated project.
const RUNTIME: &str = "svcgen-runtime/";

/// A generated project, every file read as text (relative `/` path → text).
struct Project {
    files: BTreeMap<String, String>,
}

/// Runs `svcgen new <args> --no-input` in a fresh directory and reads the
/// project it creates at `created` (relative to that directory).
fn generate(args: &[&str], created: &str) -> Project {
    let work = tempfile::tempdir().expect("temp dir");
    let mut all = vec!["new"];
    all.extend(args);
    all.push("--no-input");
    common::svcgen_ok(work.path(), &all);
    let root = work.path().join(created);
    assert!(root.is_dir(), "svcgen {all:?} did not create {created}");
    let files = walkdir::WalkDir::new(&root)
        .into_iter()
        .map(|entry| entry.expect("readable entry"))
        .filter(|entry| entry.file_type().is_file())
        .map(|entry| {
            let relative = entry.path().strip_prefix(&root).expect("under the root");
            let text = std::fs::read_to_string(entry.path())
                .unwrap_or_else(|e| panic!("read {}: {e}", entry.path().display()));
            (relative.to_string_lossy().replace('\\', "/"), text)
        })
        .collect();
    Project { files }
}

/// Whether `c` can continue a name, a host or a number (so `8080` is not a
/// whole token of `18080`, nor `demo-svc` of `demo-svc-2`).
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Whether `token` occurs in `line` as a whole token.
fn has_token(line: &str, token: &str) -> bool {
    line.match_indices(token).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + token.len()..].chars().next();
        !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char)
    })
}

impl Project {
    fn file(&self, path: &str) -> &str {
        self.files.get(path).unwrap_or_else(|| {
            panic!(
                "{path} was not generated; files: {:?}",
                self.files.keys().collect::<Vec<_>>()
            )
        })
    }

    /// `path` has a line that is `line` once trimmed.
    fn assert_line(&self, path: &str, line: &str) {
        let text = self.file(path);
        assert!(
            text.lines().any(|l| l.trim() == line),
            "{path} should have the line `{line}`:\n{text}"
        );
    }

    /// `path` contains `fragment`.
    fn assert_contains(&self, path: &str, fragment: &str) {
        let text = self.file(path);
        assert!(
            text.contains(fragment),
            "{path} should contain `{fragment}`:\n{text}"
        );
    }

    fn assert_no_file(&self, path: &str) {
        assert!(
            !self.files.contains_key(path),
            "{path} should not be generated"
        );
    }

    /// Every `path:line: text` outside the vendored runtime where `token`
    /// is a whole token (or is in the file's path).
    fn mentions(&self, token: &str) -> Vec<String> {
        let mut found = Vec::new();
        for (path, text) in self.files.iter().filter(|(p, _)| !p.starts_with(RUNTIME)) {
            if has_token(path, token) {
                found.push(format!("{path} (its path)"));
            }
            for (number, line) in text.lines().enumerate() {
                if has_token(line, token) {
                    found.push(format!("{path}:{}: {line}", number + 1));
                }
            }
        }
        found
    }

    /// `token` is left in no file outside the vendored runtime.
    fn assert_nowhere(&self, token: &str, why: &str) {
        let found = self.mentions(token);
        assert!(
            found.is_empty(),
            "`{token}` should appear nowhere ({why}), found:\n{}",
            found.join("\n")
        );
    }

    /// Every line (any file, the vendored runtime included) that sets or
    /// shows a gRPC host.
    fn grpc_host_lines(&self) -> Vec<String> {
        let mut found = Vec::new();
        for (path, text) in &self.files {
            for (number, line) in text.lines().enumerate() {
                let lower = line.to_ascii_lowercase();
                if lower.contains("grpc_host") || lower.contains("grpc-host") {
                    found.push(format!("{path}:{}: {line}", number + 1));
                }
            }
        }
        found
    }
}

/// Where the HTTP port goes: (file, line) pairs and README fragments.
fn http_port_places(http: &str, grpc: &str) -> (Vec<(&'static str, String)>, Vec<String>) {
    let lines = vec![
        ("src/svcgen.rs", format!("default_http_port: {http},")),
        ("Dockerfile", format!("PORT={http} \\")),
        ("Dockerfile", format!("EXPOSE {http} {grpc}")),
        ("svcgen.toml", format!("http_port = {http}")),
    ];
    let readme = vec![
        format!("over **HTTP** (port {http});"),
        format!("# HTTP on :{http}, gRPC on :{grpc}"),
        format!("curl -s localhost:{http}/control/execute "),
        format!("curl -s localhost:{http}/control/status/$ID"),
        format!("curl -s localhost:{http}/control/output/$ID"),
        format!("| `PORT` | {http} |"),
        format!("docker run -p {http}:{http} -p {grpc}:{grpc} "),
    ];
    (lines, readme)
}

/// Where the gRPC port goes (`service` is `<package>.<Service>`).
fn grpc_port_places(
    http: &str,
    grpc: &str,
    service: &str,
) -> (Vec<(&'static str, String)>, Vec<String>) {
    let lines = vec![
        ("src/svcgen.rs", format!("default_grpc_port: {grpc},")),
        ("Dockerfile", format!("GRPC_PORT={grpc} \\")),
        ("Dockerfile", format!("EXPOSE {http} {grpc}")),
        ("svcgen.toml", format!("grpc_port = {grpc}")),
    ];
    let readme = vec![
        format!("over **gRPC** (port {grpc})."),
        format!("# HTTP on :{http}, gRPC on :{grpc}"),
        format!("grpcurl -plaintext -H \"x-task-id: $ID\" localhost:{grpc} {service}/"),
        format!("| `GRPC_PORT` | {grpc} |"),
        format!("docker run -p {http}:{http} -p {grpc}:{grpc} "),
    ];
    (lines, readme)
}

/// Where the gRPC host goes.
fn grpc_host_places(host: &str) -> (Vec<(&'static str, String)>, Vec<String>) {
    let lines = vec![
        ("src/svcgen.rs", format!("default_grpc_host: \"{host}\",")),
        ("Dockerfile", format!("GRPC_HOST={host} \\")),
        ("svcgen.toml", format!("grpc_host = \"{host}\"")),
    ];
    let readme = vec![format!("| `GRPC_HOST` | {host} |")];
    (lines, readme)
}

/// Where the proto package goes (`file` is its stem: `.` → `_`).
fn proto_package_places(
    package: &str,
    file: &str,
    service: &str,
) -> (Vec<(String, String)>, Vec<String>) {
    let lines = vec![
        (format!("proto/{file}.proto"), format!("package {package};")),
        (
            "src/lib.rs".to_string(),
            format!("tonic::include_proto!(\"{package}\");"),
        ),
        (
            "src/svcgen.rs".to_string(),
            format!("grpc_service: \"{package}.{service}\","),
        ),
        (
            "build.rs".to_string(),
            format!("compiler.open_files([\"{file}.proto\"])?;"),
        ),
        (
            "svcgen.toml".to_string(),
            format!("proto_package = \"{package}\""),
        ),
        (
            "svcgen.toml".to_string(),
            format!("proto_file = \"proto/{file}.proto\""),
        ),
    ];
    let readme = vec![
        format!("`build.rs` compiles `proto/{file}.proto`"),
        format!(" {package}.{service}/"),
        format!("| `proto/{file}.proto` | the fields of each"),
        format!("| `proto/{file}.proto` | shared |"),
    ];
    (lines, readme)
}

/// Where the proto service goes (`package` is the proto package, `client`
/// the `<module>::<Client>` tonic generates for the service).
fn proto_service_places(
    service: &str,
    package: &str,
    proto: &str,
    client: &str,
) -> (Vec<(String, String)>, Vec<String>) {
    let lines = vec![
        (proto.to_string(), format!("service {service} {{")),
        (
            "src/svcgen.rs".to_string(),
            format!("grpc_service: \"{package}.{service}\","),
        ),
        (
            "src/lib.rs".to_string(),
            format!("/// (`{client}`) for calling this service."),
        ),
        (
            "svcgen.toml".to_string(),
            format!("proto_service = \"{service}\""),
        ),
    ];
    let readme = vec![format!(" {package}.{service}/")];
    (lines, readme)
}

impl Project {
    fn assert_places<P: AsRef<str>>(&self, places: &(Vec<(P, String)>, Vec<String>)) {
        let (lines, readme) = places;
        for (path, line) in lines {
            self.assert_line(path.as_ref(), line);
        }
        for fragment in readme {
            self.assert_contains("README.md", fragment);
        }
    }
}

#[test]
fn http_port_reaches_every_file_that_uses_it() {
    let default = generate(&["port-svc", "--method", "TrainModel"], "port-svc");
    default.assert_places(&http_port_places("8080", "50051"));

    let project = generate(
        &["port-svc", "--method", "TrainModel", "--http-port", "9123"],
        "port-svc",
    );
    project.assert_places(&http_port_places("9123", "50051"));
    project.assert_nowhere("8080", "the default HTTP port was replaced");
    project.assert_line("src/svcgen.rs", "default_grpc_port: 50051,");
}

#[test]
fn grpc_port_reaches_every_file_that_uses_it() {
    let service = "port_svc.PortSvc";
    let default = generate(&["port-svc", "--method", "TrainModel"], "port-svc");
    default.assert_places(&grpc_port_places("8080", "50051", service));

    let project = generate(
        &["port-svc", "--method", "TrainModel", "--grpc-port", "9456"],
        "port-svc",
    );
    project.assert_places(&grpc_port_places("8080", "9456", service));
    project.assert_nowhere("50051", "the default gRPC port was replaced");
    project.assert_line("src/svcgen.rs", "default_http_port: 8080,");
}

#[test]
fn both_ports_together_stay_in_their_places() {
    let args = [
        "port-svc",
        "--method",
        "TrainModel",
        "--http-port",
        "9123",
        "--grpc-port",
        "9456",
    ];
    let project = generate(&args, "port-svc");
    project.assert_places(&http_port_places("9123", "9456"));
    project.assert_places(&grpc_port_places("9123", "9456", "port_svc.PortSvc"));
    project.assert_nowhere("8080", "the default HTTP port was replaced");
    project.assert_nowhere("50051", "the default gRPC port was replaced");
}

#[test]
fn grpc_host_reaches_every_file_that_uses_it_and_the_crate_name_is_not_the_host() {
    let crate_name = "report-builder";
    let default = generate(&[crate_name, "--method", "TrainModel"], crate_name);
    default.assert_places(&grpc_host_places(crate_name));

    let host = "reports.internal";
    let project = generate(
        &[crate_name, "--method", "TrainModel", "--grpc-host", host],
        crate_name,
    );
    project.assert_places(&grpc_host_places(host));
    // Every line that sets or shows a gRPC host, the vendored runtime
    // included (svcgen once generated a runtime whose default host was the
    // crate name although --grpc-host was given).
    let host_lines = project.grpc_host_lines();
    assert!(host_lines.len() >= 4, "{host_lines:#?}");
    let wrong: Vec<&String> = host_lines
        .iter()
        .filter(|line| line.contains(crate_name))
        .collect();
    assert!(
        wrong.is_empty(),
        "the crate name is the gRPC host here although --grpc-host {host} was given:\n{wrong:#?}"
    );
    // Nor as the host of an address (`report-builder:50051`), anywhere.
    let address = format!("{crate_name}:");
    for (path, text) in &project.files {
        let as_host = text
            .match_indices(&address)
            .any(|(at, _)| text[at + address.len()..].starts_with(|c: char| c.is_ascii_digit()));
        assert!(!as_host, "{path} uses the crate name as a host:\n{text}");
    }
    // The crate name stays where it is the crate's or the binary's name.
    project.assert_line("Cargo.toml", &format!("name = \"{crate_name}\""));
    project.assert_line(
        "Dockerfile",
        &format!("ENTRYPOINT [\"/usr/local/bin/{crate_name}\"]"),
    );
}

#[test]
fn proto_package_reaches_every_file_that_uses_it() {
    let service = "PkgSvc";
    let default = generate(&["pkg-svc", "--method", "TrainModel"], "pkg-svc");
    default.assert_places(&proto_package_places("pkg_svc", "pkg_svc", service));

    let package = "acme.reports.v1";
    let project = generate(
        &[
            "pkg-svc",
            "--method",
            "TrainModel",
            "--proto-package",
            package,
        ],
        "pkg-svc",
    );
    project.assert_places(&proto_package_places(package, "acme_reports_v1", service));
    project.assert_contains(
        "src/lib.rs",
        "/// Types generated from `proto/acme_reports_v1.proto`",
    );
    project.assert_contains(
        "build.rs",
        "// Compiles proto/acme_reports_v1.proto with protox",
    );
    project.assert_no_file("proto/pkg_svc.proto");
    assert_eq!(
        project
            .files
            .keys()
            .filter(|path| path.starts_with("proto/"))
            .collect::<Vec<_>>(),
        ["proto/acme_reports_v1.proto"],
        "the only proto"
    );
    // `pkg_svc`, the default package, is still the crate's Rust name: only
    // `use pkg_svc::…` and the RUST_LOG example may name it.
    let wrong: Vec<String> = project
        .mentions("pkg_svc")
        .into_iter()
        .filter(|found| {
            let line = found.split_once(": ").map_or("", |(_, line)| line);
            !(line.starts_with("use pkg_svc::") || line.contains("`pkg_svc=debug"))
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "the default package `pkg_svc` is left here although --proto-package {package} was given:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn proto_service_reaches_every_file_that_uses_it() {
    let default = generate(&["svc-name", "--method", "TrainModel"], "svc-name");
    default.assert_places(&proto_service_places(
        "SvcName",
        "svc_name",
        "proto/svc_name.proto",
        "svc_name_client::SvcNameClient",
    ));

    let project = generate(
        &[
            "svc-name",
            "--method",
            "TrainModel",
            "--proto-service",
            "ReportApi",
        ],
        "svc-name",
    );
    project.assert_places(&proto_service_places(
        "ReportApi",
        "svc_name",
        "proto/svc_name.proto",
        "report_api_client::ReportApiClient",
    ));
    // The default service name and its client are gone (not even inside
    // another name such as `SvcNameClient`).
    for (path, text) in project
        .files
        .iter()
        .filter(|(p, _)| !p.starts_with(RUNTIME))
    {
        for gone in ["SvcName", "svc_name_client"] {
            assert!(
                !text.contains(gone),
                "{path} still has `{gone}` although --proto-service ReportApi was given:\n{text}"
            );
        }
    }
}

#[test]
fn package_and_service_together_name_the_grpc_service() {
    let args = [
        "pkg-svc",
        "--method",
        "TrainModel",
        "--proto-package",
        "acme.reports.v1",
        "--proto-service",
        "ReportApi",
    ];
    let project = generate(&args, "pkg-svc");
    let proto = "proto/acme_reports_v1.proto";
    project.assert_places(&proto_package_places(
        "acme.reports.v1",
        "acme_reports_v1",
        "ReportApi",
    ));
    project.assert_places(&proto_service_places(
        "ReportApi",
        "acme.reports.v1",
        proto,
        "report_api_client::ReportApiClient",
    ));
    project.assert_contains(
        "README.md",
        "localhost:50051 acme.reports.v1.ReportApi/TrainModel",
    );
}

#[test]
fn the_crate_name_comes_from_the_last_path_component() {
    let project = generate(
        &["nested-parent/Report_Builder", "--method", "TrainModel"],
        "nested-parent/Report_Builder",
    );
    let (name, ident) = ("report-builder", "report_builder");
    let lines: [(&str, String); 17] = [
        ("Cargo.toml", format!("name = \"{name}\"")),
        ("Cargo.lock", format!("name = \"{name}\"")),
        ("src/main.rs", format!("use {ident}::svcgen;")),
        (
            "src/main.rs",
            format!("//! Starts {name} with the configuration in the environment (see README.md)."),
        ),
        (
            "tests/end_to_end.rs",
            format!("use {ident}::proto::LastResult;"),
        ),
        (
            "tests/end_to_end.rs",
            format!("use {ident}::svcgen::Service;"),
        ),
        (
            "tests/svcgen_methods.rs",
            format!("use {ident}::svcgen::Service;"),
        ),
        (
            "Dockerfile",
            format!("RUN cargo build --release --locked --bin {name} \\"),
        ),
        (
            "Dockerfile",
            format!("&& cp target/release/{name} /usr/local/bin/{name}"),
        ),
        (
            "Dockerfile",
            format!("COPY --from=build /usr/local/bin/{name} /usr/local/bin/{name}"),
        ),
        (
            "Dockerfile",
            format!("ENTRYPOINT [\"/usr/local/bin/{name}\"]"),
        ),
        ("svcgen.toml", format!("name = \"{name}\"")),
        // The defaults derived from it.
        ("proto/report_builder.proto", format!("package {ident};")),
        (
            "proto/report_builder.proto",
            "service ReportBuilder {".to_string(),
        ),
        ("src/svcgen.rs", format!("default_grpc_host: \"{name}\",")),
        (
            "src/svcgen.rs",
            format!("grpc_service: \"{ident}.ReportBuilder\","),
        ),
        (
            "svcgen.toml",
            "proto_service = \"ReportBuilder\"".to_string(),
        ),
    ];
    for (path, line) in &lines {
        project.assert_line(path, line);
    }
    project.assert_contains("src/lib.rs", &format!("//! {name}: a pipeline service"));
    project.assert_contains(
        "tests/end_to_end.rs",
        &format!("//! End-to-end test of {name}:"),
    );
    project.assert_contains(
        "proto/report_builder.proto",
        &format!("// The gRPC data interface of {name}:"),
    );
    for fragment in [
        format!("# {name}\n"),
        format!("──HTTP (control)──► {name} ──gRPC (data)──►"),
        format!("`{ident}=debug,tonic=info`"),
        format!("docker build -t {name} ."),
        format!("-p 50051:50051 {name}\n"),
    ] {
        project.assert_contains("README.md", &fragment);
    }
    // The directory as typed, and its parent, are not names of anything.
    for gone in ["Report_Builder", "nested-parent"] {
        project.assert_nowhere(
            gone,
            "the crate name is the kebab-case of the last component",
        );
    }
    // Nor is `demo-svc`, the name the runtime's docs use as an example.
    project.assert_nowhere("demo-svc", "an example name of the runtime docs");
    project.assert_nowhere("demo_svc", "an example name of the runtime docs");
}

#[test]
fn methods_reach_every_file_that_uses_them_in_command_line_order() {
    let project = generate(
        &[
            "ml-svc",
            "--method",
            "TrainModel",
            "--quick-method",
            "ExportONNX",
            "--method",
            "score_batch",
        ],
        "ml-svc",
    );
    // (name, kind, tag, handler, prost's Rust type prefix)
    let methods = [
        ("TrainModel", "long", 3, "train_model", "TrainModel"),
        ("ExportONNX", "quick", 4, "export_onnx", "ExportOnnx"),
        ("ScoreBatch", "long", 5, "score_batch", "ScoreBatch"),
    ];
    let proto = "proto/ml_svc.proto";
    for (name, kind, tag, handler, rust) in methods {
        let file = format!("src/methods/{handler}.rs");
        let kind_variant = if kind == "long" { "Long" } else { "Quick" };
        for (path, line) in [
            (
                "src/svcgen.rs",
                format!(
                    "\"{name}\": {kind_variant} => crate::methods::{handler}::{handler} as {rust},"
                ),
            ),
            ("src/methods/mod.rs", format!("pub mod {handler};")),
            (proto, format!("message {name}Request {{}}")),
            (proto, format!("message {name}Response {{")),
            (proto, format!("{name}Response {handler} = {tag};")),
            (
                proto,
                format!("rpc {name}({name}Request) returns ({name}Response);"),
            ),
            (
                &file,
                format!(
                    "pub async fn {handler}(ctx: TaskContext) -> Result<{rust}Response, HandlerError> {{"
                ),
            ),
            (&file, format!("use crate::proto::{rust}Response;")),
            (&file, format!("\"{name} started\"")),
            (&file, format!("Ok({rust}Response {{")),
            (
                &file,
                format!(
                    "let steps: u32 = ctx.parameter(\"steps\")?.unwrap_or({});",
                    if kind == "long" { 5 } else { 3 }
                ),
            ),
        ] {
            project.assert_line(path, &line);
        }
        let blocking = project.file(&file).contains("tokio::task::spawn_blocking(");
        assert_eq!(
            blocking,
            kind == "quick",
            "{file}: only quick methods compute on a blocking thread"
        );
        project.assert_contains(
            "README.md",
            &format!("| `src/methods/{handler}.rs` | the body of `{name}` ({kind}): "),
        );
        project.assert_contains("README.md", &format!("return a `{rust}Response` |"));
        project.assert_contains(
            "svcgen.toml",
            &format!("[[methods]]\nname = \"{name}\"\nkind = \"{kind}\"\ntag = {tag}\n"),
        );
    }
    // Command-line order where order matters: the method table, the test
    // of the registered methods, the oneof tags (above) and the manifest.
    let svcgen_rs = project.file("src/svcgen.rs");
    let at = |text: &str, name: &str| text.find(&format!("\"{name}\":")).expect(name);
    assert!(
        at(svcgen_rs, "TrainModel") < at(svcgen_rs, "ExportONNX")
            && at(svcgen_rs, "ExportONNX") < at(svcgen_rs, "ScoreBatch"),
        "src/svcgen.rs lists the methods in command-line order:\n{svcgen_rs}"
    );
    project.assert_contains(
        "tests/svcgen_methods.rs",
        "const METHODS: &str = \"\nTrainModel\nExportONNX\nScoreBatch\n\";",
    );
    // The first method is the README's example.
    for fragment in [
        "-d '{\"method\": \"TrainModel\", ",
        " ml_svc.MlSvc/TrainModel\n",
        "service.run_to_completion(\"TrainModel\", ",
        "let result: TrainModelResponse = service.fetch(\"TrainModel\", ",
    ] {
        project.assert_contains("README.md", fragment);
    }
    // The raw snake_case name became ScoreBatch; the default method
    // `Process` (used when no method is given) is not generated.
    project.assert_nowhere(
        "Process",
        "methods were given, so there is no default method",
    );
    project.assert_no_file("src/methods/process.rs");
    assert_eq!(
        project
            .files
            .keys()
            .filter(|path| path.starts_with("src/methods/"))
            .collect::<Vec<_>>(),
        [
            "src/methods/export_onnx.rs",
            "src/methods/mod.rs",
            "src/methods/score_batch.rs",
            "src/methods/train_model.rs",
        ]
    );
}

#[test]
fn without_methods_the_default_method_is_process() {
    let project = generate(&["plain-svc"], "plain-svc");
    project.assert_line(
        "src/svcgen.rs",
        "\"Process\": Long => crate::methods::process::process as Process,",
    );
    project.assert_line("src/methods/mod.rs", "pub mod process;");
    project.assert_line(
        "src/methods/process.rs",
        "pub async fn process(ctx: TaskContext) -> Result<ProcessResponse, HandlerError> {",
    );
    project.assert_line("proto/plain_svc.proto", "ProcessResponse process = 3;");
    project.assert_contains(
        "svcgen.toml",
        "[[methods]]\nname = \"Process\"\nkind = \"long\"\ntag = 3\n",
    );
}

/// Not a flag test: the token search the tests above rely on.
#[test]
fn tokens_are_whole() {
    assert!(has_token("EXPOSE 8080 50051", "8080"));
    assert!(has_token("curl -s localhost:8080/control", "8080"));
    assert!(has_token("proto/pkg_svc.proto", "pkg_svc"));
    assert!(has_token("`demo_svc=debug,tonic=info`", "demo_svc"));
    assert!(!has_token("port 18080", "8080"));
    assert!(!has_token("demo-svc-2", "demo-svc"));
}
