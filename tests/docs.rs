//! The documentation against the code (issue 24), so the next contradiction
//! fails a test instead of reaching an operator:
//!
//! - `docs/man/tls-sidecar.1` is what the clap definition generates
//!   (`UPDATE_MAN=1 cargo test --test docs man_page` rewrites it);
//! - `docs/man/tls-sidecar.toml.5` documents every key of the config model
//!   and no key the model does not take;
//! - the metrics page names every metric and every `reason`/`result` label
//!   the code has, and no metric the code does not have;
//! - the exit statuses of `--help` are the manual's, and every environment
//!   variable the source reads is in `--help` and the manual;
//! - every relative link, anchor and `{{#include}}` in README.md and
//!   docs/src resolves, and every page is in SUMMARY.md.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use tls_sidecar::config::keys;
use tls_sidecar::labels::Reason;
use tls_sidecar::telemetry::ConnResult;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn tls_sidecar(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_tls-sidecar"))
        .args(args)
        .env_remove("TLS_SIDECAR_CONFIG")
        .output()
        .unwrap();
    assert!(o.status.success(), "tls-sidecar {args:?}: {o:?}");
    String::from_utf8(o.stdout).unwrap()
}

/// Every `.rs` file under `dir`.
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

fn source() -> String {
    let mut files = Vec::new();
    rust_files(&root().join("src"), &mut files);
    files
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn man_page_is_generated_from_the_cli() {
    let generated = tls_sidecar(&["man"]);
    let path = root().join("docs/man/tls-sidecar.1");
    if std::env::var_os("UPDATE_MAN").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/man/tls-sidecar.1 is not what the command line generates; regenerate it with\n  \
         UPDATE_MAN=1 cargo test --test docs man_page\nand commit it"
    );
    for section in [
        ".SH NAME",
        ".SH SYNOPSIS",
        ".SH COMMANDS",
        "\"EXIT STATUS\"",
        "\"ENVIRONMENT\"",
        "\"FILES\"",
        "\"SIGNALS\"",
    ] {
        assert!(generated.contains(section), "no {section} section");
    }
    for sub in [
        "run",
        "reload",
        "check",
        "probe",
        "demo",
        "import jetty",
        "import genesys",
        "healthcheck",
        "completions",
    ] {
        assert!(
            generated.contains(&format!(".SS \"tls-sidecar {sub}\"")),
            "no section for `{sub}`"
        );
    }
    assert!(
        !generated.contains("tls-sidecar man\""),
        "the hidden man command is listed"
    );
}

/// (table, key) pairs the reference documents: a `.TP` then `.B key` under a
/// section whose header names the table in brackets (`.SH "[route.connect_tls]"`),
/// or under `.SH "TOP LEVEL"`.
fn documented_keys(man: &str) -> BTreeSet<String> {
    let mut table: Option<String> = None;
    let mut out = BTreeSet::new();
    let lines: Vec<&str> = man.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if l.starts_with(".SH") || l.starts_with(".SS") {
            table = if l.contains("TOP LEVEL") {
                Some(String::new())
            } else {
                l.find('[').map(|a| {
                    l[a..]
                        .trim_start_matches('[')
                        .split(']')
                        .next()
                        .unwrap()
                        .to_owned()
                })
            };
        } else if *l == ".TP" {
            if let (Some(t), Some(next)) = (&table, lines.get(i + 1)) {
                if let Some(key) = next.strip_prefix(".B ") {
                    let key = key.trim();
                    out.insert(if t.is_empty() {
                        key.to_owned()
                    } else {
                        format!("{t}.{key}")
                    });
                }
            }
        }
    }
    out
}

#[test]
fn config_reference_names_every_key_and_only_keys() {
    let model: BTreeSet<String> = keys::all().into_iter().collect();
    let documented = documented_keys(&read("docs/man/tls-sidecar.toml.5"));
    let missing: Vec<_> = model.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&model).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "docs/man/tls-sidecar.toml.5 and the config model (src/config/raw.rs) disagree:\n  \
         keys the reference lacks: {missing:?}\n  keys the reference names that the model does not take: {unknown:?}"
    );
}

