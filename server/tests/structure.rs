//! How the workspace's code is laid out, held by tests: no crate has an
//! import cycle between its modules, and no function outside tests and
//! benchmarks is longer than [`LONGEST`] lines.
//!
//! Modules are files. A module depends on another when it names it
//! (`crate::a::b`, `super::x`, in `use` lines or in paths); naming one's
//! own ancestors does not count (a module is part of its parent), nor do
//! test modules.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates whose modules are checked, by their source folder.
const CRATES: [&str; 6] = ["wire", "init", "vmhost", "server", "cli", "web"];

/// The longest a function may be, in lines, signature to closing brace.
const LONGEST: usize = 120;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src` (`http::routes::exec`); `None`
/// for a binary's root, which is a crate of its own.
fn module_of(src: &Path, file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src).ok()?.with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    match parts.last().map(String::as_str) {
        Some("main") if parts.len() == 1 => return None,
        Some("bin") => return None,
        Some("mod") | Some("lib") => {
            parts.pop();
        }
        _ => {}
    }
    if parts.first().is_some_and(|p| p == "bin") {
        return None;
    }
    Some(parts)
}

/// The text without its `#[cfg(test)]` module (wherever it stands: to
/// the `}` that closes it at the start of a line).
fn without_tests(text: &str) -> String {
    let Some(start) = text.find("#[cfg(test)]\nmod tests") else {
        return text.to_string();
    };
    let end = text[start..]
        .find("\n}\n")
        .map_or(text.len(), |i| start + i + 3);
    format!("{}{}", &text[..start], &text[end..])
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// The paths a `{...}` group (after its `{`) or a single path (from
/// `start`) names, each as its segments.
fn paths_at(text: &str, start: usize) -> Vec<Vec<String>> {
    let rest = &text[start..];
    if let Some(group) = rest.strip_prefix('{') {
        let mut depth = 1;
        let mut end = 0;
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                _ => {}
            }
            if depth == 0 {
                end = i;
                break;
            }
        }
        let inner = &group[..end];
        let mut items = Vec::new();
        let (mut depth, mut from) = (0, 0);
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    items.push(&inner[from..i]);
                    from = i + 1;
                }
                _ => {}
            }
        }
        items.push(&inner[from..]);
        return items
            .into_iter()
            .map(|item| segments(item.trim()))
            .filter(|s| !s.is_empty())
            .collect();
    }
    vec![segments(rest)]
}

/// The leading `a::b::c` of `text`, as segments.
fn segments(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    loop {
        let end = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        out.push(rest[..end].to_string());
        match rest[end..].strip_prefix("::") {
            Some(next) if next.starts_with(is_ident) => rest = next,
            _ => break,
        }
    }
    out
}

/// The modules `text` (of module `me`) names, among `modules`.
fn dependencies(
    me: &[String],
    text: &str,
    modules: &BTreeSet<Vec<String>>,
) -> BTreeSet<Vec<String>> {
    let mut named: Vec<Vec<String>> = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        if i > 0 && text[..i].ends_with(is_ident) {
            continue;
        }
        named.extend(paths_at(text, i + "crate::".len()));
    }
    for (i, _) in text.match_indices("super::") {
        if i > 0 && (text[..i].ends_with(is_ident) || text[..i].ends_with("::")) {
            continue;
        }
        let mut up = 0;
        let mut at = i;
        while text[at..].starts_with("super::") {
            up += 1;
            at += "super::".len();
        }
        let base = &me[..me.len().saturating_sub(up)];
        for p in paths_at(text, at) {
            named.push(base.iter().cloned().chain(p).collect());
        }
    }
    let mut out = BTreeSet::new();
    for path in named {
        // The longest module the path starts with.
        let Some(m) = (1..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|p| modules.contains(p))
        else {
            continue;
        };
        if !me.starts_with(&m) {
            out.insert(m);
        }
    }
    out
}

