//! What a command that grows a project (`add-method`, `add-upstream`)
//! writes besides its own additions: every svcgen-owned file rewritten from
//! the new spec (or deleted when the layout no longer has it), hand edits
//! refused or kept as `.orig` under `--force`, and the manifest last. The
//! steps are decided before anything is written and shown as a diff by
//! `--dry-run`.

use std::fmt::Write as _;

use anyhow::{bail, Context, Result};

use crate::diff;
use crate::layout::Owner;
use crate::manifest::{self, content_hash};
use crate::project::Project;
use crate::render::RenderedFile;
use crate::write::Change;

/// One file to write or delete, and what it holds now (`None`: a new file).
pub struct Step {
    pub change: Change,
    pub before: Option<String>,
}

impl Step {
    /// Creates or replaces `path`, which holds `before` now.
    pub fn write(path: String, contents: String, before: Option<String>) -> Step {
        Step {
            change: Change::write(path, contents),
            before,
        }
    }

    /// Deletes `path`, which holds `before` now.
    pub fn delete(path: String, before: String) -> Step {
        Step {
            change: Change::delete(path),
            before: Some(before),
        }
    }
}

/// The rewrites of svcgen-owned files for `files` (the whole project as
/// the new spec renders it), with `.orig` backups first when `force` lets
/// hand-edited files be replaced.
pub struct Owned {
    pub steps: Vec<Step>,
    /// Owned files that were edited by hand and are rewritten under --force.
    pub backed_up: Vec<String>,
}

/// Plans the svcgen-owned files' rewrites; refuses hand edits without `force`.
pub fn owned(project: &Project, files: &[RenderedFile], force: bool) -> Result<Owned> {
    // svcgen-owned files: rewritten (or, when the layout no longer has
    // them, deleted), unless edited by hand.
    let mut rewrites = Vec::new();
    let mut edited = Vec::new();
    for file in files.iter().filter(|file| file.owner == Owner::Svcgen) {
        let current = project.read(&file.path)?;
        if current.as_deref() == Some(file.contents.as_str()) {
            continue;
        }
        if let Some(text) = &current {
            if !recorded(project, &file.path, text) {
                edited.push((file.path.clone(), text.clone()));
            }
        }
        rewrites.push(Step::write(
            file.path.clone(),
            file.contents.clone(),
            current,
        ));
    }
    for path in project.manifest.owned.keys() {
        if files.iter().any(|file| &file.path == path) {
            continue;
        }
        let Some(text) = project.read(path)? else {
            continue;
        };
        if !recorded(project, path, &text) {
            edited.push((path.clone(), text.clone()));
        }
        rewrites.push(Step::delete(path.clone(), text));
    }
    if !edited.is_empty() && !force {
        let names: Vec<&str> = edited.iter().map(|(path, _)| path.as_str()).collect();
        bail!(
            "{} edited by hand (its SHA-256 no longer matches svcgen.toml): {}; move your change into your own files, or pass --force to rewrite it and keep your version as <file>.orig",
            if names.len() == 1 { "a svcgen-owned file was" } else { "svcgen-owned files were" },
            names.join(", ")
        );
    }
    let mut steps = Vec::new();
    let mut backed_up = Vec::new();
    for (path, text) in edited {
        let backup = format!("{path}.orig");
        if project.read(&backup)?.is_some() {
            bail!("{backup} already exists; move it away so that --force can keep your edited {path} there");
        }
        steps.push(Step::write(backup, text, None));
        backed_up.push(path);
    }
    steps.extend(rewrites);

    Ok(Owned { steps, backed_up })
}

/// The manifest step, last of every plan.
pub fn manifest(project: &Project, files: &[RenderedFile]) -> Result<Step> {
    let contents = rendered(files, manifest::FILE_NAME)?.to_string();
    let before = project.read(manifest::FILE_NAME)?;
    Ok(Step::write(
        manifest::FILE_NAME.to_string(),
        contents,
        before,
    ))
}

/// Whether `text` is what svcgen last wrote to the owned file `path`.
fn recorded(project: &Project, path: &str, text: &str) -> bool {
    project.manifest.owned.get(path) == Some(&content_hash(text))
}

/// The contents `files` rendered for `path` (an internal error when the
/// layout did not render it).
pub fn rendered<'a>(files: &'a [RenderedFile], path: &str) -> Result<&'a str> {
    files
        .iter()
        .find(|file| file.path == path)
        .map(|file| file.contents.as_str())
        .with_context(|| format!("internal error: {path} was not rendered"))
}

/// A unified diff of every step, for `--dry-run`.
pub fn diff(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        out.push('\n');
        out.push_str(&diff::unified(
            &step.change.path,
            step.before.as_deref(),
            step.change.contents.as_deref(),
        ));
    }
    out
}

/// One line per step: `created`, `updated` or `deleted`, and the path.
pub fn listing(steps: &[Step]) -> String {
    let mut out = String::new();
    for step in steps {
        let verb = match (&step.before, &step.change.contents) {
            (_, None) => "deleted",
            (Some(_), Some(_)) => "updated",
            (None, Some(_)) => "created",
        };
        let _ = writeln!(out, "  {verb:<8} {}", step.change.path);
    }
    out
}
