//! Every log event and span of `core/src` carries a `key` in the experiment tree.
//!
//! `docs/observability.md` §2 says that every log line, span and metric carries a path-like
//! `key` naming where in the node it happened. This test reads every `.rs` file under
//! `core/src`, finds each `tracing` event and span macro (`tracing::info!(..)`,
//! `tracing::info_span!(..)`, `tracing::event!(..)` and the like), and fails naming the file
//! and line of each one without a `key = ...` field. A key given as a string literal must
//! start with one of the roots the document's tree lists, so the tree in the document and
//! the keys in the code cannot drift apart. (The runtime half of the check is in
//! `tests/observe.rs`: every line of a node's log file has a `key=`.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const MACROS: &[&str] = &[
    "tracing::trace!(",
    "tracing::debug!(",
    "tracing::info!(",
    "tracing::warn!(",
    "tracing::error!(",
    "tracing::event!(",
    "tracing::trace_span!(",
    "tracing::debug_span!(",
    "tracing::info_span!(",
    "tracing::warn_span!(",
    "tracing::error_span!(",
    "tracing::span!(",
];

fn rs_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rs_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The arguments of the macro call whose `(` is at `open`: up to the matching `)`,
/// skipping string literals.
fn args(src: &str, open: usize) -> &str {
    let b = src.as_bytes();
    let (mut depth, mut i, mut in_str) = (0usize, open, false);
    while i < b.len() {
        match (in_str, b[i]) {
            (true, b'\\') => i += 1,
            (true, b'"') => in_str = false,
            (false, b'"') => in_str = true,
            (false, b'(') => depth += 1,
            (false, b')') => {
                depth -= 1;
                if depth == 0 {
                    return &src[open + 1..i];
                }
            }
            _ => {}
        }
        i += 1;
    }
    &src[open + 1..]
}

/// The roots of the tree in `docs/observability.md` §2: the first segment of each line of
/// its first code block.
fn documented_roots() -> BTreeSet<String> {
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/observability.md")).unwrap();
    let section = &doc[doc.find("## 2. The experiment tree").expect("§2 of docs/observability.md")..];
    let block = section.split("```").nth(1).expect("the tree's code block");
    block
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|k| k.split('/').next().unwrap().to_string())
        .filter(|k| !k.is_empty())
        .collect()
}

#[test]
fn every_log_event_and_span_carries_a_documented_key() {
    let roots = documented_roots();
    assert!(roots.contains("storage") && roots.contains("server"), "{roots:?}");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rs_files(&src, &mut files);
    let mut found = 0;
    let mut missing = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for m in MACROS {
            for (at, _) in text.match_indices(m) {
                found += 1;
                let a = args(&text, at + m.len() - 1);
                let line = text[..at].lines().count();
                let here = format!("{}:{line}", f.strip_prefix(&src).unwrap().display());
                let Some(k) = a.find("key = ") else {
                    missing.push(format!("{here}: {m}..) has no `key = ...` field"));
                    continue;
                };
                let v = a[k + "key = ".len()..].trim_start();
                if let Some(lit) = v.strip_prefix('"') {
                    let key = &lit[..lit.find('"').unwrap()];
                    let root = key.split('/').next().unwrap();
                    if !roots.contains(root) {
                        missing.push(format!("{here}: key {key:?} is not under a root of docs/observability.md §2 {roots:?}"));
                    }
                }
            }
        }
    }
    assert!(found > 50, "only {found} tracing macros found: is the scan broken?");
    assert!(missing.is_empty(), "{} of {found} events and spans:\n{}", missing.len(), missing.join("\n"));
}
