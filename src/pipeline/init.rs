//! `svcgen pipeline init`: starts a use case — a folder with `services/`
//! and a `connections.json` in the platform's format — and maps the
//! services already under `services/`.

use super::connections_file::{ConnectionsFile, FILE_NAME};
use super::export_doc::title_case;
use super::mapping;
use super::services::SERVICES_DIR;
use crate::cli::Usage;
use crate::write::{self, Change};
use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::{Path, PathBuf};

/// Flags of `svcgen pipeline init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The use-case folder to start (created when missing) [default: the current folder].
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,

    /// `pipeline.name` in connections.json [default: the folder name in Title Case].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
}

/// Runs `svcgen pipeline init`.
pub fn run(args: InitArgs) -> anyhow::Result<String> {
    let dir = args.dir.unwrap_or_else(|| PathBuf::from("."));
    if dir.join(FILE_NAME).exists() {
        bail!(
            "{} already has a {FILE_NAME}; wire it with `svcgen pipeline connect`",
            dir.display()
        );
    }
    if dir.exists() && !dir.is_dir() {
        bail!(
            "cannot start a use case at {}: it is not a folder",
            dir.display()
        );
    }
    let name = match args.name {
        Some(name) if name.trim().is_empty() => {
            return Err(Usage("--name must not be empty".to_string()).into())
        }
        Some(name) => name,
        None => default_name(&dir)?,
    };
    let mut file = ConnectionsFile::empty(&name);
    let mapped = mapping::map_unmapped(&dir, &mut file)?;
    std::fs::create_dir_all(dir.join(SERVICES_DIR))
        .with_context(|| format!("cannot create {}", dir.join(SERVICES_DIR).display()))?;
    write::apply(&dir, &[Change::write(FILE_NAME, file.render())])?;
    Ok(report(&dir, &name, &mapped))
}

/// The folder's name, `_`/`-` as spaces, in Title Case.
fn default_name(dir: &Path) -> Result<String> {
    let absolute =
        std::path::absolute(dir).with_context(|| format!("cannot resolve {}", dir.display()))?;
    let base = absolute
        .components()
        .next_back()
        .and_then(|c| c.as_os_str().to_str())
        .filter(|s| !s.is_empty() && *s != "." && *s != "/")
        .with_context(|| format!("{} has no folder name; pass --name", dir.display()))?;
    Ok(title_case(&base.replace(['_', '-'], " ")))
}

fn report(dir: &Path, name: &str, mapped: &[String]) -> String {
    let shown = dir.display();
    let mut out =
        format!("Started use case \"{name}\" in {shown}: {SERVICES_DIR}/ and {FILE_NAME}\n");
    if !mapped.is_empty() {
        out.push_str(&format!("Mapped: {}\n", mapped.join(", ")));
    }
    out.push_str(&format!(
        "Next: svcgen new {shown}/{SERVICES_DIR}/<node> --method <Rpc>, then svcgen pipeline connect <a>.<Rpc> <b>.<Rpc> --dir {shown}\n"
    ));
    out
}
