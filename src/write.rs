//! Writing rendered files to disk safely.
//!
//! - [`write_fresh`]: all-or-nothing. Everything goes into a hidden staging
//!   directory beside the target, which is then renamed onto the target; on
//!   any error the staging directory (and any parent directory we created)
//!   is removed again.
//! - [`apply`] (`new --force`, `add-method`): changes files of an existing
//!   directory as one unit, each through a temporary file and a rename,
//!   restoring the originals if any step fails, and touches nothing else.

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

/// Checks every path is relative and stays inside the project.
pub fn check_paths<'a>(paths: impl Iterator<Item = &'a str>) -> Result<()> {
    for path in paths {
        let ok = !path.is_empty()
            && Path::new(path)
                .components()
                .all(|c| matches!(c, Component::Normal(_)));
        if !ok {
            bail!("internal error: the path `{path}` is not a plain relative path");
        }
    }
    Ok(())
}

/// Writes `files` into `target`, which must be missing or an empty
/// directory, all-or-nothing (staging directory + rename).
pub fn write_fresh(target: &Path, files: &[RenderedFile]) -> Result<()> {
    check_paths(files.iter().map(|f| f.path.as_str()))?;
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

/// A file to create, replace or delete, relative to the project root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    /// The new contents; `None` deletes the file.
    pub contents: Option<String>,
}

impl Change {
    /// Creates or replaces `path` with `contents`.
    pub fn write(path: impl Into<String>, contents: impl Into<String>) -> Change {
        Change {
            path: path.into(),
            contents: Some(contents.into()),
        }
    }

    /// Deletes `path`.
    pub fn delete(path: impl Into<String>) -> Change {
        Change {
            path: path.into(),
            contents: None,
        }
    }
}

/// Applies `changes` to the existing directory `root` as one unit, and
/// touches nothing else: every path is checked first, then every new
/// content is written to a temporary file beside its target, then all are
/// renamed into place (and deletions done); if any step fails, the files
/// already changed get their original bytes back and new ones are removed.
/// Directories emptied by deletions are removed.
pub fn apply(root: &Path, changes: &[Change]) -> Result<()> {
    apply_with(root, changes, |from, to| fs::rename(from, to))
}

/// [`apply`] with the rename step given (tests make it fail).
fn apply_with(
    root: &Path,
    changes: &[Change],
    rename: impl Fn(&Path, &Path) -> std::io::Result<()>,
) -> Result<()> {
    check_paths(changes.iter().map(|change| change.path.as_str()))?;
    let mut originals = Vec::with_capacity(changes.len());
    for change in changes {
        check_destination(root, &change.path)?;
        let target = root.join(&change.path);
        let original = match fs::read(&target) {
            Ok(bytes) => Some(bytes),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", change.path)),
        };
        originals.push(original);
    }

    let mut staged: Vec<Option<PathBuf>> = Vec::with_capacity(changes.len());
    // Directories staging creates (each with the outermost one that was
    // missing), removed again if anything fails.
    let mut created_dirs: Vec<(PathBuf, PathBuf)> = Vec::new();
    let staging = changes.iter().try_for_each(|change| {
        let Some(contents) = &change.contents else {
            staged.push(None);
            return Ok(());
        };
        let temp = temp_path(&root.join(&change.path));
        if let Some(dir) = temp.parent() {
            if let Some(first) = first_missing_ancestor(dir) {
                created_dirs.push((dir.to_path_buf(), first));
            }
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        if let Err(err) = write_new_file(&temp, contents.as_bytes()) {
            // Best effort: a partly written temporary file is ours.
            let _ = fs::remove_file(&temp);
            return Err(err).with_context(|| format!("cannot write {}", temp.display()));
        }
        staged.push(Some(temp));
        Ok::<(), anyhow::Error>(())
    });
    if let Err(err) = staging {
        remove_all(staged.iter().flatten());
        remove_dirs(&created_dirs);
        return Err(err);
    }

    for (index, (change, temp)) in changes.iter().zip(&staged).enumerate() {
        let target = root.join(&change.path);
        let done = match temp {
            Some(temp) => rename(temp, &target),
            None => match fs::remove_file(&target) {
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
                other => other,
            },
        };
        if let Err(err) = done {
            restore(root, &changes[..index], &originals[..index]);
            remove_all(staged[index..].iter().flatten());
            remove_dirs(&created_dirs);
            return Err(err).with_context(|| {
                format!("cannot change {}; every file was restored", change.path)
            });
        }
    }
    for change in changes.iter().filter(|change| change.contents.is_none()) {
        remove_empty_parents(root, &change.path);
    }
    Ok(())
}

/// Refuses a path taken by a directory, or one that goes through a file.
fn check_destination(root: &Path, relative: &str) -> Result<()> {
    let dest = root.join(relative);
    let mut prefix = root.to_path_buf();
    let parents: Vec<_> = Path::new(relative)
        .parent()
        .map(|p| p.components().collect())
        .unwrap_or_default();
    for component in parents {
        prefix.push(component);
        if fs::symlink_metadata(&prefix).is_ok() && !fs::metadata(&prefix).is_ok_and(|m| m.is_dir())
        {
            bail!(
                "cannot write `{}`: `{}` is not a directory",
                dest.display(),
                prefix.display()
            );
        }
    }
    if fs::symlink_metadata(&dest).is_ok_and(|meta| meta.is_dir()) {
        bail!("cannot write `{}`: it is a directory", dest.display());
    }
    Ok(())
}

/// Whether `relative` names an existing file under `root`.
pub fn exists(root: &Path, relative: &str) -> bool {
    fs::symlink_metadata(root.join(relative)).is_ok()
}

/// `dir/.name.svcgen-new`: hidden, beside the target, on the same file system.
fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    target.with_file_name(format!(".{name}.svcgen-new"))
}

