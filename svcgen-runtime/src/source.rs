//! This crate's own files, byte for byte, so that svcgen can vendor exactly
//! this version of the runtime into a project it generates: until the crate
//! is published, a project depends on its vendored copy by path.
//!
//! The list holds the library (manifest, README, contract, sources), not
//! the integration tests. A test checks it against the crate's directory,
//! so a new source file cannot be forgotten here.

/// One file of the crate.
#[derive(Debug, Clone, Copy)]
pub struct File {
    /// Path relative to the crate root, with `/` separators.
    pub path: &'static str,
    /// The file's text.
    pub contents: &'static str,
}

/// The crate's version, as in its `Cargo.toml`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

macro_rules! files {
    ($($path:literal),* $(,)?) => {
        &[$(File { path: $path, contents: include_str!(concat!("../", $path)) }),*]
    };
}

/// Every file of the crate's library, sorted by path.
pub const FILES: &[File] = files![
    "Cargo.toml",
    "README.md",
    "docs/contract.md",
    "src/app.rs",
    "src/auth.rs",
    "src/config.rs",
    "src/context.rs",
    "src/control.rs",
    "src/data.rs",
    "src/definition.rs",
    "src/descriptors.rs",
    "src/frames.rs",
    "src/ids.rs",
    "src/lib.rs",
    "src/listen.rs",
    "src/logging.rs",
    "src/macros.rs",
    "src/memory.rs",
    "src/runner.rs",
    "src/server.rs",
    "src/shutdown.rs",
    "src/source.rs",
    "src/stream.rs",
    "src/tasks.rs",
    "src/testing.rs",
    "src/upstream.rs",
    "src/wire.rs",
];

#[cfg(test)]
mod tests {
    use super::FILES;
    use std::path::Path;

    /// Files under `dir` (relative to the crate root), recursively.
    fn walk(root: &Path, dir: &str, out: &mut Vec<String>) {
        let entries = std::fs::read_dir(root.join(dir)).expect("read the crate directory");
        for entry in entries {
            let entry = entry.expect("a directory entry");
            let path = format!("{dir}/{}", entry.file_name().to_string_lossy());
            if entry.file_type().expect("a file type").is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path);
            }
        }
    }

    #[test]
    fn the_list_holds_every_file_of_the_library_in_order() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut found = vec!["Cargo.toml".to_string(), "README.md".to_string()];
        walk(root, "docs", &mut found);
        walk(root, "src", &mut found);
        found.sort();
        let listed: Vec<&str> = FILES.iter().map(|file| file.path).collect();
        assert_eq!(listed, found);
        for file in FILES {
            let on_disk = std::fs::read_to_string(root.join(file.path)).expect("read");
            assert_eq!(file.contents, on_disk, "{}", file.path);
        }
    }
}
