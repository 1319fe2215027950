//! Writing an export all or nothing: the folder is staged beside its
//! target and renamed into place (replacing an earlier export, never
//! anything else), and the ZIP through a temporary file.

use super::export::Exported;
use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};

/// The documents at the top of an export folder.
const DOCUMENTS: &[&str] = &[
    "blueprint.json",
    "dockerinfo.json",
    "generation_metadata.json",
];

/// Writes `exported` to the folder `out` and, when asked, the ZIP `zip`:
/// both or neither (an earlier export and ZIP are left as they were when
/// anything fails).
pub fn write(exported: &Exported, out: &Path, zip: Option<&Path>) -> Result<()> {
    check_replaceable(out)?;
    if let Some(zip) = zip {
        check_zip_path(zip, out)?;
    }
    let zip_bytes = zip.map(|_| zip_bytes(exported)).transpose()?;
    let staged = staging(out);
    let zip_staged = zip.map(staging);
    let result = stage(
        exported,
        &staged,
        zip_staged.as_deref(),
        zip_bytes.as_deref(),
    )
    .and_then(|()| commit(&staged, out, zip_staged.as_deref().zip(zip)));
    if result.is_err() {
        let _ = fs::remove_dir_all(&staged);
        if let Some(z) = &zip_staged {
            let _ = fs::remove_file(z);
        }
    }
    result
}

/// Refuses a ZIP path that is a folder, or inside the export folder (which
/// is replaced, ZIP and all, by the next export) or holding it.
fn check_zip_path(zip: &Path, out: &Path) -> Result<()> {
    if zip.is_dir() {
        bail!("cannot write the ZIP to {}: it is a folder", zip.display());
    }
    let (zip_at, out_at) = (resolved(zip)?, resolved(out)?);
    if zip_at.starts_with(&out_at) || out_at.starts_with(&zip_at) {
        bail!(
            "cannot write the ZIP to {}: it is inside the export folder {}, which the next export replaces; pick a --zip path outside it (default: {})",
            zip.display(),
            out.display(),
            out.with_extension("zip").display()
        );
    }
    Ok(())
}

/// `path` made absolute, component by component: each existing folder
/// resolved (symbolic links followed), `.` dropped, `..` one folder up.
fn resolved(path: &Path) -> Result<PathBuf> {
    let absolute = std::env::current_dir()
        .context("cannot read the current folder")?
        .join(path);
    let mut result = PathBuf::new();
    for component in absolute.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                result.pop();
            }
            other => {
                result.push(other);
                if let Ok(real) = result.canonicalize() {
                    result = real;
                }
            }
        }
    }
    Ok(result)
}

/// The ZIP for the portal's "Import ZIP": blueprint.json, dockerinfo.json
/// and microservice/*.proto (generation_metadata.json stays local).
pub fn zip_bytes(exported: &Exported) -> Result<Vec<u8>> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for file in exported
        .files
        .iter()
        .filter(|f| f.path != "generation_metadata.json")
    {
        writer
            .start_file(file.path.as_str(), options)
            .and_then(|()| writer.write_all(&file.contents).map_err(Into::into))
            .with_context(|| format!("cannot add {} to the ZIP", file.path))?;
    }
    Ok(writer
        .finish()
        .context("cannot finish the ZIP")?
        .into_inner())
}

/// Refuses to replace `out` unless it is missing, empty or an earlier export.
fn check_replaceable(out: &Path) -> Result<()> {
    if !out.exists() {
        return Ok(());
    }
    if !out.is_dir() {
        bail!("cannot export to {}: it is not a folder", out.display());
    }
    for entry in walkdir::WalkDir::new(out).min_depth(1) {
        let entry = entry.with_context(|| format!("cannot read {}", out.display()))?;
        let relative = entry
            .path()
            .strip_prefix(out)
            .unwrap_or(entry.path())
            .to_string_lossy()
            .replace('\\', "/");
        let ours = DOCUMENTS.contains(&relative.as_str())
            || relative == "microservice"
            || (relative.starts_with("microservice/")
                && relative.ends_with(".proto")
                && relative.matches('/').count() == 1);
        if !ours {
            bail!(
                "refusing to replace {}: it holds `{relative}`, which an export does not write; pass another --out",
                out.display()
            );
        }
    }
    Ok(())
}

