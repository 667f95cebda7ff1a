//! The layering of `core/src` is true and checked.
//!
//! `docs/architecture.md` §1 holds the one "may depend on" table (the rows after the
//! `<!-- layering table -->` marker). This test reads it, reads every `.rs` file under
//! `core/src`, maps each file to its top-level module (`src/storage/writer.rs` -> `storage`,
//! `src/engine.rs` -> `engine`, `src/bin/**` -> `bin`), finds every path that leaves the
//! module (`crate::x`, each item of a `use crate::{..}` group over any number of lines,
//! `super::` chains that climb out of the module, and in `bin` every `telemetron::x`), and
//! fails naming the file, the line and the edge for each edge the table does not allow.
//! Comments, string and character literals are skipped: they do not link modules.
//!
//! Paths through the crate root's re-exports (`crate::Error`, `crate::Engine`,
//! `telemetron::connect`) count as edges to the module that defines the item, read from
//! the `pub use` lines of `src/lib.rs`. `src/lib.rs` itself is the facade and is exempt.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const TABLE_MARKER: &str = "<!-- layering table";

/// One row of the table.
#[derive(Debug)]
struct Row {
    allowed: BTreeSet<String>,
    planned: bool,
}

/// A use of another module found in a source file.
#[derive(Debug, PartialEq, Eq)]
struct Edge {
    line: usize,
    to: String,
}

