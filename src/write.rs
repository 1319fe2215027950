//! Writing rendered files to disk safely.
//!
//! - [`write_fresh`]: all-or-nothing. Everything goes into a hidden staging
//!   directory beside the target, which is then renamed onto the target; on
//!   any error the staging directory (and any parent directory we created)
//!   is removed again.
//! - [`write_over`] (`--force`): writes only the rendered files into an
//!   existing directory, each through a temporary file and a rename, and
//!   never deletes anything else.

use crate::render::RenderedFile;
use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

/// What is at the target path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetState {
    /// Nothing there yet.
    Missing,
    /// An empty directory.
    Empty,
    /// A directory with entries.
    NonEmpty,
}

/// Looks at `target`; an error when it exists but is not a directory.
pub fn inspect_target(target: &Path) -> Result<TargetState> {
    match fs::metadata(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TargetState::Missing),
        Err(e) => Err(e).with_context(|| format!("cannot inspect `{}`", target.display())),
        Ok(meta) if !meta.is_dir() => {
            bail!("`{}` exists and is not a directory", target.display())
        }
        Ok(_) => {
            let mut entries = fs::read_dir(target)
                .with_context(|| format!("cannot read directory `{}`", target.display()))?;
            Ok(if entries.next().is_none() {
                TargetState::Empty
            } else {
                TargetState::NonEmpty
            })
        }
    }
}

/// Checks every rendered path is relative and stays inside the project.
pub fn check_paths(files: &[RenderedFile]) -> Result<()> {
    for f in files {
        let ok = !f.path.as_os_str().is_empty()
            && f.path
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !ok {
            bail!(
                "internal error: rendered path `{}` is not a plain relative path",
                f.path.display()
            );
        }
    }
    Ok(())
}

/// Writes `files` into `target`, which must be missing or an empty
/// directory, all-or-nothing (staging directory + rename).
pub fn write_fresh(target: &Path, files: &[RenderedFile]) -> Result<()> {
    check_paths(files)?;
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let created_from = first_missing_ancestor(&parent);
    fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create directory `{}`", parent.display()))?;
    let result = stage_and_rename(&parent, target, files);
    if result.is_err() {
        if let Some(first) = created_from {
            remove_created_dirs(&parent, &first);
        }
    }
    result
}

fn stage_and_rename(parent: &Path, target: &Path, files: &[RenderedFile]) -> Result<()> {
    let staging = create_staging_dir(parent, target)?;
    let result = (|| -> Result<()> {
        for f in files {
            let path = staging.join(&f.path);
            if let Some(dir) = path.parent() {
                fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create directory `{}`", dir.display()))?;
            }
            fs::write(&path, &f.contents)
                .with_context(|| format!("cannot write `{}`", path.display()))?;
        }
        move_into_place(&staging, target)
    })();
    if result.is_err() {
        // Best effort: the staging dir is ours and must not be left behind.
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

/// Creates `.svcgen-staging-<name>-<pid>[-n]` in `parent`.
fn create_staging_dir(parent: &Path, target: &Path) -> Result<PathBuf> {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "service".to_string());
    let pid = std::process::id();
    for n in 0..100u32 {
        let suffix = if n == 0 {
            String::new()
        } else {
            format!("-{n}")
        };
        let staging = parent.join(format!(".svcgen-staging-{name}-{pid}{suffix}"));
        match fs::create_dir(&staging) {
            Ok(()) => return Ok(staging),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot create staging directory `{}`", staging.display())
                })
            }
        }
    }
    bail!(
        "cannot create a staging directory in `{}`",
        parent.display()
    )
}

/// Renames the finished staging dir onto `target` (removing an empty
/// target directory first, and restoring it if the rename fails).
fn move_into_place(staging: &Path, target: &Path) -> Result<()> {
    let removed_empty = match inspect_target(target)? {
        TargetState::Missing => false,
        TargetState::Empty => {
            fs::remove_dir(target).with_context(|| {
                format!("cannot replace empty directory `{}`", target.display())
            })?;
            true
        }
        TargetState::NonEmpty => {
            bail!(
                "`{}` is no longer empty; nothing was written",
                target.display()
            )
        }
    };
    fs::rename(staging, target).map_err(|e| {
        if removed_empty {
            let _ = fs::create_dir(target);
        }
        anyhow::Error::new(e).context(format!("cannot move files into `{}`", target.display()))
    })
}

/// The outermost ancestor of `dir` (or `dir` itself) that does not exist yet.
fn first_missing_ancestor(dir: &Path) -> Option<PathBuf> {
    let mut missing = None;
    for a in dir.ancestors() {
        if a.as_os_str().is_empty() || a.exists() {
            break;
        }
        missing = Some(a.to_path_buf());
    }
    missing
}

/// Removes the (empty) directories from `dir` up to `first`, which we created.
fn remove_created_dirs(dir: &Path, first: &Path) {
    for a in dir.ancestors() {
        if fs::remove_dir(a).is_err() || a == first {
            break;
        }
    }
}

