//! Unified diffs for `--dry-run`, in the `git diff` shape.

use similar::TextDiff;

/// The unified diff turning `old` (`None`: a new file) into `new`.
pub fn unified(path: &str, old: Option<&str>, new: &str) -> String {
    let (from, old) = match old {
        Some(old) => (format!("a/{path}"), old),
        None => ("/dev/null".to_string(), ""),
    };
    let to = format!("b/{path}");
    TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(3)
        .header(&from, &to)
        .to_string()
}