/// The cycles among the modules of `krate`, each as its modules.
fn cycles(krate: &str) -> Vec<Vec<String>> {
    let src = workspace().join(krate).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let texts: BTreeMap<Vec<String>, String> = files
        .iter()
        .filter_map(|f| Some((module_of(&src, f)?, std::fs::read_to_string(f).ok()?)))
        .collect();
    let modules: BTreeSet<Vec<String>> = texts.keys().cloned().collect();
    let graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = texts
        .iter()
        .map(|(m, t)| (m.clone(), dependencies(m, &without_tests(t), &modules)))
        .collect();
    // Each module's reach; a module in another's reach and that one in its
    // own is a cycle.
    let reach = |from: &Vec<String>| {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<&Vec<String>> = graph[from].iter().collect();
        while let Some(m) = todo.pop() {
            if seen.insert(m.clone()) {
                todo.extend(graph.get(m).into_iter().flatten());
            }
        }
        seen
    };
    let reaches: BTreeMap<&Vec<String>, BTreeSet<Vec<String>>> =
        graph.keys().map(|m| (m, reach(m))).collect();
    let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
    for (m, r) in &reaches {
        if !r.contains(*m) {
            continue;
        }
        let cycle: Vec<String> = r
            .iter()
            .filter(|o| reaches[o].contains(*m))
            .map(|o| o.join("::"))
            .collect();
        found.insert(cycle);
    }
    found.into_iter().collect()
}

#[test]
fn no_crate_has_an_import_cycle() {
    let mut all = Vec::new();
    for krate in CRATES {
        for cycle in cycles(krate) {
            all.push(format!("{krate}: {}", cycle.join(" <-> ")));
        }
    }
    assert!(all.is_empty(), "import cycles:\n{}", all.join("\n"));
}

#[test]
fn the_cycle_check_sees_a_cycle() {
    let modules: BTreeSet<Vec<String>> = [vec!["a".to_string()], vec!["b".to_string()]].into();
    let a = dependencies(&["a".into()], "use crate::{b::Thing, c};", &modules);
    let b = dependencies(&["b".into()], "fn f() { super::a::go() }", &modules);
    assert_eq!(a, [vec!["b".to_string()]].into());
    assert_eq!(b, [vec!["a".to_string()]].into());
}

/// Functions (signature to closing brace) of `text` longer than
/// [`LONGEST`] lines, outside its test module; rustfmt's layout is relied
/// on: a body ends at the first `}` at the function's indentation.
fn long_functions(text: &str) -> Vec<(String, usize, usize)> {
    let text = without_tests(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let body = line.trim_start();
        let indent = &line[..line.len() - body.len()];
        let mut words = body.split_whitespace().peekable();
        while words.peek().is_some_and(|w| {
            w.starts_with("pub") || ["async", "const", "unsafe", "extern", "\"C\""].contains(w)
        }) {
            words.next();
        }
        if words.next() != Some("fn") {
            continue;
        }
        let name: String = words
            .next()
            .unwrap_or_default()
            .chars()
            .take_while(|c| is_ident(*c))
            .collect();
        // A declaration without a body (a trait's) ends with `;`.
        let Some(open) = (i..lines.len()).find(|&j| {
            let l = lines[j].trim_end();
            l.ends_with('{') || l.ends_with(';')
        }) else {
            continue;
        };
        if lines[open].trim_end().ends_with(';') {
            continue;
        }
        let close = format!("{indent}}}");
        let Some(end) = (open + 1..lines.len()).find(|&j| lines[j] == close) else {
            continue;
        };
        let n = end - i + 1;
        if n > LONGEST {
            out.push((name, i + 1, n));
        }
    }
    out
}

#[test]
fn no_function_is_longer_than_the_limit() {
    let mut long = Vec::new();
    for krate in CRATES {
        let src = workspace().join(krate).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        for f in files {
            let rel = f.strip_prefix(workspace()).unwrap().display().to_string();
            if rel.contains("/bench") {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            for (name, line, n) in long_functions(&text) {
                long.push(format!("{rel}:{line} {name}: {n} lines"));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {LONGEST} lines (split them into parts):\n{}",
        long.join("\n")
    );
}

#[test]
fn a_test_module_in_the_middle_hides_nothing_after_it() {
    let text = "fn a() {}\n\n#[cfg(test)]\nmod tests {\n    fn t() {}\n}\n\nfn b() {}\n";
    assert_eq!(without_tests(text), "fn a() {}\n\n\nfn b() {}\n");
}

#[test]
fn the_length_check_counts_a_body_and_skips_declarations() {
    let body: String = (0..LONGEST).map(|_| "    x();\n").collect();
    let text = format!(
        "trait T {{\n    fn d(\n        &self,\n    );\n}}\n\npub async fn f() {{\n{body}}}\n"
    );
    assert_eq!(
        long_functions(&text),
        vec![("f".to_string(), 7, LONGEST + 2)]
    );
}
