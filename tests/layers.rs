//! The module layering has no cycles: `cargo test --test layers`.
//!
//! Reads every file under `src/` (tests and comments left out), collects which
//! top-level module refers to which through `crate::module` paths, and fails
//! on a cycle, printing it. `docs/architecture.md` draws the resulting layers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments, string contents and `#[cfg(test)]` items.
fn code(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            i = src[i..].find("*/").map_or(b.len(), |e| i + e + 2);
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
            out.push_str("\"\"");
        } else if b[i..].starts_with(b"#[cfg(test)]") {
            // skip the item that follows: up to its end `;` or its balanced `{ … }`
            let mut depth = 0usize;
            while i < b.len() {
                match b[i] {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            i += 1;
                            break;
                        }
                    }
                    b';' if depth == 0 => {
                        i += 1;
                        break;
                    }
                    _ => {}
                }
                i += 1;
            }
        } else {
            out.push(b[i] as char);
            i += 1;
        }
    }
    out
}

#[test]
fn no_cycle_among_top_level_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for p in &all {
        let rel = p.strip_prefix(&src).unwrap().with_extension("");
        let top = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
        if top == "main" || top == "lib" || rel.ends_with("tests") {
            continue;
        }
        let text = code(&std::fs::read_to_string(p).unwrap());
        let deps = edges.entry(top.clone()).or_default();
        for (i, _) in text.match_indices("crate::") {
            let name: String = text[i + 7..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
            if !name.is_empty() && name != top {
                deps.insert(name);
            }
        }
    }
    assert!(edges.len() > 10, "too few modules found: {edges:?}");
    // depth-first search for a back edge
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == n) {
            let mut cycle = path[at..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        path.push(n.to_string());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        if let Some(cycle) = visit(n, &edges, &mut Vec::new(), &mut done) {
            let graph: Vec<String> =
                edges.iter().map(|(k, v)| format!("  {k} -> {}", v.iter().cloned().collect::<Vec<_>>().join(", "))).collect();
            panic!("module cycle: {}\nedges:\n{}", cycle.join(" -> "), graph.join("\n"));
        }
    }
}

#[test]
fn the_checker_sees_through_comments_strings_and_tests() {
    let c = code("use crate::a; // crate::b\n/* crate::c */ let s = \"crate::d\";\n#[cfg(test)]\nmod tests { use crate::e; }\n#[cfg(test)]\nuse crate::f;\nfn g() { crate::h::x() }");
    assert!(c.contains("crate::a") && c.contains("crate::h"), "{c}");
    for hidden in ["crate::b", "crate::c", "crate::d", "crate::e", "crate::f"] {
        assert!(!c.contains(hidden), "{hidden} in {c}");
    }
}