/// `<parent>/.<name>.svcgen-<what>`, beside `path`.
fn sibling(path: &Path, what: &str) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.svcgen-{what}"))
}

fn staging(path: &Path) -> PathBuf {
    sibling(path, "new")
}

fn stage(exported: &Exported, dir: &Path, zip: Option<&Path>, bytes: Option<&[u8]>) -> Result<()> {
    let _ = fs::remove_dir_all(dir);
    for file in &exported.files {
        let path = dir.join(&file.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&path, &file.contents)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let (Some(zip), Some(bytes)) = (zip, bytes) {
        if let Some(parent) = zip.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(zip, bytes).with_context(|| format!("cannot write {}", zip.display()))?;
    }
    Ok(())
}

/// Renames `staged` onto `out`, moving an earlier export out of the way
/// first, then `zip` = (staged ZIP, ZIP path); puts the earlier export back
/// when either rename fails.
fn commit(staged: &Path, out: &Path, zip: Option<(&Path, &Path)>) -> Result<()> {
    let old = sibling(out, "old");
    let had_old = out.exists();
    if had_old {
        let _ = fs::remove_dir_all(&old);
        fs::rename(out, &old).with_context(|| format!("cannot replace {}", out.display()))?;
    }
    let result = fs::rename(staged, out)
        .with_context(|| format!("cannot write {}", out.display()))
        .and_then(|()| match zip {
            Some((from, to)) => fs::rename(from, to).map_err(|e| {
                let _ = fs::remove_dir_all(out);
                anyhow::Error::new(e).context(format!("cannot write {}", to.display()))
            }),
            None => Ok(()),
        });
    if had_old {
        if result.is_err() {
            let _ = fs::rename(&old, out);
        } else {
            let _ = fs::remove_dir_all(&old);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zip_that_cannot_be_written_leaves_the_earlier_export() {
        let tmp = tempfile::tempdir().unwrap();
        let (out, staged) = (tmp.path().join("export"), tmp.path().join("staged"));
        fs::create_dir_all(&out).unwrap();
        fs::write(out.join("blueprint.json"), "old").unwrap();
        fs::create_dir_all(&staged).unwrap();
        fs::write(staged.join("blueprint.json"), "new").unwrap();
        let zip_staged = tmp.path().join("zip.new");
        fs::write(&zip_staged, "zip").unwrap();
        // A folder holding a file: no file can be renamed onto it.
        let zip = tmp.path().join("portal.zip");
        fs::create_dir_all(zip.join("taken")).unwrap();

        let err = commit(&staged, &out, Some((&zip_staged, &zip))).unwrap_err();
        assert!(format!("{err:#}").contains("cannot write"), "{err:#}");
        assert_eq!(
            fs::read_to_string(out.join("blueprint.json")).unwrap(),
            "old"
        );
        assert!(!sibling(&out, "old").exists());

        fs::remove_dir_all(&zip).unwrap();
        fs::remove_dir_all(&out).unwrap();
        fs::create_dir_all(&staged).unwrap();
        fs::write(staged.join("blueprint.json"), "new").unwrap();
        fs::create_dir_all(zip.join("taken")).unwrap();
        commit(&staged, &out, Some((&zip_staged, &zip))).unwrap_err();
        assert!(!out.exists(), "no export without its ZIP");
    }

    #[test]
    fn resolved_paths_compare_however_they_are_spelt() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir_all(tmp.path().join("uc/export")).unwrap();
        let out = resolved(&tmp.path().join("uc/export")).unwrap();
        for zip in [
            "uc/export/portal.zip",
            "uc/./export/new/../p.zip",
            "uc/x/../export/a/b.zip",
        ] {
            assert!(
                resolved(&tmp.path().join(zip)).unwrap().starts_with(&out),
                "{zip}"
            );
        }
        for zip in ["uc/export.zip", "uc/export/../p.zip", "uc/exports/p.zip"] {
            assert!(
                !resolved(&tmp.path().join(zip)).unwrap().starts_with(&out),
                "{zip}"
            );
        }
    }
}