#[test]
fn metrics_page_names_every_metric_and_label() {
    let page = read("docs/src/metrics.md");
    let src = source();
    let name = regex::Regex::new(r#""(tls_sidecar_[a-z_]+)""#).unwrap();
    let in_code: BTreeSet<&str> = name
        .captures_iter(&src)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    assert!(in_code.len() >= 13, "{in_code:?}");
    for m in &in_code {
        assert!(page.contains(&format!("`{m}`")), "metrics page lacks {m}");
    }
    let in_page = regex::Regex::new(r"tls_sidecar_[a-z_]+").unwrap();
    for m in in_page.find_iter(&page).map(|m| m.as_str()) {
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .fold(m, |m, s| m.strip_suffix(s).unwrap_or(m));
        assert!(
            in_code.contains(base),
            "metrics page names {m}, which the code does not have"
        );
    }
    for r in Reason::ALL {
        assert!(
            page.contains(&format!("`{}`", r.as_str())),
            "metrics page lacks the reason {}",
            r.as_str()
        );
    }
    for r in ConnResult::ALL {
        assert!(
            page.contains(&format!("`{}`", r.as_str())),
            "metrics page lacks the result {}",
            r.as_str()
        );
    }
}

/// `(status, meaning)` rows of the table under `## Exit status` in cli.md.
fn documented_exit_statuses() -> Vec<(String, String)> {
    let page = read("docs/src/cli.md");
    let section = page
        .split("## Exit status\n")
        .nth(1)
        .expect("cli.md has an Exit status section");
    let section = section.split("\n## ").next().unwrap();
    section
        .lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            (cells.len() == 2 && cells[0].parse::<u8>().is_ok())
                .then(|| (cells[0].to_owned(), cells[1].to_owned()))
        })
        .collect()
}

#[test]
fn exit_statuses_of_help_are_the_manuals() {
    let help = tls_sidecar(&["--help"]);
    let tail = help
        .split("Exit status:\n")
        .nth(1)
        .expect("--help lists the exit statuses");
    let re = regex::Regex::new(r"^  (\d)  (.+)$").unwrap();
    let in_help: Vec<(String, String)> = tail
        .lines()
        .map_while(|l| re.captures(l))
        .map(|c| (c[1].to_owned(), c[2].to_owned()))
        .collect();
    assert_eq!(in_help.len(), 4, "{tail}");
    assert_eq!(
        in_help,
        documented_exit_statuses(),
        "--help and docs/src/cli.md"
    );
    let man = read("docs/man/tls-sidecar.1");
    for (code, _) in &in_help {
        assert!(
            man.contains(&format!(".TP\n\\fB{code}\\fR\n")),
            "man page lacks exit status {code}"
        );
    }
}

#[test]
fn every_environment_variable_read_is_documented() {
    let src = source();
    let re = regex::Regex::new(
        r#"(?:env::var(?:_os)?|try_from_env)\(\s*"([A-Z][A-Z0-9_]+)"|env = "([A-Z][A-Z0-9_]+)"|for var in \[([^\]]+)\]"#,
    )
    .unwrap();
    let mut read_vars = BTreeSet::new();
    for c in re.captures_iter(&src) {
        if let Some(m) = c.get(1).or(c.get(2)) {
            read_vars.insert(m.as_str().to_owned());
        }
        if let Some(list) = c.get(3) {
            for v in list.as_str().split(',') {
                let v = v.trim().trim_matches('"');
                if v.chars().all(|x| x.is_ascii_uppercase() || x == '_') && !v.is_empty() {
                    read_vars.insert(v.to_owned());
                }
            }
        }
    }
    // The config's own overrides: TLS_SIDECAR__KEY__SUBKEY.
    read_vars.insert(format!("{}__", tls_sidecar::config::ENV_PREFIX));
    for v in [
        "TLS_SIDECAR_CONFIG",
        "TLS_SIDECAR_LOG",
        "NO_COLOR",
        "TLS_SIDECAR_SPLICE",
    ] {
        assert!(
            read_vars.contains(v),
            "{v} not found in the source: {read_vars:?}"
        );
    }
    let help = tls_sidecar(&["--help"]);
    let env = help
        .split("Environment:\n")
        .nth(1)
        .expect("--help lists the environment");
    let manual = read("docs/src/cli.md");
    for v in &read_vars {
        assert!(
            env.contains(v.as_str()),
            "--help does not name {v}, which the source reads"
        );
        assert!(
            manual.contains(v.as_str()),
            "docs/src/cli.md does not name {v}"
        );
    }
}

