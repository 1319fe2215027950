//! Unified diffs for `--dry-run`, in the `git diff` shape.

use similar::TextDiff;

/// The unified diff turning `old` (`None`: a new file) into `new`
/// (`None`: the file is deleted).
pub fn unified(path: &str, old: Option<&str>, new: Option<&str>) -> String {
    let (from, old) = match old {
        Some(old) => (format!("a/{path}"), old),
        None => ("/dev/null".to_string(), ""),
    };
    let (to, new) = match new {
        Some(new) => (format!("b/{path}"), new),
        None => ("/dev/null".to_string(), ""),
    };
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&from, &to)
        .to_string()
}