/// Parse the "may depend on" table: rows `| \`module\` ... | role | \`a\`, \`b\` |` (or
/// `—` for nothing) after the marker line, up to the first line that is not a table row.
fn parse_table(doc: &str) -> Result<BTreeMap<String, Row>, String> {
    let start = doc
        .lines()
        .position(|l| l.contains(TABLE_MARKER))
        .ok_or_else(|| format!("docs/architecture.md has no `{TABLE_MARKER} -->` line; put it right above the \"may depend on\" table"))?;
    let mut rows = BTreeMap::new();
    for line in doc.lines().skip(start + 1).skip_while(|l| l.trim().is_empty()) {
        let line = line.trim();
        if !line.starts_with('|') {
            break;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        if cells.iter().all(|c| c.chars().all(|ch| matches!(ch, '-' | ':' | ' '))) || cells[0] == "module" {
            continue;
        }
        let [first, _, deps] = cells[..] else {
            return Err(format!("table row {line:?} must have three cells: module | role | may depend on"));
        };
        let name = backticked(first).into_iter().next().ok_or_else(|| format!("table row {line:?}: the module cell has no `name`"))?;
        let name = name.trim_end_matches('/').to_string();
        let row = Row { allowed: backticked(deps).into_iter().collect(), planned: first.contains("planned") };
        if rows.insert(name.clone(), row).is_some() {
            return Err(format!("the layering table has two rows for `{name}`"));
        }
    }
    if rows.is_empty() {
        return Err(format!("no table rows after the `{TABLE_MARKER}` line in docs/architecture.md"));
    }
    Ok(rows)
}

fn backticked(s: &str) -> Vec<String> {
    s.split('`').skip(1).step_by(2).map(str::to_string).collect()
}

/// The text with comments, string literals and character literals blanked (newlines kept,
/// so byte offsets still give the right line).
fn strip(src: &str) -> String {
    let c: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len());
    let blank = |out: &mut String, ch: char| out.push(if ch == '\n' { '\n' } else { ' ' });
    let mut i = 0;
    while i < c.len() {
        let at = |k: usize| c.get(i + k).copied().unwrap_or('\0');
        if at(0) == '/' && at(1) == '/' {
            while i < c.len() && c[i] != '\n' {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if at(0) == '/' && at(1) == '*' {
            let mut depth = 0;
            while i < c.len() {
                if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
        } else if at(0) == 'r' && (at(1) == '"' || (at(1) == '#' && (at(2) == '"' || at(2) == '#'))) && !ident_char(prev(&c, i)) {
            // Raw string r#"..."#.
            let hashes = c[i + 1..].iter().take_while(|&&ch| ch == '#').count();
            let close: String = std::iter::once('"').chain(std::iter::repeat_n('#', hashes)).collect();
            let body_start = i + 2 + hashes;
            let rest: String = c[body_start..].iter().collect();
            let end = rest.find(&close).map_or(c.len(), |e| body_start + rest[..e].chars().count() + close.chars().count());
            for &ch in &c[i..end] {
                blank(&mut out, ch);
            }
            i = end;
        } else if at(0) == '"' {
            blank(&mut out, c[i]);
            i += 1;
            while i < c.len() && c[i] != '"' {
                if c[i] == '\\' {
                    blank(&mut out, c[i]);
                    i += 1;
                }
                if i < c.len() {
                    blank(&mut out, c[i]);
                    i += 1;
                }
            }
            if i < c.len() {
                blank(&mut out, c[i]);
                i += 1;
            }
        } else if at(0) == '\'' && (at(1) == '\\' || at(2) == '\'') {
            // A character literal ('x', '\n', '\u{7f}'); a lifetime ('a) has no closing quote.
            let end = c[i + 1..].iter().position(|&ch| ch == '\'').map_or(c.len(), |p| i + 1 + p + 1);
            let end = if at(1) == '\\' && at(2) == '\'' { i + 4 } else { end };
            for &ch in &c[i..end.min(c.len())] {
                blank(&mut out, ch);
            }
            i = end;
        } else {
            out.push(c[i]);
            i += 1;
        }
    }
    out
}

fn prev(c: &[char], i: usize) -> char {
    if i == 0 { ' ' } else { c[i - 1] }
}

fn ident_char(ch: char) -> bool {
    ch.is_alphanumeric() || ch == '_'
}

fn ident_at(s: &str, at: usize) -> &str {
    let rest = &s[at..];
    let end = rest.find(|ch: char| !ident_char(ch)).unwrap_or(rest.len());
    &rest[..end]
}

fn skip_space(s: &str, mut at: usize) -> usize {
    while s[at..].starts_with(char::is_whitespace) {
        at += s[at..].chars().next().map_or(1, char::len_utf8);
    }
    at
}

fn line_of(s: &str, at: usize) -> usize {
    s[..at].matches('\n').count() + 1
}

/// The first name of every path that starts at `prefix` (`crate::` or `telemetron::`):
/// `crate::a::b` gives `a`; `crate::{a::X, b::{Y, Z}, c}` gives `a`, `b`, `c`, each with
/// the line it is on.
fn root_paths(s: &str, prefix: &str) -> Vec<Edge> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(p) = s[from..].find(prefix) {
        let at = from + p;
        from = at + prefix.len();
        let before = s[..at].chars().next_back().unwrap_or(' ');
        if ident_char(before) || before == ':' {
            continue; // `foo::crate::` or `mycrate::`: not a path from this crate's root
        }
        let next = skip_space(s, from);
        if s[next..].starts_with('{') {
            group_items(s, next, &mut out);
        } else {
            let name = ident_at(s, next);
            if !name.is_empty() {
                out.push(Edge { line: line_of(s, next), to: name.to_string() });
            }
        }
    }
    out
}

/// The first name of each top-level item of the `{...}` group opening at `open`.
fn group_items(s: &str, open: usize, out: &mut Vec<Edge>) {
    let mut depth = 0;
    let mut expect_item = true;
    let mut i = open;
    while i < s.len() {
        let ch = s[i..].chars().next().unwrap_or(' ');
        match ch {
            '{' => {
                depth += 1;
                expect_item = depth == 1;
            }
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return;
                }
            }
            ',' if depth == 1 => expect_item = true,
            c if expect_item && depth == 1 && ident_char(c) => {
                let name = ident_at(s, i);
                out.push(Edge { line: line_of(s, i), to: name.to_string() });
                expect_item = false;
                i += name.len();
                continue;
            }
            _ => {}
        }
        i += ch.len_utf8();
    }
}

