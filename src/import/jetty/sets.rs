//! The translated-route types both Jetty steps share: the route being
//! written (`Route`: its `listen_tls` keys, notes, what has no equivalent,
//! the secrets it names) and the evaluated settings a step reads and marks
//! as accounted for (`Sets`). `translate` and `protocols` both build on
//! them, so they sit below both.

use std::collections::HashMap;
use std::path::PathBuf;

use super::xml::{Setting, Value};
use crate::import::Secret;

/// What the route is built from.
#[derive(Default)]
pub(super) struct Route {
    pub(super) listen_tls: Vec<String>,
    pub(super) notes: Vec<String>,
    pub(super) untranslated: Vec<String>,
    pub(super) secrets: Vec<Secret>,
}

/// The evaluated settings by normalized name (Jetty calls setX for both
/// "X" and "x"), and the names a step has accounted for.
pub(super) struct Sets<'a> {
    by_name: HashMap<String, &'a Value>,
    pub(super) handled: Vec<&'static str>,
    /// `jetty.base`, against which relative paths resolve.
    base: PathBuf,
}

impl<'a> Sets<'a> {
    /// The usable settings of `sets`; those with unusable content go to
    /// `r.untranslated`.
    pub(super) fn new(
        sets: &'a [Setting],
        props: &HashMap<String, String>,
        r: &mut Route,
    ) -> Sets<'a> {
        let mut by_name = HashMap::new();
        for (name, v) in sets {
            match v {
                Ok(Value::Unset) => {}
                Ok(v) => {
                    by_name.insert(name.to_ascii_lowercase(), v);
                }
                Err(why) => r.untranslated.push(format!("{name}: {why}")),
            }
        }
        Sets {
            by_name,
            handled: Vec::new(),
            base: PathBuf::from(props.get("jetty.base").cloned().unwrap_or_default()),
        }
    }

    /// Marks `n` as accounted for, read or not.
    pub(super) fn take(&mut self, n: &'static str) {
        self.handled.push(n);
    }

    /// A single-valued setting, marked as accounted for.
    pub(super) fn text(&mut self, n: &'static str) -> Result<Option<String>, String> {
        self.take(n);
        match self.by_name.get(&n.to_ascii_lowercase()) {
            None => Ok(None),
            Some(Value::Text(t)) => Ok(Some(t.clone())),
            Some(_) => Err(format!("{n} should be a single value, not an <Array>")),
        }
    }

    /// A list setting (an `<Array>` or a comma-separated text), marked as
    /// accounted for.
    pub(super) fn list(&mut self, n: &'static str) -> Result<Option<Vec<String>>, String> {
        self.take(n);
        match self.by_name.get(&n.to_ascii_lowercase()) {
            None => Ok(None),
            Some(Value::List(l)) => Ok(Some(l.clone())),
            Some(Value::Text(t)) => Ok(Some(
                t.split(',')
                    .map(|s| s.trim().to_owned())
                    .filter(|s| !s.is_empty())
                    .collect(),
            )),
            Some(Value::Unset) => Ok(None),
        }
    }

    /// A true/false setting, false when unset.
    pub(super) fn flag(&mut self, n: &'static str) -> Result<bool, String> {
        Ok(self
            .text(n)?
            .map(|v| boolean(n, &v))
            .transpose()?
            .unwrap_or(false))
    }

    /// A path setting, resolved against `jetty.base` when relative.
    pub(super) fn path(&mut self, n: &'static str) -> Result<Option<String>, String> {
        Ok(self.text(n)?.map(|p| {
            let pb = PathBuf::from(&p);
            if pb.is_absolute() {
                p
            } else {
                self.base.join(pb).display().to_string()
            }
        }))
    }
}

pub(super) fn boolean(name: &str, v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("{name} = {v:?} is neither true nor false")),
    }
}
