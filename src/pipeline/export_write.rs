//! Writing an export all or nothing: the folder is staged beside its
//! target and renamed into place (replacing an earlier export, never
//! anything else), and the ZIP through a temporary file.

use super::export::Exported;
use anyhow::{bail, Context, Result};
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The documents at the top of an export folder.
const DOCUMENTS: &[&str] = &[
    "blueprint.json",
    "dockerinfo.json",
    "generation_metadata.json",
];

/// Writes `exported` to the folder `out` and, when asked, the ZIP `zip`.
pub fn write(exported: &Exported, out: &Path, zip: Option<&Path>) -> Result<()> {
    check_replaceable(out)?;
    if let Some(zip) = zip.filter(|z| z.is_dir()) {
        bail!("cannot write the ZIP to {}: it is a folder", zip.display());
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
    .and_then(|()| swap(&staged, out))
    .and_then(|()| match (&zip_staged, zip) {
        (Some(from), Some(to)) => {
            fs::rename(from, to).with_context(|| format!("cannot write {}", to.display()))
        }
        _ => Ok(()),
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&staged);
        if let Some(z) = &zip_staged {
            let _ = fs::remove_file(z);
        }
    }
    result
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

/// Renames `staged` onto `out`, moving an earlier export out of the way first.
fn swap(staged: &Path, out: &Path) -> Result<()> {
    let old = sibling(out, "old");
    let had_old = out.exists();
    if had_old {
        let _ = fs::remove_dir_all(&old);
        fs::rename(out, &old).with_context(|| format!("cannot replace {}", out.display()))?;
    }
    if let Err(e) = fs::rename(staged, out) {
        if had_old {
            let _ = fs::rename(&old, out);
        }
        return Err(e).with_context(|| format!("cannot write {}", out.display()));
    }
    if had_old {
        let _ = fs::remove_dir_all(&old);
    }
    Ok(())
}
