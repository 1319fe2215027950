//! Applies a set of file changes to a project as one unit: every new content
//! is first written to a temporary file beside its target, then all are
//! renamed into place; if any step fails, the files already replaced get
//! their original bytes back and the new ones are removed.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// A file to create or replace, relative to the project root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub contents: String,
}

/// Writes every change or none of them.
pub fn apply(root: &Path, changes: &[Change]) -> Result<()> {
    let mut originals = Vec::with_capacity(changes.len());
    for change in changes {
        let target = root.join(&change.path);
        let original = match fs::read(&target) {
            Ok(bytes) => Some(bytes),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", change.path)),
        };
        originals.push(original);
    }

    let mut staged: Vec<PathBuf> = Vec::with_capacity(changes.len());
    let staging = changes.iter().try_for_each(|change| {
        let temp = temp_path(&root.join(&change.path));
        if let Some(dir) = temp.parent() {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        }
        fs::write(&temp, &change.contents)
            .with_context(|| format!("cannot write {}", temp.display()))?;
        staged.push(temp);
        Ok::<(), anyhow::Error>(())
    });
    if let Err(err) = staging {
        remove_all(&staged);
        return Err(err);
    }

    for (index, (change, temp)) in changes.iter().zip(&staged).enumerate() {
        if let Err(err) = fs::rename(temp, root.join(&change.path)) {
            restore(root, &changes[..index], &originals[..index]);
            remove_all(&staged[index..]);
            return Err(err).with_context(|| {
                format!("cannot replace {}; every file was restored", change.path)
            });
        }
    }
    Ok(())
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

fn remove_all(paths: &[PathBuf]) {
    for path in paths {
        let _ = fs::remove_file(path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(path: &str, contents: &str) -> Change {
        Change {
            path: path.to_string(),
            contents: contents.to_string(),
        }
    }

    #[test]
    fn writes_every_change() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.txt"), "old").unwrap();
        apply(
            dir.path(),
            &[change("a.txt", "new"), change("sub/b.txt", "b")],
        )
        .unwrap();
        assert_eq!(fs::read_to_string(dir.path().join("a.txt")).unwrap(), "new");
        assert_eq!(
            fs::read_to_string(dir.path().join("sub/b.txt")).unwrap(),
            "b"
        );
        let leftovers: Vec<_> = walkdir::WalkDir::new(dir.path())
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".svcgen-new"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_failed_rename_restores_every_earlier_file() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.txt"), "old").unwrap();
        // A non-empty directory where the last file should go: its rename fails.
        fs::create_dir_all(dir.path().join("blocked/inner")).unwrap();
        let err = apply(
            dir.path(),
            &[
                change("a.txt", "new"),
                change("fresh.txt", "x"),
                change("blocked", "y"),
            ],
        )
        .unwrap_err();
        assert!(err.to_string().contains("blocked"), "{err}");
        assert_eq!(fs::read_to_string(dir.path().join("a.txt")).unwrap(), "old");
        assert!(!dir.path().join("fresh.txt").exists());
        assert!(!dir.path().join(".blocked.svcgen-new").exists());
    }
}
