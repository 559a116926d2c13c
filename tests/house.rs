//! The house rules of `src/` (issues 17 and 28), checked so they stay
//! kept: every file opens with a `//!` comment saying what it is for and
//! stays under 500 lines; a function over 80 lines says why in a `// Long:`
//! comment just above it, and at most three do (one `match` or one state
//! machine, where a single function is the clearer form); no module's
//! files import one another in a circle; `relay/` names no rustls type; and
//! tests share helpers through a `testing` module, never another file's
//! `tests`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 500;
const MAX_FN_LINES: usize = 80;
/// The `// Long:` notes `src/` may carry in all.
const MAX_LONG_NOTES: usize = 3;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The name of the function a line declares (`pub(crate) async fn x(`),
/// if it does.
fn declares(line: &str) -> Option<&str> {
    let mut rest = line.trim_start();
    for word in [
        "pub(crate) ",
        "pub(super) ",
        "pub ",
        "const ",
        "async ",
        "unsafe ",
    ] {
        rest = rest.strip_prefix(word).unwrap_or(rest);
    }
    let rest = rest.strip_prefix("fn ")?;
    let end = rest.find(|c: char| !(c.is_alphanumeric() || c == '_'))?;
    Some(&rest[..end])
}

/// The functions over [`MAX_FN_LINES`] without a `// Long:` comment among
/// the comments and attributes just above them: "name (N lines)".
fn long_without_reason(lines: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(name) = declares(line) else { continue };
        let indent = &line[..line.len() - line.trim_start().len()];
        // The body: from the line that opens it to the closing brace at the
        // declaration's indentation. A declaration without a body ends in `;`.
        let Some(open) =
            (i..lines.len()).find(|&j| lines[j].contains('{') || lines[j].ends_with(';'))
        else {
            continue;
        };
        if !lines[open].contains('{') || lines[open].trim_end().ends_with('}') {
            continue;
        }
        let closing = format!("{indent}}}");
        let Some(end) = (open..lines.len()).find(|&j| lines[j] == closing) else {
            continue;
        };
        let len = end - i + 1;
        let above = lines[..i]
            .iter()
            .rev()
            .take_while(|l| l.trim_start().starts_with("//") || l.trim_start().starts_with("#["));
        if len > MAX_FN_LINES && !above.clone().any(|l| l.contains("// Long:")) {
            found.push(format!("{name} ({len} lines)"));
        }
    }
    found
}

#[test]
fn every_source_file_opens_with_its_purpose_and_stays_under_500_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut broken = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let name = f.strip_prefix(root).unwrap().display();
        let lines: Vec<&str> = text.lines().collect();
        if lines.len() >= MAX_FILE_LINES {
            broken.push(format!("{name}: {} lines", lines.len()));
        }
        if !text.starts_with("//!") {
            broken.push(format!("{name}: does not open with a //! comment"));
        }
        for f in long_without_reason(&lines) {
            broken.push(format!(
                "{name}: fn {f} without a `// Long:` comment saying why"
            ));
        }
    }
    assert!(files.len() > 50, "src/ read: {} files", files.len());
    assert!(
        broken.is_empty(),
        "house rules broken:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_long_function_rule_sees_a_long_function_and_its_reason() {
    let body = "    x();\n".repeat(MAX_FN_LINES);
    let long = format!("pub async fn big() {{\n{body}}}\n");
    let lines: Vec<&str> = long.lines().collect();
    assert_eq!(long_without_reason(&lines), ["big (82 lines)"]);
    let said = format!("/// Doc.\n// Long: a table.\n#[inline]\n{long}");
    let lines: Vec<&str> = said.lines().collect();
    assert!(long_without_reason(&lines).is_empty());
    let short = "fn small() {\n    x();\n}\nfn decl();\n";
    assert!(long_without_reason(&short.lines().collect::<Vec<_>>()).is_empty());
}

#[test]
fn at_most_three_functions_in_src_are_long() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut notes = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let name = f.strip_prefix(root).unwrap().display().to_string();
        for (i, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("// Long:") {
                notes.push(format!("{name}:{}", i + 1));
            }
        }
    }
    assert!(
        notes.len() <= MAX_LONG_NOTES,
        "{} `// Long:` notes, at most {MAX_LONG_NOTES}: split the others into steps\n{}",
        notes.len(),
        notes.join("\n")
    );
}

#[test]
fn the_relay_names_no_rustls_type() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src/relay"), &mut files);
    assert!(files.len() >= 5, "src/relay read: {} files", files.len());
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if !code.starts_with("//") && (code.contains("rustls") || code.contains("crate::tls")) {
                found.push(format!("{}:{}: {code}", f.display(), i + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "relay/ moves bytes between two streams; TLS lives in tls/:\n{}",
        found.join("\n")
    );
}

/// A file's module path: `route/via.rs` is `["route", "via"]`,
/// `route/mod.rs` is `["route"]`.
fn module_of(relative: &Path) -> Vec<String> {
    let mut m: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|s| s.to_string_lossy().into_owned())
        .collect();
    if matches!(m.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        m.pop();
    }
    m
}

/// The code a file runs outside its tests: the lines before its first
/// `#[cfg(test)]` at column 0, without comment lines.
fn outside_tests(text: &str) -> String {
    text.lines()
        .take_while(|l| !l.starts_with("#[cfg(test)]"))
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (&s[..end], &s[end..])
}