/// Paths `super::super::..::x` that climb above the file's top-level module. `depth` is
/// how deep the file's own module is below the crate root (`src/a.rs` and `src/a/mod.rs`:
/// 1, `src/a/b.rs`: 2); inline `mod x { .. }` blocks add one inside their braces.
fn escaping_supers(s: &str, depth: usize) -> Vec<Edge> {
    let mut out = Vec::new();
    let mut braces = 0usize;
    let mut inline_mods: Vec<usize> = Vec::new();
    let mut pending_mod = false;
    let mut i = 0;
    while i < s.len() {
        let ch = s[i..].chars().next().unwrap_or(' ');
        if ch == '{' {
            braces += 1;
            if pending_mod {
                inline_mods.push(braces);
                pending_mod = false;
            }
        } else if ch == '}' {
            if inline_mods.last() == Some(&braces) {
                inline_mods.pop();
            }
            braces = braces.saturating_sub(1);
        } else if ch == ';' {
            pending_mod = false;
        } else if ident_char(ch) && !ident_char(prev_char(s, i)) {
            let word = ident_at(s, i);
            if word == "mod" {
                pending_mod = true;
            } else if word == "super" && !s[..i].trim_end().ends_with("::") {
                let mut supers = 0;
                let mut j = i;
                while ident_at(s, j) == "super" && s[j + 5..].starts_with("::") {
                    supers += 1;
                    j = skip_space(s, j + 7);
                }
                let here = depth + inline_mods.len();
                if supers >= here {
                    // Climbed to the crate root: the next name (or the one `supers - here`
                    // further) is a top-level module or root item.
                    let mut k = i;
                    for _ in 0..here {
                        k = skip_space(s, k + 7);
                    }
                    let name = ident_at(s, k);
                    if !name.is_empty() && name != "super" {
                        out.push(Edge { line: line_of(s, i), to: name.to_string() });
                    } else if s[k..].starts_with('{') {
                        group_items(s, k, &mut out);
                    }
                }
                i = j.max(i + "super".len()); // `pub(super)` has no `::` after it
                continue;
            }
            i += word.len();
            continue;
        }
        i += ch.len_utf8();
    }
    out
}

fn prev_char(s: &str, i: usize) -> char {
    s[..i].chars().next_back().unwrap_or(' ')
}

/// The crate root: its modules, and which module each root re-export comes from.
struct Root {
    modules: BTreeSet<String>,
    reexports: BTreeMap<String, String>,
}

fn parse_root(lib_rs: &str) -> Root {
    let s = without_attributes(&strip(lib_rs));
    let mut modules = BTreeSet::new();
    let mut reexports = BTreeMap::new();
    for stmt in s.split(';') {
        let stmt = stmt.split_whitespace().collect::<Vec<_>>().join(" ");
        let body = ["pub(crate) ", "pub "].iter().find_map(|p| stmt.strip_prefix(p)).unwrap_or(&stmt);
        if let Some(m) = body.strip_prefix("mod ") {
            modules.insert(m.trim().to_string());
        } else if let Some((module, items)) = body.strip_prefix("use ").and_then(|u| u.split_once("::")) {
            for item in items.trim().trim_start_matches('{').trim_end_matches('}').split(',') {
                let name = item.rsplit(" as ").next().unwrap_or(item).trim();
                let name = name.rsplit("::").next().unwrap_or(name);
                if !name.is_empty() {
                    reexports.insert(name.to_string(), module.trim().to_string());
                }
            }
        }
    }
    Root { modules, reexports }
}

/// The text without `#[..]` and `#![..]` attributes.
fn without_attributes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    let mut chars = s.chars().peekable();
    while let Some(ch) = chars.next() {
        if depth == 0 && ch == '#' && matches!(chars.peek(), Some('[') | Some('!')) {
            if chars.peek() == Some(&'!') {
                chars.next();
            }
            chars.next();
            depth = 1;
        } else if depth > 0 {
            match ch {
                '[' => depth += 1,
                ']' => depth -= 1,
                _ => {}
            }
        } else {
            out.push(ch);
        }
    }
    out
}

/// A violation: `file:line: module -> target (crate::target)` and why.
fn check_file(rel: &str, src: &str, root: &Root, table: &BTreeMap<String, Row>) -> Vec<String> {
    let Some((module, depth)) = module_of(rel) else { return Vec::new() };
    let s = strip(src);
    let edges = if module == "bin" {
        root_paths(&s, "telemetron::")
    } else {
        let mut e = root_paths(&s, "crate::");
        e.extend(escaping_supers(&s, depth));
        e
    };
    let mut out = Vec::new();
    for Edge { line, to } in edges {
        let target = if root.modules.contains(&to) {
            to.clone()
        } else if let Some(m) = root.reexports.get(&to) {
            m.clone()
        } else if module == "bin" {
            continue; // `telemetron::` inside a string-free path that is not ours, e.g. a crate name
        } else {
            out.push(format!(
                "{rel}:{line}: `{to}` is neither a module nor a `pub use` re-export of src/lib.rs; name the module it comes from"
            ));
            continue;
        };
        if target == module {
            continue;
        }
        match table.get(&module) {
            None => out.push(format!(
                "{rel}:{line}: module `{module}` has no row in the layering table of docs/architecture.md §1; add one"
            )),
            Some(row) if !row.allowed.contains(&target) => out.push(format!(
                "{rel}:{line}: forbidden edge {module} -> {target} (via `{to}`): the layering table in docs/architecture.md §1 does not let `{module}` depend on `{target}`"
            )),
            Some(_) => {}
        }
    }
    out
}

