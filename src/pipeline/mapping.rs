//! `service_mapping` entries for node folders not mapped yet: the host is
//! the generated service's gRPC host (svcgen.toml), else the kebab-case of
//! the folder name; the port is its HTTP port, else 8080. `svcgen new`
//! into a use case's `services/` maps the new node this way too.

use super::connections_file::{ConnectionsFile, Mapping, FILE_NAME};
use super::services::{self, SERVICES_DIR};
use crate::write::{self, Change};
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

/// Maps every folder under `<dir>/services/` that has a proto and no
/// entry yet; returns them as `node -> host:port`.
pub fn map_unmapped(dir: &Path, file: &mut ConnectionsFile) -> Result<Vec<String>> {
    map_where(dir, file, |_| true)
}

/// Maps the folders under `<dir>/services/` that `wanted` accepts (by
/// name), have a proto and no entry yet.
fn map_where(
    dir: &Path,
    file: &mut ConnectionsFile,
    wanted: impl Fn(&str) -> bool,
) -> Result<Vec<String>> {
    let mut added = Vec::new();
    for service in services::scan(dir)?
        .into_iter()
        .filter(|s| wanted(&s.dir_name))
    {
        let known = file
            .pipeline
            .service_mapping
            .get(&service.dir_name)
            .is_some();
        if known || service.protos.is_empty() {
            continue;
        }
        let mapping = Mapping {
            ip_address: service.default_host(),
            port: service.http_port().into(),
            extra: BTreeMap::new(),
        };
        added.push(format!(
            "{} -> {}:{}",
            service.dir_name,
            mapping.ip_address,
            service.http_port()
        ));
        file.pipeline
            .service_mapping
            .0
            .push((service.dir_name.clone(), mapping));
    }
    Ok(added)
}

/// After `svcgen new PATH`: when PATH is `<use case>/services/<node>` and
/// the use case has a connections.json without that node, maps it there.
/// Returns the line to add to `new`'s report (empty when there is nothing
/// to do); a failure is a note, as the project itself is written.
pub fn after_new(path: &Path) -> String {
    let Ok(absolute) = std::path::absolute(path) else {
        return String::new();
    };
    let Some(node) = absolute.file_name().and_then(|n| n.to_str()) else {
        return String::new();
    };
    let Some(usecase) = absolute
        .parent()
        .filter(|p| p.file_name().is_some_and(|n| n == SERVICES_DIR))
        .and_then(Path::parent)
    else {
        return String::new();
    };
    if !usecase.join(FILE_NAME).is_file() {
        return String::new();
    }
    // Shown as the user wrote the path when it names the use case.
    let shown = match path.parent().and_then(Path::parent) {
        Some(given) if !given.as_os_str().is_empty() => given.join(FILE_NAME),
        _ => usecase.join(FILE_NAME),
    }
    .display()
    .to_string();
    match map_one(usecase, node) {
        Ok(Some(entry)) => format!("Mapped {entry} in {shown}\n"),
        Ok(None) => String::new(),
        Err(err) => format!("note: {node} is not mapped in {shown}: {err:#}\n"),
    }
}

fn map_one(usecase: &Path, node: &str) -> Result<Option<String>> {
    let mut file = ConnectionsFile::read(usecase)?;
    let added = map_where(usecase, &mut file, |name| name == node)?;
    if added.is_empty() {
        return Ok(None);
    }
    write::apply(usecase, &[Change::write(FILE_NAME, file.render())])?;
    Ok(added.into_iter().next())
}