/// Every path the code of module `module` names from `super::` or
/// `crate::` (in `use` lines or inline; a `{a, b::c}` group gives one path
/// per item), made absolute. An inline `mod` is not followed: its `super`
/// is read as the file's.
fn paths_named(code: &str, module: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (i, _) in code.char_indices() {
        let before = code[..i].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &code[i..];
        let mut base: Vec<String> = if rest.starts_with("super::") {
            module[..module.len().saturating_sub(1)].to_vec()
        } else if rest.starts_with("crate::") {
            Vec::new()
        } else {
            continue;
        };
        let (_, mut rest) = ident(rest);
        let mut path = Vec::new();
        while let Some(r) = rest.strip_prefix("::") {
            if let Some(group) = r.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                for item in group.split(',') {
                    let mut p = base.iter().chain(&path).cloned().collect::<Vec<_>>();
                    p.extend(
                        item.trim()
                            .split("::")
                            .map(|s| ident(s.trim()).0.to_owned())
                            .take_while(|s| !s.is_empty() && s != "self"),
                    );
                    out.push(p);
                }
                break;
            }
            let (id, r) = ident(r);
            if id.is_empty() {
                break;
            }
            if id == "super" && path.is_empty() {
                base.pop();
            } else {
                path.push(id.to_owned());
            }
            rest = r;
        }
        base.extend(path);
        out.push(base);
    }
    out
}

/// The import circles among the children of any module (top-level modules
/// are layers, not checked here): each as "a -> b -> a". `files` pairs each
/// file's module path with its code outside tests.
fn circles(files: &[(Vec<String>, String)]) -> Vec<String> {
    let modules: BTreeSet<&[String]> = files.iter().map(|(m, _)| m.as_slice()).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (m, code) in files {
        for p in paths_named(code, m) {
            let Some(q) = (1..=p.len())
                .rev()
                .map(|k| &p[..k])
                .find(|q| modules.contains(q))
            else {
                continue;
            };
            // Below their deepest common module, which child of it each is.
            let common = m.iter().zip(q).take_while(|(a, b)| a == b).count();
            if common == 0 || common >= m.len() || common >= q.len() {
                continue;
            }
            edges
                .entry(m[..=common].to_vec())
                .or_default()
                .insert(q[..=common].to_vec());
        }
    }
    let mut found = BTreeMap::new();
    for (from, tos) in &edges {
        for to in tos {
            // A way back from `to` to `from` closes a circle.
            let mut back: BTreeMap<&Vec<String>, &Vec<String>> = BTreeMap::new();
            let mut queue = vec![to];
            while let Some(n) = queue.pop() {
                for next in edges.get(n).into_iter().flatten() {
                    if !back.contains_key(next) && next != to {
                        back.insert(next, n);
                        queue.push(next);
                    }
                }
            }
            if back.contains_key(from) {
                let mut cycle = vec![from.join("/")];
                let mut n = from;
                while n != to {
                    n = back[n];
                    cycle.push(n.join("/"));
                }
                cycle.reverse();
                cycle.insert(0, from.join("/"));
                let key: BTreeSet<String> = cycle.iter().cloned().collect();
                found.entry(key).or_insert(cycle.join(" -> "));
            }
        }
    }
    found.into_values().collect()
}

#[test]
fn no_module_has_an_import_circle_among_its_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let read: Vec<(Vec<String>, String)> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            (
                module_of(f.strip_prefix(&src).unwrap()),
                outside_tests(&text),
            )
        })
        .collect();
    assert!(read.len() > 50, "src/ read: {} files", read.len());
    let found = circles(&read);
    assert!(
        found.is_empty(),
        "import circles (give the shared piece its own file below both):\n{}",
        found.join("\n")
    );
}

#[test]
fn the_circle_rule_sees_a_circle_through_super_crate_and_a_group() {
    let file = |m: &str, code: &str| {
        (
            m.split('/').map(str::to_owned).collect::<Vec<_>>(),
            code.to_owned(),
        )
    };
    let files = [
        file("route", "pub mod connect;\npub mod via;\npub mod dial;"),
        file("route/connect", "use super::{dial, via::tunnel};"),
        file(
            "route/via",
            "fn f() { crate::route::connect::connect_one(); }",
        ),
        file("route/dial", "use crate::config::Upstream;"),
        file("config", ""),
    ];
    assert_eq!(
        circles(&files),
        ["route/connect -> route/via -> route/connect"]
    );
    // Through a third file that both use, there is none.
    let mut fixed = files.clone();
    fixed[2] = file("route/via", "use super::dial::connect_one;");
    assert!(circles(&fixed).is_empty());
    // `super` in a top-level module's `mod.rs` is the crate root.
    assert_eq!(
        paths_named("use super::x;", &["route".to_owned()]),
        [vec!["x".to_owned()]]
    );
    assert_eq!(
        outside_tests("use a;\n// use b;\n#[cfg(test)]\nmod tests {}"),
        "use a;"
    );
}

#[test]
fn no_test_reaches_into_another_files_tests() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut found = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if !code.starts_with("//") && (code.contains("::tests::") || code.contains("tests::{"))
            {
                found.push(format!("{}:{}: {code}", f.display(), i + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "shared test helpers belong in a #[cfg(test)] `testing` module:\n{}",
        found.join("\n")
    );
}