/// `src`-relative path -> (top-level module, depth of the file's module below the root).
fn module_of(rel: &str) -> Option<(String, usize)> {
    let parts: Vec<&str> = rel.split('/').collect();
    match parts.as_slice() {
        ["lib.rs"] => None,
        ["bin", ..] => Some(("bin".to_string(), 0)),
        [file] => Some((file.trim_end_matches(".rs").to_string(), 1)),
        [top, rest @ ..] => {
            let last = rest.last().copied().unwrap_or("mod.rs");
            let depth = 1 + rest.len() - usize::from(last == "mod.rs");
            Some((top.to_string(), depth))
        }
        [] => None,
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display())).flatten().collect();
    entries.sort_by_key(|e| e.path());
    for e in entries {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A cycle in the table, if any (the table itself must be a layering).
fn table_cycle(table: &BTreeMap<String, Row>) -> Option<Vec<String>> {
    fn visit(m: &str, table: &BTreeMap<String, Row>, stack: &mut Vec<String>, done: &mut BTreeSet<String>) -> Option<Vec<String>> {
        if let Some(p) = stack.iter().position(|s| s == m) {
            let mut cycle = stack[p..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if !done.insert(m.to_string()) {
            return None;
        }
        stack.push(m.to_string());
        for d in table.get(m).map(|r| r.allowed.iter().collect::<Vec<_>>()).unwrap_or_default() {
            if let Some(c) = visit(d, table, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    table.keys().find_map(|m| visit(m, table, &mut Vec::new(), &mut done))
}

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn load() -> (BTreeMap<String, Row>, Root, Vec<(String, String)>) {
    let doc = read(&manifest().join("../docs/architecture.md"));
    let table = parse_table(&doc).unwrap_or_else(|e| panic!("{e}"));
    let src = manifest().join("src");
    let root = parse_root(&read(&src.join("lib.rs")));
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let files = files
        .into_iter()
        .map(|p| {
            let rel = p.strip_prefix(&src).unwrap_or(&p).to_string_lossy().replace('\\', "/");
            let text = read(&p);
            (rel, text)
        })
        .collect();
    (table, root, files)
}

#[test]
fn every_edge_between_modules_is_in_the_table() {
    let (table, root, files) = load();
    let violations: Vec<String> = files.iter().flat_map(|(rel, src)| check_file(rel, src, &root, &table)).collect();
    assert!(
        violations.is_empty(),
        "{} use(s) break the layering (fix the import, or change the table in docs/architecture.md §1 if the design changed):\n{}",
        violations.len(),
        violations.join("\n")
    );
}

#[test]
fn the_table_has_a_row_for_every_module_and_no_stale_rows() {
    let (table, root, files) = load();
    let mut present: BTreeSet<String> = files.iter().filter_map(|(rel, _)| module_of(rel).map(|m| m.0)).collect();
    present.extend(root.modules.iter().cloned());
    for m in &present {
        assert!(table.contains_key(m), "module `{m}` (core/src) has no row in the layering table of docs/architecture.md §1; add one");
    }
    for (m, row) in &table {
        assert!(
            present.contains(m) || row.planned,
            "the layering table lists `{m}`, which is not a module of core/src; remove the row or mark it (planned)"
        );
        for d in &row.allowed {
            assert!(table.contains_key(d), "the row of `{m}` allows `{d}`, which has no row of its own");
        }
    }
}

#[test]
fn the_table_is_a_layering_without_cycles() {
    let (table, _, _) = load();
    if let Some(c) = table_cycle(&table) {
        panic!("the layering table of docs/architecture.md §1 has a cycle: {}", c.join(" -> "));
    }
}

// Self-checks: the checker finds what it must find, so a passing run means something.

fn fake_table() -> BTreeMap<String, Row> {
    let doc = "x\n<!-- layering table: read by core/tests/layering.rs -->\n\n| module | role | may depend on |\n|---|---|---|\n\
               | `telem` | vocabulary | — |\n| `storage` | disk | `telem` |\n| `engine` | ties | `telem`, `storage` |\n\
               | `flow/` (planned) | later | `engine` |\n\nafter\n";
    parse_table(doc).expect("fake table parses")
}

fn fake_root() -> Root {
    parse_root(
        "//! docs\npub mod telem;\npub mod storage;\nmod engine;\n#[cfg(feature = \"x\")]\npub use engine::{Engine, Options as Opts};\n",
    )
}

#[test]
fn self_check_table_parsing() {
    let t = fake_table();
    assert_eq!(t.keys().collect::<Vec<_>>(), ["engine", "flow", "storage", "telem"]);
    assert!(t["telem"].allowed.is_empty());
    assert!(t["flow"].planned && !t["engine"].planned);
    assert_eq!(t["engine"].allowed.iter().collect::<Vec<_>>(), ["storage", "telem"]);
    assert!(parse_table("no marker here").is_err());
    let root = fake_root();
    assert_eq!(root.reexports.get("Engine").map(String::as_str), Some("engine"));
    assert_eq!(root.reexports.get("Opts").map(String::as_str), Some("engine"));
    assert!(root.modules.contains("engine"));
}

#[test]
fn self_check_forbidden_edges_are_reported_with_file_line_and_edge() {
    let (t, root) = (fake_table(), fake_root());
    // A multi-line group, a path in code, a root re-export; a comment and a string that
    // must not count.
    let src = "use crate::{\n    telem::Frame,\n    engine::Hub,\n};\n// crate::engine::X\nfn f() { let _ = \"crate::engine\"; crate::Engine::open(); }\n";
    let v = check_file("storage/writer.rs", src, &root, &t);
    assert_eq!(v.len(), 2, "{v:#?}");
    assert!(v[0].starts_with("storage/writer.rs:3: forbidden edge storage -> engine"), "{}", v[0]);
    assert!(v[1].starts_with("storage/writer.rs:6: forbidden edge storage -> engine (via `Engine`)"), "{}", v[1]);
    // The same uses are allowed one layer up.
    assert!(check_file("engine.rs", src, &root, &t).is_empty());
    // An unknown module name, and a module without a row.
    assert!(check_file("telem/a.rs", "use crate::nowhere::X;", &root, &t)[0].contains("neither a module"));
    assert!(check_file("relay/mod.rs", "use crate::telem::X;", &root, &t)[0].contains("has no row"));
}

#[test]
fn self_check_super_chains_that_leave_the_module() {
    let (t, root) = (fake_table(), fake_root());
    // src/storage/a/b.rs is three deep: three `super` reach the root.
    let v = check_file("storage/a/b.rs", "use super::super::super::engine::Hub;\nuse super::super::x;\n", &root, &t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].starts_with("storage/a/b.rs:1: forbidden edge storage -> engine"), "{}", v[0]);
    // Inside an inline `mod tests { }` one more `super` is needed.
    let src =
        "pub(super) fn a() {}\n#[cfg(test)]\nmod tests {\n    use super::super::engine::X;\n    use super::super::super::engine::Y;\n}\n";
    let v = check_file("storage/a.rs", src, &root, &t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].starts_with("storage/a.rs:5:"), "{}", v[0]);
}

#[test]
fn self_check_bin_is_checked_through_the_facade() {
    let mut t = fake_table();
    t.insert("bin".into(), Row { allowed: ["engine".to_string()].into(), planned: false });
    let root = fake_root();
    let v = check_file("bin/telemetron/main.rs", "use crate::bench;\nuse telemetron::{Engine, storage::X};\n", &root, &t);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(v[0].starts_with("bin/telemetron/main.rs:2: forbidden edge bin -> storage"), "{}", v[0]);
}

#[test]
fn self_check_a_cyclic_table_is_refused() {
    let mut t = fake_table();
    assert_eq!(table_cycle(&t), None);
    t.get_mut("telem").expect("row").allowed.insert("engine".into());
    let c = table_cycle(&t).expect("cycle found");
    assert!(c.first() == c.last() && c.len() >= 3, "{c:?}");
}

#[test]
fn self_check_literals_and_lifetimes() {
    let s = strip("fn f<'a>(x: &'a str) -> char { let _ = r#\"crate::a\"#; let _ = '{'; let _ = '\\''; 'b' } // crate::c\n");
    assert!(!s.contains("crate::"), "{s}");
    assert!(s.contains("fn f<'a>(x: &'a str)"), "{s}");
    assert_eq!(s.matches('{').count(), 1, "{s}");
}
