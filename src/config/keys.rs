//! Every key the config file takes, by table, read from the serde structs
//! of `raw` (the fields serde itself would accept), so that the reference
//! (docs/man/tls-sidecar.toml.5) can be checked against the model: a key
//! added to a struct and not documented, or documented and not taken, fails
//! tests/docs.rs.

use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::raw;
use super::script::RawStep;

/// (table, its keys), the top level as "". A key that opens a table of its
/// own is listed in its parent too (`admin` at the top level).
pub fn tables() -> Vec<(&'static str, &'static [&'static str])> {
    vec![
        ("", fields::<raw::RawFile>()),
        ("admin", fields::<raw::RawAdmin>()),
        ("log", fields::<raw::RawLog>()),
        ("defaults", fields::<raw::RawDefaults>()),
        ("route", fields::<raw::RawRoute>()),
        ("route.connect_tls", fields::<raw::RawConnectTls>()),
        ("route.connect_tls.script", fields::<RawStep>()),
        ("route.listen_tls", fields::<raw::RawListenTls>()),
        ("route.listen_tls.certs", fields::<raw::RawCertKey>()),
        ("route.listen_tls.allow", fields::<raw::RawAllow>()),
    ]
}

/// Every key as a dotted path: `route.connect_tls.verify`.
pub fn all() -> Vec<String> {
    tables()
        .into_iter()
        .flat_map(|(table, keys)| {
            keys.iter().map(move |k| {
                if table.is_empty() {
                    (*k).to_owned()
                } else {
                    format!("{table}.{k}")
                }
            })
        })
        .collect()
}

/// The field names serde's derive gives `T`'s `deserialize_struct`.
fn fields<'de, T: Deserialize<'de>>() -> &'static [&'static str] {
    let mut seen: &'static [&'static str] = &[];
    let _ = T::deserialize(Fields(&mut seen));
    seen
}

/// A deserializer that only records the fields a struct asks for, then
/// stops (with an error nobody reads).
struct Fields<'a>(&'a mut &'static [&'static str]);

#[derive(Debug)]
struct Stop;

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("field names recorded")
    }
}

impl std::error::Error for Stop {}

impl de::Error for Stop {
    fn custom<M: std::fmt::Display>(_: M) -> Self {
        Stop
    }
}

impl<'de> Deserializer<'de> for Fields<'_> {
    type Error = Stop;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Stop> {
        Err(Stop)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Stop> {
        *self.0 = fields;
        Err(Stop)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_come_from_the_structs() {
        let all = all();
        for k in [
            "shutdown_grace",
            "admin.listen",
            "log.format",
            "defaults.idle_timeout",
            "route.connect",
            "route.connect_tls.verify",
            "route.connect_tls.script.expect",
            "route.listen_tls.certs.ocsp",
        ] {
            assert!(all.iter().any(|x| x == k), "{k} in {all:?}");
        }
        // serde(skip) fields are not keys.
        assert!(!all.iter().any(|k| k.ends_with("genesys_chain")));
        assert!(tables().iter().all(|(_, keys)| !keys.is_empty()));
    }
}
