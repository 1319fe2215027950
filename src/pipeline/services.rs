//! The node folders of a use case: each folder under `services/` with its
//! `proto/*.proto` files and, for a service svcgen generated, what its
//! `svcgen.toml` says (gRPC host, ports).

use crate::manifest::{Manifest, ServiceSection};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// The folder holding the node folders.
pub const SERVICES_DIR: &str = "services";

/// The HTTP control port of a node whose svcgen.toml does not say.
pub const DEFAULT_HTTP_PORT: u16 = 8080;

/// The gRPC data port of a node whose svcgen.toml does not say.
pub const DEFAULT_GRPC_PORT: u16 = 50051;

/// One folder under `services/`.
#[derive(Debug, Clone)]
pub struct ServiceDir {
    /// The folder name.
    pub dir_name: String,
    /// The `.proto` files directly in its `proto/` folder, sorted.
    pub protos: Vec<PathBuf>,
    /// `[service]` of its svcgen.toml, when svcgen generated it.
    pub svcgen: Option<ServiceSection>,
}

impl ServiceDir {
    /// The host other services and the orchestrator reach it by: its gRPC
    /// host from svcgen.toml, else the kebab-case of the folder name.
    pub fn default_host(&self) -> String {
        use heck::ToKebabCase;
        match &self.svcgen {
            Some(s) => s.grpc_host.clone(),
            None => self.dir_name.to_kebab_case(),
        }
    }

    /// Its HTTP control port from svcgen.toml, else 8080.
    pub fn http_port(&self) -> u16 {
        self.svcgen
            .as_ref()
            .map_or(DEFAULT_HTTP_PORT, |s| s.http_port)
    }

    /// Its gRPC data port from svcgen.toml, else 50051.
    pub fn grpc_port(&self) -> u16 {
        self.svcgen
            .as_ref()
            .map_or(DEFAULT_GRPC_PORT, |s| s.grpc_port)
    }
}

/// The folders under `<usecase>/services/`, sorted by name (as the
/// platform's export orders its nodes). No `services/` folder: none.
pub fn scan(usecase: &Path) -> Result<Vec<ServiceDir>> {
    let root = usecase.join(SERVICES_DIR);
    if !root.is_dir() {
        return Ok(Vec::new());
    }
    let mut dirs = Vec::new();
    let entries =
        std::fs::read_dir(&root).with_context(|| format!("cannot read {}", root.display()))?;
    for entry in entries {
        let path = entry
            .with_context(|| format!("cannot read {}", root.display()))?
            .path();
        if path.is_dir() {
            dirs.push(service_dir(path)?);
        }
    }
    dirs.sort_by(|a, b| a.dir_name.cmp(&b.dir_name));
    Ok(dirs)
}

fn service_dir(path: PathBuf) -> Result<ServiceDir> {
    let dir_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("the folder name of {} is not UTF-8", path.display()))?
        .to_string();
    Ok(ServiceDir {
        protos: protos(&path.join("proto"))?,
        svcgen: svcgen_section(&path)?,
        dir_name,
    })
}

fn protos(dir: &Path) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry
            .with_context(|| format!("cannot read {}", dir.display()))?
            .path();
        if path.is_file() && path.extension().is_some_and(|e| e == "proto") {
            found.push(path);
        }
    }
    found.sort();
    Ok(found)
}

fn svcgen_section(dir: &Path) -> Result<Option<ServiceSection>> {
    let path = dir.join(crate::manifest::FILE_NAME);
    if !path.is_file() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Some(Manifest::parse(&text, &path)?.service))
}
