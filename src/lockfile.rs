//! The `Cargo.lock` of a generated project: the embedded lock of a reference
//! project, whose versions are the ones svcgen's tests build, test and lint
//! together, with its root package renamed and moved to where cargo sorts
//! it, so that `cargo build --locked` works from the first build.

use anyhow::{bail, Result};

/// The root package of the embedded reference lock.
pub const REFERENCE_ROOT: &str = "demo-svc";

/// The reference lock, made for the crate `crate_name`.
pub fn for_crate(reference: &str, crate_name: &str) -> Result<String> {
    let mut chunks = reference
        .split("\n\n")
        .map(|chunk| chunk.trim_end_matches('\n'));
    let header = chunks.next().unwrap_or_default();
    let mut packages: Vec<String> = chunks.map(str::to_string).collect();
    let root_name = format!("name = \"{REFERENCE_ROOT}\"");
    let Some(root) = packages.iter_mut().find(|package| {
        package.lines().nth(1) == Some(root_name.as_str())
            && !package.lines().any(|line| line.starts_with("source = "))
    }) else {
        bail!("internal error: the embedded Cargo.lock has no root package {REFERENCE_ROOT}");
    };
    *root = root.replacen(&root_name, &format!("name = \"{crate_name}\""), 1);
    // Cargo orders packages by name (then version); a stable sort by name
    // keeps the versions of one crate in the order cargo gave them.
    packages.sort_by(|a, b| package_name(a).cmp(package_name(b)));
    let mut lock = String::from(header);
    for package in &packages {
        lock.push_str("\n\n");
        lock.push_str(package);
    }
    lock.push('\n');
    Ok(lock)
}

fn package_name(package: &str) -> &str {
    package
        .lines()
        .nth(1)
        .and_then(|line| line.strip_prefix("name = \""))
        .and_then(|name| name.strip_suffix('"'))
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = "# header\nversion = 4\n\n[[package]]\nname = \"axum\"\nversion = \"0.8.9\"\nsource = \"registry\"\n\n[[package]]\nname = \"demo-svc\"\nversion = \"0.1.0\"\ndependencies = [\n \"axum\",\n]\n\n[[package]]\nname = \"syn\"\nversion = \"1.0.0\"\nsource = \"registry\"\n\n[[package]]\nname = \"syn\"\nversion = \"2.0.0\"\nsource = \"registry\"\n";

    #[test]
    fn the_reference_lock_is_unchanged_for_its_own_name() {
        assert_eq!(for_crate(LOCK, REFERENCE_ROOT).unwrap(), LOCK);
    }

    #[test]
    fn the_root_is_renamed_and_sorted_among_the_packages() {
        let lock = for_crate(LOCK, "zeta").unwrap();
        let names: Vec<&str> = lock.split("\n\n").skip(1).map(package_name).collect();
        assert_eq!(names, ["axum", "syn", "syn", "zeta"]);
        assert!(lock.contains("name = \"zeta\"\nversion = \"0.1.0\"\ndependencies"));
        assert!(lock.find("version = \"1.0.0\"") < lock.find("version = \"2.0.0\""));
        assert!(lock.ends_with("]\n"), "{lock:?}");
    }

    #[test]
    fn the_embedded_reference_lock_has_its_root() {
        let reference = crate::render::reference_lock().unwrap();
        assert!(for_crate(reference, "x-svc")
            .unwrap()
            .contains("name = \"x-svc\""));
    }

    /// The versions of `name` in `lock`.
    fn versions<'a>(lock: &'a str, name: &str) -> Vec<&'a str> {
        lock.split("\n\n")
            .filter(|package| package_name(package) == name)
            .filter_map(|package| package.lines().nth(2)?.strip_prefix("version = \""))
            .map(|version| version.trim_end_matches('"'))
            .collect()
    }

    #[test]
    fn the_reference_lock_builds_one_syn_and_no_second_regex_engine() {
        // scripts/refresh-reference-lock.sh pins these to cut a cold build
        // of a generated project; a plain `cargo generate-lockfile` undoes
        // them. Run the script.
        let reference = crate::render::reference_lock().unwrap();
        for name in ["syn", "prettyplease", "itertools", "logos"] {
            let found = versions(reference, name);
            assert_eq!(found.len(), 1, "{name}: {found:?}");
        }
        assert!(versions(reference, "syn")[0].starts_with("2."));
        assert!(versions(reference, "logos")[0].starts_with("0.15."));
    }
}
