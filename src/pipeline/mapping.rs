//! `service_mapping` entries for node folders not mapped yet: the host is
//! the generated service's gRPC host (svcgen.toml), else the kebab-case of
//! the folder name; the port is its HTTP port, else 8080.

use super::connections_file::{ConnectionsFile, Mapping};
use super::services;
use anyhow::Result;
use std::collections::BTreeMap;
use std::path::Path;

/// Maps every folder under `<dir>/services/` that has a proto and no
/// entry yet; returns them as `node -> host:port`.
pub fn map_unmapped(dir: &Path, file: &mut ConnectionsFile) -> Result<Vec<String>> {
    let mut added = Vec::new();
    for service in services::scan(dir)? {
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
