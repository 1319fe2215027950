//! Finds the project a command runs in, the way cargo finds Cargo.toml: the
//! nearest `svcgen.toml` in the start directory or above it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::manifest::{self, Manifest};

/// A project on disk and its manifest.
pub struct Project {
    pub root: PathBuf,
    pub manifest: Manifest,
}

impl Project {
    /// Locates and reads the project from `start` (`--path`, or the
    /// current directory).
    pub fn find(start: Option<&Path>) -> Result<Project> {
        let hint = match start {
            Some(_) => "point --path at a project made by `svcgen new`",
            None => "run this inside a project made by `svcgen new`, or pass --path",
        };
        let start = match start {
            Some(path) => path.to_path_buf(),
            None => std::env::current_dir().context("reading the current directory")?,
        };
        let root = start
            .ancestors()
            .find(|dir| dir.join(manifest::FILE_NAME).is_file())
            .with_context(|| {
                format!(
                    "no {} in `{}` or any parent directory; {hint}",
                    manifest::FILE_NAME,
                    start.display()
                )
            })?
            .to_path_buf();
        let path = root.join(manifest::FILE_NAME);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let manifest = Manifest::parse(&text, &path)?;
        Ok(Project { root, manifest })
    }

    /// Reads a project file as text; `None` when it does not exist.
    pub fn read(&self, relative: &str) -> Result<Option<String>> {
        let path = self.root.join(relative);
        match std::fs::read(&path) {
            Ok(bytes) => String::from_utf8(bytes)
                .map(Some)
                .with_context(|| format!("{relative} is not UTF-8 text")),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}
