//! The layout's rules (ARCHITECTURE.md), checked on the source as rust-analyzer's tidy tests do:
//! the node and the console stand apart, etcd's vocabulary imports nothing of the crate, and files
//! stay small enough to read.

use std::path::{Path, PathBuf};

/// Lines a file in src/ may have.
const MAX_LINES: usize = 1000;
/// Lines main.rs may have: it parses and dispatches, the subcommands live in their own files.
const MAX_MAIN_LINES: usize = 120;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())).flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root()).unwrap_or(path).display().to_string()
}

/// Lines of `dir`'s files that name one of `paths`, as "file:line: text".
fn naming(dir: &str, paths: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for file in rust_files(&root().join(dir)) {
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for (i, line) in text.lines().enumerate() {
            if paths.iter().any(|p| line.contains(p)) {
                out.push(format!("{}:{}: {}", relative(&file), i + 1, line.trim()));
            }
        }
    }
    out
}

#[test]
fn the_node_imports_nothing_of_the_console() {
    let found = naming("src/node", &["crate::app", "crate::ui", "crate::{app", "crate::{ui"]);
    assert!(found.is_empty(), "node/ must stand alone (move what both need to etcd/):\n{}", found.join("\n"));
}

#[test]
fn the_console_imports_nothing_of_the_node() {
    let mut found = naming("src/app", &["crate::node", "crate::{node"]);
    found.extend(naming("src/ui", &["crate::node", "crate::{node"]));
    assert!(found.is_empty(), "the console talks to a node only through the etcd API:\n{}", found.join("\n"));
}

#[test]
fn etcds_vocabulary_imports_nothing_of_the_crate() {
    let found = naming("src/etcd", &["crate::", "super::super"]);
    assert!(found.is_empty(), "etcd/ is a leaf: it may use only std and dependencies:\n{}", found.join("\n"));
}

#[test]
fn files_stay_under_their_limits() {
    let mut problems = Vec::new();
    for file in rust_files(&root().join("src")) {
        let name = relative(&file);
        let lines = std::fs::read_to_string(&file).expect("read a source file").lines().count();
        let limit = if name == "src/main.rs" { MAX_MAIN_LINES } else { MAX_LINES };
        if lines > limit {
            problems.push(format!("{name}: {lines} lines, over {limit}: split it by job"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