/// One file written by [`write_over`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Path relative to the project root.
    pub path: PathBuf,
    /// True when a file was already there and was replaced.
    pub replaced: bool,
}

/// Writes `files` into the existing directory `target`, replacing only those
/// files (each via a temporary file + rename) and deleting nothing else.
/// Every path is checked first, then all temporary files are written, then
/// renamed, so a failure before the renames leaves the directory as it was.
pub fn write_over(target: &Path, files: &[RenderedFile]) -> Result<Vec<Written>> {
    check_paths(files)?;
    let plan = plan_over(target, files)?;
    let mut temps: Vec<(PathBuf, PathBuf)> = Vec::with_capacity(files.len());
    let staged = (|| -> Result<()> {
        for f in files {
            let dest = target.join(&f.path);
            if let Some(dir) = dest.parent() {
                fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create directory `{}`", dir.display()))?;
            }
            let tmp = temp_path(&dest);
            write_new_file(&tmp, f.contents.as_bytes())
                .with_context(|| format!("cannot write `{}`", tmp.display()))?;
            temps.push((tmp, dest));
        }
        Ok(())
    })();
    if let Err(e) = staged {
        for (tmp, _) in &temps {
            let _ = fs::remove_file(tmp);
        }
        return Err(e);
    }
    for (i, (tmp, dest)) in temps.iter().enumerate() {
        if let Err(e) = fs::rename(tmp, dest) {
            for (tmp, _) in &temps[i..] {
                let _ = fs::remove_file(tmp);
            }
            return Err(e).with_context(|| format!("cannot replace `{}`", dest.display()));
        }
    }
    Ok(plan)
}

/// Which rendered files already exist in `target`; an error when a path is
/// taken by a directory or goes through a file.
pub fn plan_over(target: &Path, files: &[RenderedFile]) -> Result<Vec<Written>> {
    files
        .iter()
        .map(|f| {
            let dest = target.join(&f.path);
            let mut prefix = target.to_path_buf();
            let parents: Vec<_> = f
                .path
                .parent()
                .map(|p| p.components().collect())
                .unwrap_or_default();
            for c in parents {
                prefix.push(c);
                if let Ok(meta) = fs::symlink_metadata(&prefix) {
                    if !meta.is_dir() && !fs::metadata(&prefix).is_ok_and(|m| m.is_dir()) {
                        bail!(
                            "cannot write `{}`: `{}` is not a directory",
                            dest.display(),
                            prefix.display()
                        );
                    }
                }
            }
            let replaced = match fs::symlink_metadata(&dest) {
                Ok(meta) if meta.is_dir() => {
                    bail!("cannot write `{}`: it is a directory", dest.display())
                }
                Ok(_) => true,
                Err(_) => false,
            };
            Ok(Written {
                path: f.path.clone(),
                replaced,
            })
        })
        .collect()
}

fn temp_path(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    dest.with_file_name(format!(".{name}.svcgen-tmp-{}", std::process::id()))
}

fn write_new_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = fs::File::create(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, contents: &str) -> RenderedFile {
        RenderedFile {
            path: path.into(),
            contents: contents.into(),
            owner: crate::render::Owner::User,
        }
    }

    fn files() -> Vec<RenderedFile> {
        vec![file("Cargo.toml", "x"), file("src/main.rs", "y")]
    }

    #[test]
    fn fresh_into_missing_nested_target() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("a/b/svc");
        write_fresh(&target, &files()).unwrap();
        assert_eq!(fs::read_to_string(target.join("src/main.rs")).unwrap(), "y");
        let leftovers: Vec<_> = fs::read_dir(tmp.path().join("a/b")).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "staging dir removed");
    }

    #[test]
    fn fresh_into_empty_target() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("svc");
        fs::create_dir(&target).unwrap();
        write_fresh(&target, &files()).unwrap();
        assert!(target.join("Cargo.toml").is_file());
    }

    #[test]
    fn fresh_failure_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("new/svc");
        let bad = vec![file("a", ""), file("a/b", "")];
        assert!(write_fresh(&target, &bad).is_err());
        assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);
    }

    #[test]
    fn rejects_escaping_paths() {
        let bad = vec![file("../x", "")];
        assert!(check_paths(&bad).is_err());
    }

    #[test]
    fn over_keeps_other_files() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("Cargo.toml"), "old").unwrap();
        fs::write(tmp.path().join("notes.txt"), "mine").unwrap();
        let written = write_over(tmp.path(), &files()).unwrap();
        assert!(written[0].replaced && !written[1].replaced);
        assert_eq!(
            fs::read_to_string(tmp.path().join("Cargo.toml")).unwrap(),
            "x"
        );
        assert_eq!(
            fs::read_to_string(tmp.path().join("notes.txt")).unwrap(),
            "mine"
        );
        let names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 3, "no temp files left: {names:?}");
    }

    #[test]
    fn over_refuses_directory_in_the_way() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("Cargo.toml")).unwrap();
        assert!(write_over(tmp.path(), &files()).is_err());
        assert!(!tmp.path().join("src").exists());
    }
}
