//! stunnel.conf's lines, sans-io: text in, `[section]` headers and
//! `option = value` pairs out, each with the file and line it came from.
//!
//! The rules are stunnel's own (`options.c`, `parse_conf`): a UTF-8 byte
//! order mark is skipped, each line is trimmed, empty lines and lines
//! starting with `;` or `#` are comments, `[name]` starts a service, and
//! anything else must be `name = value` (split at the first `=`, both sides
//! trimmed; names are compared without case).

use std::path::{Path, PathBuf};

use super::StunnelError;

/// Where a line came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At {
    pub file: PathBuf,
    pub line: usize,
}

impl At {
    /// An error at this line.
    pub fn error(&self, message: impl Into<String>) -> StunnelError {
        StunnelError {
            file: self.file.clone(),
            line: self.line,
            message: message.into(),
        }
    }
}

/// One meaningful line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// `[name]`: a service starts.
    Section(String),
    /// `key = value`, the key as written.
    Option { key: String, value: String },
}

/// A line and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub at: At,
    pub item: Item,
}

/// Longest line stunnel reads (its `CONFLINELEN`); longer ones are refused
/// rather than cut, as a cut value would mean something else.
const MAX_LINE: usize = 16384;

/// The lines of one file's text.
pub fn lines(file: &Path, text: &str) -> Result<Vec<Line>, StunnelError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let at = At {
            file: file.to_owned(),
            line: i + 1,
        };
        if raw.len() > MAX_LINE {
            return Err(at.error(format!("the line is longer than {MAX_LINE} bytes")));
        }
        let l = raw.trim();
        if l.is_empty() || l.starts_with(';') || l.starts_with('#') {
            continue;
        }
        let item = if let Some(rest) = l.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or_else(|| at.error(format!("{l:?}: a section name ends with ']'")))?;
            Item::Section(name.trim().to_owned())
        } else {
            let (key, value) = l.split_once('=').ok_or_else(|| {
                at.error(format!(
                    "{l:?}: no '=' found (stunnel wants option = value)"
                ))
            })?;
            let key = key.trim();
            if key.is_empty() {
                return Err(at.error(format!("{l:?}: the option has no name")));
            }
            Item::Option {
                key: key.to_owned(),
                value: value.trim().to_owned(),
            }
        };
        out.push(Line { at, item });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opt(k: &str, v: &str) -> Item {
        Item::Option {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn comments_sections_and_options_are_read_with_their_lines() {
        let l = lines(
            Path::new("s.conf"),
            "\u{feff}; stunnel\n# also\n\npid =\n[ gms web ]\n  accept = 8443 \nconnect=a:1=2\n",
        )
        .unwrap();
        let items: Vec<_> = l.iter().map(|l| (l.at.line, l.item.clone())).collect();
        assert_eq!(
            items,
            [
                (4, opt("pid", "")),
                (5, Item::Section("gms web".into())),
                (6, opt("accept", "8443")),
                (7, opt("connect", "a:1=2")),
            ]
        );
    }

    #[test]
    fn a_line_that_is_neither_is_refused_with_file_and_line() {
        let e = lines(Path::new("/etc/stunnel/s.conf"), "[a]\naccept 8443\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/stunnel/s.conf:2: \"accept 8443\": no '=' found (stunnel wants option = value)"
        );
        let e = lines(Path::new("s.conf"), "[a\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "s.conf:1: \"[a\": a section name ends with ']'"
        );
        let e = lines(Path::new("s.conf"), " = x\n").unwrap_err();
        assert_eq!(e.to_string(), "s.conf:1: \"= x\": the option has no name");
    }
}
