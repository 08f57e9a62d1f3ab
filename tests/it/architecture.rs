//! The shape of `src/`, checked: the modules' dependencies (every `crate::x` a module's
//! code names) form no cycle, `ARCHITECTURE.md`'s module map says exactly what the code
//! does, and no file or function grows past what one reader can hold (issue 14's limits).
//! Plain text over the sources: comment lines and test modules are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// Non-test code longer than this (lines) is split by job.
const MAX_FILE_LINES: usize = 450;
/// A function longer than this (lines, signature to closing brace) is split into steps.
const MAX_FN_LINES: usize = 80;
/// Allowed past the limits, and why.
const EXEMPT: &[(&str, &str)] = &[(
    "fake_cloud/handlers.rs",
    "the fake cloud's HTTP handlers: one route each, read side by side with the API notes",
)];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Each source file's path under `src/` and its lines, test modules (a `tests.rs`, or a
/// trailing `#[cfg(test)] mod tests { … }`) left out.
fn sources() -> Vec<(String, Vec<String>)> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    files.sort();
    files
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != "tests.rs"))
        .map(|path| {
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            let code = match text.find("#[cfg(test)]\nmod tests {") {
                Some(at) => &text[..at],
                None => &text[..],
            };
            let lines = code.lines().map(str::to_owned).collect();
            let relative = path
                .strip_prefix(src())
                .expect("under src/")
                .to_string_lossy()
                .replace('\\', "/");
            (relative, lines)
        })
        .collect()
}

/// The top-level module a file belongs to: `pass/plan.rs` → `pass`, `app.rs` → `app`.
fn module_of(relative: &str) -> Option<String> {
    let first = relative.split('/').next()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "main" | "lib")).then(|| name.to_owned())
}

fn ident_at(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// Every module `code` names through `crate::`: `crate::x::…` and `use crate::{x, y::…}`.
fn named_modules(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // The names at the group's top level, up to its closing brace.
            let mut depth = 0;
            let mut start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        start = true;
                        continue;
                    }
                    c if c.is_whitespace() => continue,
                    _ => {}
                }
                if start && depth == 0 {
                    found.insert(ident_at(&group[i..]));
                }
                start = false;
            }
        } else {
            found.insert(ident_at(rest));
        }
    }
    found.retain(|m| !m.is_empty() && m != "self");
    found
}

/// Module → the other modules its code names.
fn dependency_graph() -> Graph {
    let mut graph = Graph::new();
    for (relative, lines) in sources() {
        let Some(module) = module_of(&relative) else {
            continue;
        };
        // Comments may name a module (a doc link) without depending on it.
        let code: Vec<&str> = lines
            .iter()
            .map(String::as_str)
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect();
        let uses = named_modules(&code.join("\n"));
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(uses.into_iter().filter(|m| *m != module));
    }
    graph
}

/// A cycle in `graph`, as a path that ends where it starts, if there is one.
fn find_cycle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &Graph,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(node, graph, &mut done, &mut Vec::new()))
}

/// The module map in ARCHITECTURE.md: table rows `| `module` | job | uses |`, where uses
/// is a comma-separated list of module names or `—`.
fn documented_map() -> Graph {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md");
    let text = std::fs::read_to_string(&path).expect("ARCHITECTURE.md at the repo's root");
    let mut map = Graph::new();
    for line in text.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        let [name, _job, uses] = cells.as_slice() else {
            continue;
        };
        let Some(name) = name.strip_prefix('`').and_then(|n| n.strip_suffix('`')) else {
            continue;
        };
        let uses = uses
            .split(',')
            .map(|u| u.trim().trim_matches('`').to_owned())
            .filter(|u| !u.is_empty() && u != "—")
            .collect();
        map.insert(name.to_owned(), uses);
    }
    map
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = dependency_graph();
    assert!(graph.len() > 20, "found only {} modules", graph.len());
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "the modules depend on each other in a circle: {}",
            cycle.join(" → ")
        );
    }
}

#[test]
fn architecture_md_maps_every_module_and_its_dependencies_as_the_code_has_them() {
    let code = dependency_graph();
    let documented = documented_map();
    let mut differences = Vec::new();
    for name in code
        .keys()
        .chain(documented.keys())
        .collect::<BTreeSet<_>>()
    {
        match (code.get(name), documented.get(name)) {
            (Some(c), Some(d)) if c == d => {}
            (Some(c), Some(d)) => differences.push(format!(
                "`{name}`: the code uses {c:?}, ARCHITECTURE.md says {d:?}"
            )),
            (Some(c), None) => differences.push(format!(
                "`{name}` (uses {c:?}) is missing from ARCHITECTURE.md's module map"
            )),
            (None, Some(_)) => differences.push(format!(
                "ARCHITECTURE.md maps `{name}`, which is not in src/"
            )),
            (None, None) => {}
        }
    }
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

#[test]
fn no_source_file_or_function_outgrows_one_reader() {
    let mut too_big = Vec::new();
    for (relative, lines) in sources() {
        if EXEMPT.iter().any(|(file, _)| *file == relative) {
            continue;
        }
        if lines.len() > MAX_FILE_LINES {
            too_big.push(format!("{relative}: {} lines of code", lines.len()));
        }
        for (start, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let signature = trimmed
                .trim_start_matches("pub ")
                .trim_start_matches("pub(crate) ")
                .trim_start_matches("pub(super) ")
                .trim_start_matches("const ")
                .trim_start_matches("async ");
            if !signature.starts_with("fn ") {
                continue;
            }
            let indent = &line[..line.len() - trimmed.len()];
            let end = lines[start..]
                .iter()
                .position(|l| l.strip_prefix(indent) == Some("}"));
            if let Some(length) = end.map(|e| e + 1)
                && length > MAX_FN_LINES
            {
                too_big.push(format!(
                    "{relative}:{}: `{}` is {length} lines",
                    start + 1,
                    ident_at(&signature["fn ".len()..])
                ));
            }
        }
    }
    assert!(
        too_big.is_empty(),
        "past {MAX_FILE_LINES} lines a file, {MAX_FN_LINES} a function:\n{}",
        too_big.join("\n")
    );
}

#[test]
fn the_checks_see_grouped_uses_and_cycles() {
    let code =
        "use crate::{api::ApiError, config::{self, Config}, ledger};\nlet x = crate::pass::run();";
    let names: Vec<String> = named_modules(code).into_iter().collect();
    assert_eq!(names, ["api", "config", "ledger", "pass"]);
    let mut graph = Graph::new();
    graph.insert("a".into(), BTreeSet::from(["b".into()]));
    graph.insert("b".into(), BTreeSet::from(["c".into()]));
    graph.insert("c".into(), BTreeSet::from(["a".into()]));
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    graph.get_mut("c").unwrap().clear();
    assert_eq!(find_cycle(&graph), None);
}
