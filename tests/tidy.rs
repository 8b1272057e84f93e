//! The layout's rules (ARCHITECTURE.md), checked on the source as rust-analyzer's tidy tests do:
//! the node and the console stand apart, etcd's vocabulary imports nothing of the crate, the
//! modules' imports form a tree, and files stay small enough to read.

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
    let mut found = naming("src/etcd", &["crate::"]);
    // `super::` as many times as a module is deep below etcd/ reaches the crate's root.
    for file in rust_files(&root().join("src/etcd")) {
        let name = relative(&file);
        let below = name.trim_start_matches("src/etcd/").trim_end_matches("/mod.rs").matches('/').count();
        let escape = "super::".repeat(below + 2);
        let text = std::fs::read_to_string(&file).expect("read a source file");
        for (i, line) in text.lines().enumerate() {
            if line.contains(&escape) {
                found.push(format!("{name}:{}: {}", i + 1, line.trim()));
            }
        }
    }
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

/// The paths a source text names: every `crate::a::b` (with `{..}` groups spelled out) and every
/// `super::a::b` of a top-level `use`, as segment lists; comments are skipped.
fn named_paths(text: &str) -> Vec<Vec<String>> {
    let code: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut out = Vec::new();
    for (root, top_level_only) in [("crate::", false), ("super::", true)] {
        let mut from = 0;
        while let Some(at) = code[from..].find(root).map(|i| i + from) {
            from = at + root.len();
            let before = &code[..at];
            let word_before =
                before.chars().last().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            if word_before
                || (top_level_only && !before.ends_with("\nuse ") && !before.ends_with("\npub use "))
            {
                continue;
            }
            let base = if root == "crate::" { vec!["crate".to_string()] } else { vec!["super".to_string()] };
            expand(&code[from..], base, &mut out);
        }
    }
    out
}

/// Reads one path (and its `{..}` group, if any) from the start of `rest`, below `base`.
fn expand(rest: &str, base: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = base;
    let mut word = String::new();
    for (i, c) in rest.char_indices() {
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
        } else if c == ':' {
            if !word.is_empty() {
                path.push(std::mem::take(&mut word));
            }
        } else if c == '{' {
            // The group's items, split at top-level commas.
            let mut depth = 1;
            let mut start = i + 1;
            for (j, d) in rest[i + 1..].char_indices() {
                let j = j + i + 1;
                match d {
                    '{' => depth += 1,
                    '}' | ',' if depth == 1 => {
                        let item = rest[start..j].trim();
                        if !item.is_empty() {
                            expand(item, path.clone(), out);
                        }
                        start = j + 1;
                        if d == '}' {
                            return;
                        }
                    }
                    '}' => depth -= 1,
                    _ => {}
                }
            }
            return;
        } else {
            break;
        }
    }
    if !word.is_empty() {
        path.push(word);
    }
    out.push(path);
}

/// The file of the module a path lands in: the longest prefix of it that is a module of src/.
fn module_file(src: &Path, path: &[String], file: &Path) -> Option<PathBuf> {
    let mut dir = match path.first().map(String::as_str) {
        Some("crate") => src.to_path_buf(),
        // `super` of a.rs or of a/mod.rs: the folder holding a.
        Some("super") => {
            let parent = file.parent()?;
            if file.file_name().is_some_and(|n| n == "mod.rs") {
                parent.parent()?.to_path_buf()
            } else {
                parent.to_path_buf()
            }
        }
        _ => return None,
    };
    // A path that names an item of the folder's own module lands in that module's file.
    let own = |dir: &Path| -> Option<PathBuf> {
        let candidates = if dir == src {
            vec![dir.join("lib.rs")]
        } else {
            vec![dir.join("mod.rs"), dir.with_extension("rs")]
        };
        candidates.into_iter().find(|f| f.is_file())
    };
    // Each further `super` goes one folder up.
    let ups = path.iter().skip(1).take_while(|s| *s == "super").count();
    for _ in 0..ups {
        dir = dir.parent()?.to_path_buf();
    }
    let mut found = own(&dir);
    for segment in &path[1 + ups..] {
        let as_file = dir.join(format!("{segment}.rs"));
        let as_dir = dir.join(segment).join("mod.rs");
        if as_file.is_file() {
            found = Some(as_file);
        } else if as_dir.is_file() {
            found = Some(as_dir);
        } else {
            break;
        }
        dir = dir.join(segment);
    }
    found
}

/// The modules a file declares with `mod name;` (not the #[path] test files).
fn declared_modules(file: &Path, text: &str) -> Vec<PathBuf> {
    let dir = if file.file_name().is_some_and(|n| n == "mod.rs" || n == "lib.rs" || n == "main.rs") {
        file.parent().map(Path::to_path_buf)
    } else {
        file.parent().map(|p| p.join(file.file_stem().unwrap_or_default()))
    };
    let Some(dir) = dir else { return Vec::new() };
    let mut out = Vec::new();
    let mut previous = "";
    for line in text.lines() {
        let line = line.trim();
        let name = line.strip_prefix("pub mod ").or_else(|| line.strip_prefix("mod "));
        if let Some(name) = name.and_then(|n| n.strip_suffix(';')) {
            if !previous.starts_with("#[path") {
                for candidate in [dir.join(format!("{name}.rs")), dir.join(name).join("mod.rs")] {
                    if candidate.is_file() {
                        out.push(candidate);
                    }
                }
            }
        }
        previous = line;
    }
    out
}

