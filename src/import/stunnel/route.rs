//! The route being written, shared by the two translation steps: the
//! service's own keys (`translate`) and its TLS table (`tls`) both add to
//! it, so it sits below both.

use super::model::Settings;
use super::parse::At;
use crate::import::Secret;

/// One route being written.
pub(super) struct Route {
    pub(super) name: String,
    pub(super) at: At,
    pub(super) keys: Vec<String>,
    pub(super) table: &'static str,
    pub(super) tls: Vec<String>,
    pub(super) notes: Vec<String>,
    pub(super) untranslated: Vec<String>,
    pub(super) secrets: Vec<Secret>,
}

impl Route {
    /// A key of the TLS table, and what it came from.
    pub(super) fn tls(&mut self, line: &str, note: &str) {
        self.tls.push(line.to_owned());
        self.notes.push(note.to_owned());
    }

    pub(super) fn tls_line(&mut self, line: String) {
        self.tls.push(line);
    }

    pub(super) fn key(&mut self, line: String, note: String) {
        self.keys.push(line);
        self.notes.push(note);
    }

    /// Where option `key` was set, or the service's header.
    pub(super) fn at(&self, s: &Settings, key: &str) -> At {
        s.at.get(key).cloned().unwrap_or_else(|| self.at.clone())
    }
}
