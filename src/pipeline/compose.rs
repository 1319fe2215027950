//! `svcgen pipeline compose`: a docker compose file running every node of a
//! use case on the platform's external `ai-effect-services` network.
//!
//! One service per node, named after its `ip_address` (the name the
//! orchestrator calls and `GRPC_HOST`), built from the node folder's
//! Dockerfile and tagged with the image the export names. Host ports count
//! up from 8080 (HTTP) and 50051 (gRPC), one pair per node in pipeline
//! order (a node after those that feed it), so they never clash. `SERVICE_API_KEY` and `DATA_PORT_AUTH` are passed through from
//! the shell only when set there (a blank key would stop the service).

use super::export_doc::{container_name, image};
use super::services::SERVICES_DIR;
use super::usecase::{violation, Node, UseCase};
use crate::write::{self, Change};
use anyhow::{Context, Result};
use clap::Args;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The compose file's default name, in the use-case folder.
pub const FILE_NAME: &str = "docker-compose.yml";

/// The platform's docker network, created once outside compose.
pub const NETWORK: &str = "ai-effect-services";

/// The first host port for the nodes' HTTP control ports.
pub const FIRST_HTTP_HOST_PORT: u16 = 8080;

/// The first host port for the nodes' gRPC data ports.
pub const FIRST_GRPC_HOST_PORT: u16 = 50051;

/// Flags of `svcgen pipeline compose`.
#[derive(Debug, Args)]
pub struct ComposeArgs {
    /// The use-case folder (default: the nearest folder with connections.json).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// The file to write [default: DIR/docker-compose.yml].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// One node as compose runs it.
struct ComposeService<'a> {
    node: &'a Node,
    context: String,
    http_host_port: u16,
    grpc_host_port: u16,
}

/// Runs `svcgen pipeline compose`.
pub fn run(args: ComposeArgs) -> anyhow::Result<String> {
    let dir = UseCase::locate(args.dir.as_deref())?;
    let usecase = UseCase::load(&dir)?;
    let dir_name = super::export_doc::use_case_dir_name(&usecase)?;
    let out = args.out.unwrap_or_else(|| dir.join(FILE_NAME));
    let services = compose_services(&usecase, &out)?;
    let text = render(&usecase, &dir_name, &services);
    write_file(&out, &text)?;
    let mut report = format!("Wrote {} ({} services)\n", out.display(), services.len());
    for s in &services {
        let _ = writeln!(
            report,
            "  {}: http://localhost:{} (HTTP), localhost:{} (gRPC)",
            s.node.ip_address, s.http_host_port, s.grpc_host_port
        );
    }
    let _ = writeln!(
        report,
        "Run: docker network create {NETWORK} (once), then docker compose -f {} up --build",
        out.display()
    );
    Ok(report)
}

fn compose_services<'a>(usecase: &'a UseCase, out: &Path) -> Result<Vec<ComposeService<'a>>> {
    let base = out.parent().unwrap_or(Path::new(""));
    let mut services = Vec::new();
    for (i, node) in super::graph::node_order(usecase).into_iter().enumerate() {
        let folder = usecase.dir.join(SERVICES_DIR).join(&node.dir_name);
        if !folder.join("Dockerfile").is_file() {
            return Err(violation(
                &node.dir_name,
                None,
                format!(
                    "no Dockerfile in {}; compose builds every node from its own",
                    folder.display()
                ),
            ));
        }
        let offset = u16::try_from(i).context("too many nodes")?;
        services.push(ComposeService {
            node,
            context: relative_to(&folder, base)?,
            http_host_port: FIRST_HTTP_HOST_PORT + offset,
            grpc_host_port: FIRST_GRPC_HOST_PORT + offset,
        });
    }
    Ok(services)
}

