//! Writing TOML values and comments by hand: the importers write a
//! commented file, which a serializer would not keep.

/// The inside of a TOML basic string.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // The config placeholder (NUL) is replaced before anyone reads it.
            '\u{0}' => out.push('\u{0}'),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A quoted TOML string.
pub fn string(s: &str) -> String {
    format!("\"{}\"", escape(s))
}

/// A TOML array of strings on one line.
pub fn strings<S: AsRef<str>>(list: &[S]) -> String {
    let items: Vec<String> = list.iter().map(|s| string(s.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// Text as comment lines ("# ..."), one per line of `text`.
pub fn comment(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "#\n".to_owned()
            } else {
                format!("# {l}\n")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_for_toml() {
        assert_eq!(string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(strings(&["x", "y"]), "[\"x\", \"y\"]");
        assert_eq!(comment("a\n\nb"), "# a\n#\n# b\n");
    }
}