/// A file's code without its test module (`#[cfg(test)] mod tests { .. }`, at the end by habit):
/// what tests import does not tie the modules together.
fn without_tests(text: &str) -> &str {
    match text.find("\n#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    }
}

/// The circles among the modules of the crate whose source root is `src`: edges are imports and
/// `mod` declarations (the module that assembles another points to it), so a module importing its
/// assembler closes a circle too. Test modules and `*_tests.rs` files are left out.
fn circles(src: &Path) -> Vec<Vec<String>> {
    use std::collections::{BTreeMap, BTreeSet};
    let files: Vec<PathBuf> = rust_files(src)
        .into_iter()
        .filter(|f| {
            !f.to_string_lossy().ends_with("_tests.rs") && !f.components().any(|c| c.as_os_str() == "tests")
        })
        .collect();
    let inside: BTreeSet<PathBuf> = files.iter().cloned().collect();
    let mut edges: BTreeMap<PathBuf, BTreeSet<PathBuf>> = BTreeMap::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read a source file");
        let code = without_tests(&text);
        let mut to: BTreeSet<PathBuf> =
            named_paths(code).iter().filter_map(|p| module_file(src, p, file)).collect();
        to.extend(declared_modules(file, code));
        to.retain(|t| t != file && inside.contains(t));
        edges.insert(file.clone(), to);
    }
    // Tarjan's strongly connected components; a component of more than one file is a circle.
    struct Walk<'a> {
        base: &'a Path,
        edges: &'a BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        index: BTreeMap<PathBuf, usize>,
        low: BTreeMap<PathBuf, usize>,
        stack: Vec<PathBuf>,
        on_stack: BTreeSet<PathBuf>,
        found: Vec<Vec<String>>,
    }
    fn visit(w: &mut Walk, v: &PathBuf) {
        let n = w.index.len();
        w.index.insert(v.clone(), n);
        w.low.insert(v.clone(), n);
        w.stack.push(v.clone());
        w.on_stack.insert(v.clone());
        for t in w.edges.get(v).into_iter().flatten() {
            if !w.index.contains_key(t) {
                visit(w, t);
                let low = w.low[v].min(w.low[t]);
                w.low.insert(v.clone(), low);
            } else if w.on_stack.contains(t) {
                let low = w.low[v].min(w.index[t]);
                w.low.insert(v.clone(), low);
            }
        }
        if w.low[v] == w.index[v] {
            let mut component = Vec::new();
            while let Some(t) = w.stack.pop() {
                w.on_stack.remove(&t);
                let done = &t == v;
                component.push(t.strip_prefix(w.base).unwrap_or(&t).display().to_string());
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                w.found.push(component);
            }
        }
    }
    let mut walk = Walk {
        base: src.parent().unwrap_or(src),
        edges: &edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: Vec::new(),
    };
    for file in &files {
        if !walk.index.contains_key(file) {
            visit(&mut walk, file);
        }
    }
    walk.found
}

#[test]
fn the_modules_form_a_tree() {
    let found = circles(&root().join("src"));
    assert!(
        found.is_empty(),
        "the crate's imports must form a tree (no module imports one that imports it back, or the one \
         that declares it): move what both need into a module of its own:\n{}",
        found.iter().map(|c| c.join(" ↔ ")).collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn the_circle_finder_finds_circles() {
    let dir = tempfile::tempdir().expect("temp dir");
    let src = dir.path().join("src");
    let write = |path: &str, text: &str| {
        let path = src.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dirs");
        std::fs::write(path, text).expect("write");
    };
    write("lib.rs", "pub mod a;\npub mod b;\npub mod p;\npub mod t;\n");
    // a and b import each other.
    write("a.rs", "use crate::b::{B, other::X};\npub struct A;\n");
    write("b.rs", "pub struct B;\npub fn f() -> crate::a::A { crate::a::A }\n");
    // c imports what its assembler p defines; d is p's child and imports nothing back.
    write("p/mod.rs", "pub mod c;\nmod d;\npub mod q;\npub struct P;\n");
    write("p/c.rs", "use super::d;\nfn g(_: crate::p::P) {}\n");
    write("p/d.rs", "pub struct D;\n");
    // e, two levels down, reaches b through super::super: b imports nothing back, no circle.
    write("p/q/mod.rs", "pub mod e;\n");
    write("p/q/e.rs", "use super::super::super::b::B;\n");
    // t imports a only in its tests: no circle.
    write("t.rs", "pub struct T;\n\n#[cfg(test)]\nmod tests {\n    use crate::a::A;\n}\n");
    write("a_tests.rs", "use crate::t::T;\n");
    let mut found = circles(&src);
    found.sort();
    assert_eq!(found, [vec!["src/a.rs", "src/b.rs"], vec!["src/p/c.rs", "src/p/mod.rs"]]);
    let paths = named_paths(
        "use crate::node::{rpc::ctx::{Ctx, mismatched}, error::NodeError};\nuse super::apply::x;\n",
    );
    let spelled: Vec<String> = paths.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        spelled,
        [
            "crate::node::rpc::ctx::Ctx",
            "crate::node::rpc::ctx::mismatched",
            "crate::node::error::NodeError",
            "super::apply::x"
        ]
    );
}