/// Puts back the original bytes of `changes` (removing files that did not exist).
fn restore(root: &Path, changes: &[Change], originals: &[Option<Vec<u8>>]) {
    for (change, original) in changes.iter().zip(originals) {
        let target = root.join(&change.path);
        // Best effort: there is no better place to report a failure here
        // than the error already on its way to the user.
        let _ = match original {
            Some(bytes) => fs::write(&target, bytes),
            None => fs::remove_file(&target),
        };
    }
}

fn remove_all<'a>(paths: impl Iterator<Item = &'a PathBuf>) {
    for path in paths {
        let _ = fs::remove_file(path);
    }
}

/// Removes the directories staging created (`(deepest, outermost)` pairs,
/// in creation order), now that the files in them are gone.
fn remove_dirs(created: &[(PathBuf, PathBuf)]) {
    for (dir, first) in created.iter().rev() {
        remove_created_dirs(dir, first);
    }
}

/// Removes the directories above a deleted file that are now empty, up to `root`.
fn remove_empty_parents(root: &Path, relative: &str) {
    let mut dir = Path::new(relative).parent();
    while let Some(current) = dir.filter(|d| !d.as_os_str().is_empty()) {
        if fs::remove_dir(root.join(current)).is_err() {
            break;
        }
        dir = current.parent();
    }
}

fn write_new_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let mut file = fs::File::create(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Owner;

    fn file(path: &str, contents: &str) -> RenderedFile {
        RenderedFile {
            path: path.into(),
            contents: contents.into(),
            owner: Owner::User,
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
        assert!(check_paths(["../x"].into_iter()).is_err());
        assert!(check_paths(["/etc/x"].into_iter()).is_err());
        assert!(check_paths(["a/b.rs"].into_iter()).is_ok());
    }

    #[test]
    fn apply_writes_replaces_and_deletes_and_keeps_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("a.txt"), "old").unwrap();
        fs::write(root.join("notes.txt"), "mine").unwrap();
        fs::create_dir_all(root.join("gone")).unwrap();
        fs::write(root.join("gone/x.rs"), "x").unwrap();
        apply(
            root,
            &[
                Change::write("a.txt", "new"),
                Change::write("sub/b.txt", "b"),
                Change::delete("gone/x.rs"),
            ],
        )
        .unwrap();
        assert_eq!(fs::read_to_string(root.join("a.txt")).unwrap(), "new");
        assert_eq!(fs::read_to_string(root.join("sub/b.txt")).unwrap(), "b");
        assert_eq!(fs::read_to_string(root.join("notes.txt")).unwrap(), "mine");
        assert!(
            !root.join("gone").exists(),
            "an emptied directory is removed"
        );
        let leftovers: Vec<_> = walkdir::WalkDir::new(root)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".svcgen-new"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_failed_rename_restores_every_earlier_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("a.txt"), "old").unwrap();
        fs::write(root.join("doomed.txt"), "kept").unwrap();
        let changes = [
            Change::write("a.txt", "new"),
            Change::delete("doomed.txt"),
            Change::write("fresh.txt", "x"),
            Change::write("last.txt", "y"),
        ];
        let err = apply_with(root, &changes, |from, to| {
            if to.ends_with("last.txt") {
                Err(std::io::Error::other("disk full"))
            } else {
                fs::rename(from, to)
            }
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("last.txt"), "{err:#}");
        assert_eq!(fs::read_to_string(root.join("a.txt")).unwrap(), "old");
        assert_eq!(fs::read_to_string(root.join("doomed.txt")).unwrap(), "kept");
        assert!(!root.join("fresh.txt").exists());
        let names: Vec<_> = fs::read_dir(root)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file left: {names:?}");
    }

    #[test]
    fn a_failed_apply_removes_the_directories_it_created() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::write(root.join("a.txt"), "old").unwrap();
        let changes = [
            Change::write("a.txt", "new"),
            Change::write("new/deep/x.txt", "x"),
            Change::write("new/other/y.txt", "y"),
            Change::write("last.txt", "z"),
        ];
        for fail_at in ["last.txt", "y.txt"] {
            apply_with(root, &changes, |from, to| {
                if to.ends_with(fail_at) {
                    Err(std::io::Error::other("disk full"))
                } else {
                    fs::rename(from, to)
                }
            })
            .unwrap_err();
            let names: Vec<_> = fs::read_dir(root)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, ["a.txt"], "failing at {fail_at}");
            assert_eq!(fs::read_to_string(root.join("a.txt")).unwrap(), "old");
        }
    }

    #[test]
    fn apply_refuses_a_directory_in_the_way_before_writing_anything() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("Cargo.toml")).unwrap();
        let changes = [
            Change::write("src/main.rs", "y"),
            Change::write("Cargo.toml", "x"),
        ];
        assert!(apply(dir.path(), &changes).is_err());
        assert!(!dir.path().join("src").exists());
    }
}