/// The text of a markdown file with every `{{#include path[:anchor]}}`
/// expanded (relative to `file`), as mdBook renders it.
fn expand_includes(file: &Path, text: &str) -> String {
    let re = regex::Regex::new(r"\{\{#include ([^}:]+)(?::([A-Za-z0-9_-]+))?\}\}").unwrap();
    re.replace_all(text, |c: &regex::Captures| {
        let path = file.parent().unwrap().join(&c[1]);
        let body = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: include {}: {e}", file.display(), &c[1]));
        match c.get(2) {
            None => body,
            Some(anchor) => {
                let a = anchor.as_str();
                let start = format!("ANCHOR: {a}");
                let end = format!("ANCHOR_END: {a}");
                let from = body
                    .lines()
                    .position(|l| l.contains(&start))
                    .unwrap_or_else(|| panic!("{}: no anchor {a} in {}", file.display(), &c[1]));
                body.lines()
                    .skip(from + 1)
                    .take_while(|l| !l.contains(&end))
                    .collect::<Vec<_>>()
                    .join("\n")
            }
        }
    })
    .into_owned()
}

/// Lines outside fenced code blocks.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|l| {
            if l.trim_start().starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

/// mdBook's heading ids: lower case, spaces to `-`, other punctuation gone.
fn heading_ids(text: &str) -> BTreeSet<String> {
    let link = regex::Regex::new(r"\[([^\]]*)\]\([^)]*\)").unwrap();
    prose(text)
        .iter()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|h| {
            let h = link.replace_all(h.trim_start_matches('#').trim(), "$1");
            h.chars()
                .filter_map(|c| {
                    if c.is_alphanumeric() || c == '_' || c == '-' {
                        Some(c.to_ascii_lowercase())
                    } else if c.is_whitespace() {
                        Some('-')
                    } else {
                        None
                    }
                })
                .collect()
        })
        .collect()
}

fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            markdown_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "md") {
            out.push(p);
        }
    }
}

#[test]
fn links_anchors_and_includes_resolve() {
    let mut files = vec![root().join("README.md")];
    markdown_files(&root().join("docs/src"), &mut files);
    let texts: BTreeMap<PathBuf, String> = files
        .iter()
        .map(|f| {
            let t = std::fs::read_to_string(f).unwrap();
            (f.canonicalize().unwrap(), expand_includes(f, &t))
        })
        .collect();
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut broken = Vec::new();
    for (file, text) in &texts {
        for line in prose(text) {
            for c in link.captures_iter(line) {
                let target = &c[1];
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
                let dest = if path.is_empty() {
                    file.clone()
                } else {
                    match file.parent().unwrap().join(path).canonicalize() {
                        Ok(d) => d,
                        Err(_) => {
                            broken.push(format!("{}: {target}: no such file", file.display()));
                            continue;
                        }
                    }
                };
                if !anchor.is_empty() {
                    let ids = texts.get(&dest).map(|t| heading_ids(t)).unwrap_or_default();
                    if !ids.contains(anchor) {
                        broken.push(format!("{}: {target}: no such anchor", file.display()));
                    }
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_page_is_in_the_summary() {
    let summary = read("docs/src/SUMMARY.md");
    let listed: BTreeSet<String> = regex::Regex::new(r"\]\(([^)]+\.md)\)")
        .unwrap()
        .captures_iter(&summary)
        .map(|c| c[1].to_owned())
        .collect();
    let src = root().join("docs/src");
    let mut files = Vec::new();
    markdown_files(&src, &mut files);
    for f in files {
        let rel = f.strip_prefix(&src).unwrap().to_string_lossy().into_owned();
        if rel == "SUMMARY.md" {
            continue;
        }
        assert!(listed.contains(&rel), "docs/src/{rel} is not in SUMMARY.md");
    }
    for l in &listed {
        assert!(
            src.join(l).exists(),
            "SUMMARY.md lists {l}, which does not exist"
        );
    }
}

#[test]
fn readme_is_a_front_door() {
    let readme = read("README.md");
    let lines = readme.lines().count();
    assert!(lines <= 250, "README.md has {lines} lines (at most 250)");
    // The two set-up commands, exactly (CI runs the second).
    assert!(readme.contains("\ncargo run --release -- demo\n"));
    assert!(readme.contains("\nbash tests/setup.sh && cargo test --all-targets\n"));
    assert!(read(".ci/run").contains("\nbash tests/setup.sh && cargo test --all-targets\n"));
}
