//! The house rules of `src/` (issue 17), checked so they stay kept: every
//! file opens with a `//!` comment saying what it is for and stays under
//! 500 lines; a function over 80 lines says why in a `// Long:` comment
//! just above it.

use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 500;
const MAX_FN_LINES: usize = 80;

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