/// `path` as seen from the folder `base` (compose resolves build contexts
/// from the compose file's folder): `./…` or `../…`, absolute only when
/// they share no root.
fn relative_to(path: &Path, base: &Path) -> Result<String> {
    let absolute = |p: &Path| {
        std::path::absolute(p).with_context(|| format!("cannot resolve {}", p.display()))
    };
    let (path, base) = (absolute(path)?, absolute(base)?);
    let ours: Vec<_> = path.components().collect();
    let theirs: Vec<_> = base.components().collect();
    let shared = ours.iter().zip(&theirs).take_while(|(a, b)| a == b).count();
    if shared == 0 {
        return Ok(path.display().to_string().replace('\\', "/"));
    }
    let mut parts: Vec<String> = vec![".".to_string()];
    parts.extend(theirs[shared..].iter().map(|_| "..".to_string()));
    parts.extend(
        ours[shared..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    if parts.len() > 1 && parts[1] == ".." {
        parts.remove(0);
    }
    Ok(parts.join("/"))
}

fn render(usecase: &UseCase, dir_name: &str, services: &[ComposeService]) -> String {
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Written by `svcgen pipeline compose`: every node of the use case \"{}\".",
        usecase.name.replace('\n', " ")
    );
    let _ = writeln!(
        y,
        "# The services join the platform's network; create it once with\n#   docker network create {NETWORK}"
    );
    let _ = writeln!(
        y,
        "# SERVICE_API_KEY and DATA_PORT_AUTH are passed through when set in your shell."
    );
    let _ = writeln!(y, "services:");
    for s in services {
        render_service(&mut y, dir_name, s);
    }
    let _ = writeln!(y);
    let _ = writeln!(y, "networks:");
    let _ = writeln!(y, "  default:");
    let _ = writeln!(y, "    name: {}", quote(NETWORK));
    let _ = writeln!(y, "    external: true");
    y
}

fn render_service(y: &mut String, dir_name: &str, s: &ComposeService) {
    let node = s.node;
    let _ = writeln!(y, "  {}:", quote(&node.ip_address));
    let _ = writeln!(
        y,
        "    # node {} (container {})",
        node.dir_name,
        container_name(node)
    );
    let _ = writeln!(y, "    image: {}", quote(&image(dir_name, node)));
    let _ = writeln!(y, "    build:");
    let _ = writeln!(y, "      context: {}", quote(&s.context));
    let _ = writeln!(y, "      dockerfile: {}", quote("Dockerfile"));
    let _ = writeln!(y, "    ports:");
    let _ = writeln!(
        y,
        "      - {}",
        quote(&format!("{}:{}", s.http_host_port, node.port))
    );
    let _ = writeln!(
        y,
        "      - {}",
        quote(&format!("{}:{}", s.grpc_host_port, s.node.grpc_port))
    );
    let _ = writeln!(y, "    environment:");
    for entry in [
        format!("PORT={}", node.port),
        format!("GRPC_PORT={}", s.node.grpc_port),
        format!("GRPC_HOST={}", node.ip_address),
        "SERVICE_API_KEY".to_string(),
        "DATA_PORT_AUTH".to_string(),
    ] {
        let _ = writeln!(y, "      - {}", quote(&entry));
    }
}

/// A YAML double-quoted scalar; `$` doubled so compose does not interpolate it.
fn quote(value: &str) -> String {
    let escaped = value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('$', "$$");
    format!("\"{escaped}\"")
}

/// Writes `text` to `out` through a temporary file and a rename.
fn write_file(out: &Path, text: &str) -> Result<()> {
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty());
    let root = parent.unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("cannot write {}: no file name", out.display()))?;
    std::fs::create_dir_all(root).with_context(|| format!("cannot create {}", root.display()))?;
    write::apply(root, &[Change::write(name, text)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn build_contexts_relative_to_the_compose_file() {
        let rel = |p: &str, b: &str| relative_to(Path::new(p), Path::new(b)).unwrap();
        assert_eq!(rel("/u/c/services/a", "/u/c"), "./services/a");
        assert_eq!(rel("/u/c/services/a", "/u/c/deploy"), "../services/a");
        assert_eq!(rel("/u/c/services/a", "/x/y"), "../../u/c/services/a");
    }

    #[test]
    fn quotes_for_yaml_and_compose() {
        assert_eq!(quote("a"), "\"a\"");
        assert_eq!(quote("a\"b\\c$d"), "\"a\\\"b\\\\c$$d\"");
    }
}
