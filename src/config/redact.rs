//! Credentials are never repeated: the userinfo of a URL
//! (`scheme://user:password@host`) is replaced by `***` wherever a message
//! may quote what the operator wrote — a refused `via`, a TOML syntax
//! error that shows its line. Every [`ConfigError`](super::ConfigError)
//! passes through [`userinfo`] when displayed, so `check`, `run`'s log, the
//! reload's 409 answer, `/status` and systemd's `STATUS=` all get the
//! redacted text. The contents of password and credentials files are never
//! put in a message at all.

use std::borrow::Cow;

/// What stands for the removed userinfo.
pub const REDACTED: &str = "***";

/// `text` with the userinfo of every URL in it replaced by [`REDACTED`].
/// A URL is found by its `://`; its authority ends at `/`, `?`, `#`,
/// white space, a quote or a bracket, and the userinfo is all of it up to
/// the last `@`.
pub fn userinfo(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(authority_end).unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str(REDACTED);
                out.push_str(&tail[at..end]);
            }
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// A URL as written, for a message: its userinfo replaced by [`REDACTED`],
/// with or without a scheme (`user:pw@host:3128` too).
pub fn url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let end = rest.find(authority_end).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}{REDACTED}{}", &rest[at..]),
        None => url.to_owned(),
    }
}

/// Does `url` carry userinfo (`user[:password]@` before the host)?
pub fn has_userinfo(url: &str) -> bool {
    let rest = url.find("://").map_or(url, |i| &url[i + 3..]);
    let end = rest.find(authority_end).unwrap_or(rest.len());
    rest[..end].contains('@')
}

fn authority_end(c: char) -> bool {
    matches!(
        c,
        '/' | '?' | '#' | '"' | '\'' | '`' | '<' | '>' | '[' | ']'
    ) || c.is_whitespace()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_userinfo_of_every_url_in_a_text_is_replaced() {
        assert_eq!(
            userinfo("via = \"https://user:s3cret@proxy:3128\" and HTTP://a:b@c/x@y"),
            "via = \"https://***@proxy:3128\" and HTTP://***@c/x@y"
        );
        assert_eq!(
            userinfo("5 | via = \"http://u:p@ss@h:1"),
            "5 | via = \"http://***@h:1"
        );
        assert_eq!(
            userinfo("mail a@b, see http://h/p"),
            "mail a@b, see http://h/p"
        );
        assert!(matches!(userinfo("no url"), Cow::Borrowed(_)));
    }

    #[test]
    fn a_url_keeps_its_scheme_host_and_path_but_not_its_userinfo() {
        assert_eq!(
            url("https://user:pw@proxy:3128/x"),
            "https://***@proxy:3128/x"
        );
        assert_eq!(url("user:pw@proxy:3128"), "***@proxy:3128");
        assert_eq!(url("http://proxy:3128"), "http://proxy:3128");
        assert!(has_userinfo("HTTP://u@h:1"));
        assert!(!has_userinfo("http://h:1/a@b"));
    }
}
