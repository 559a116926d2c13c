//! `Config::files`, derived from the model rather than kept by hand: a
//! config that sets every key the serde structs know (checked against the
//! structs' own field lists, so a new key fails here until it is set), with
//! every file written as `/every/ROUTE/KEY…`, must list exactly those files
//! under exactly that route and key.

use std::collections::{BTreeMap, BTreeSet};

use serde::de::{self, DeserializeOwned, Visitor};

use super::*;

/// Sets every key of the file at least once (several routes, since some
/// keys exclude others).
const EVERY_KEY: &str = r#"shutdown_grace = "10s"
drain_delay = "1s"
watch_config = false
workers = 2
strict_key_permissions = true
sandbox = true
kernel_tls = "off"
[admin]
listen = "127.0.0.1:9464"
hosts = ["gms.example"]
[log]
level = "info"
format = "json"
[defaults]
connect_timeout = "5s"
handshake_timeout = "5s"
idle_timeout = "5m"
max_connections = 100

[[route]]
name = "a"
listen = "127.0.0.1:7001"
connect = ["peer.example:7022"]
connect_timeout = "1s"
handshake_timeout = "1s"
idle_timeout = "1m"
max_connections = 10
proxy_protocol = "v2"
accept_proxy_protocol = true
accept_proxy_protocol_from = ["10.0.0.0/8"]
via = "http://proxy.example:3128"
via_credentials = "/every/a/via_credentials"
kernel_tls = "auto"
[route.connect_tls]
start = "upgrade"
upgrade = "smtp"
upgrade_hostname = "gms.example"
verify = "full"
server_name = "peer.example"
ca = "/every/a/connect_tls.ca"
ca_password_file = "/every/a/connect_tls.ca_password_file"
crl = ["/every/a/connect_tls.crl[0]", "/every/a/connect_tls.crl[1]"]
cert = "/every/a/connect_tls.cert"
password_file = "/every/a/connect_tls.password_file"
key_password_file = "/every/a/connect_tls.key_password_file"
alias = "gms"
protocols = ["TLSv1.3", "TLSv1.2"]
alpn = ["http/1.1"]
resumption = false
name_check_cn_fallback = true
ciphers = ["TLS13_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]
[route.listen_tls]
cert = "/every/a/listen_tls.cert"
password_file = "/every/a/listen_tls.password_file"
key_password_file = "/every/a/listen_tls.key_password_file"
alias = "web"
ocsp = "/every/a/listen_tls.ocsp"
client_ca = "/every/a/listen_tls.client_ca"
client_ca_password_file = "/every/a/listen_tls.client_ca_password_file"
crl = ["/every/a/listen_tls.crl[0]"]
sni_required = true
protocols = ["TLSv1.3"]
alpn = ["h2"]
alpn_required = true
resumption = false
ciphers = ["TLS13_AES_256_GCM_SHA384"]
allow = { dns = ["gms.example"], uri = ["spiffe://e/gms"], ip = ["10.0.0.1"], email = ["a@e"], cn = ["gms"], ou = ["ops"] }

[[route]]
name = "b"
listen = "127.0.0.1:7002"
connect = ["peer.example:7022"]
[route.connect_tls]
start = "upgrade"
upgrade = "script"
script = [
  { send = "a\r\n" }, { send_hex = "00" },
  { expect = "OK", multiline = true, skip = "* " }, { expect_hex = "4f" },
  { expect_regex = "^O" }, { relay = "" }, { reply = "x" }, { reply_hex = "00" },
  { client_expect = "Q", optional = true, repeat = true, answer = "A" },
  { client_expect_hex = "00", answer_hex = "00" },
]
verify = "pin"
pins = ["sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]
cert = "/every/b/connect_tls.cert"
key = "/every/b/connect_tls.key"
[route.listen_tls]
certs = [
  { cert = "/every/b/listen_tls.certs[0].cert", key = "/every/b/listen_tls.certs[0].key", ocsp = "/every/b/listen_tls.certs[0].ocsp" },
  { cert = "/every/b/listen_tls.certs[1].cert", password_file = "/every/b/listen_tls.certs[1].password_file", key_password_file = "/every/b/listen_tls.certs[1].key_password_file", alias = "b" },
]

[[route]]
name = "c"
listen = "127.0.0.1:7003"
connect = ["peer.example:7022"]
genesys = "tls=1;certificate=/every/c/connect_tls.cert,/every/c/connect_tls.cert.chain;certificate-key=/every/c/connect_tls.key;trusted-ca=/every/c/connect_tls.ca;tls-crl=/every/c/connect_tls.crl[0]"
[route.listen_tls]
cert = "/every/c/listen_tls.cert"
key = "/every/c/listen_tls.key"
genesys = "tls=1"
"#;

/// Which serde struct each table of the file is read into (array indices
/// dropped: `route[].listen_tls.certs[]`).
fn structs() -> BTreeMap<&'static str, Vec<String>> {
    BTreeMap::from([
        ("", fields::<raw::RawFile>()),
        ("admin", fields::<raw::RawAdmin>()),
        ("log", fields::<raw::RawLog>()),
        ("defaults", fields::<raw::RawDefaults>()),
        ("route[]", fields::<raw::RawRoute>()),
        ("route[].connect_tls", fields::<raw::RawConnectTls>()),
        ("route[].connect_tls.script[]", fields::<script::RawStep>()),
        ("route[].listen_tls", fields::<raw::RawListenTls>()),
        ("route[].listen_tls.certs[]", fields::<raw::RawCertKey>()),
        ("route[].listen_tls.allow", fields::<raw::RawAllow>()),
    ])
}

#[test]
fn the_every_key_config_sets_every_key_the_serde_structs_know() {
    let merged = config::Config::builder()
        .add_source(config::File::from_str(EVERY_KEY, config::FileFormat::Toml))
        .build()
        .unwrap();
    let top: config::Map<String, config::Value> = merged.try_deserialize().unwrap();
    let mut seen: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    walk("", &top, &mut seen);
    let structs = structs();
    for (table, keys) in &seen {
        let Some(known) = structs.get(table.as_str()) else {
            panic!("table {table:?} has no serde struct in structs(): add it (and set its keys)");
        };
        assert_eq!(
            &known.iter().cloned().collect::<BTreeSet<_>>(),
            keys,
            "{table}"
        );
    }
    assert_eq!(
        seen.keys().map(String::as_str).collect::<BTreeSet<_>>(),
        structs.keys().copied().collect()
    );
}

#[test]
fn files_lists_every_file_the_every_key_config_names_under_its_route_and_key() {
    let text = EVERY_KEY;
    let c = load(text).unwrap();
    let files = c.files();
    // Exactly the paths written, each once, none left out.
    let written: BTreeSet<String> = text
        .match_indices("/every/")
        .map(|(i, _)| {
            let rest = &text[i..];
            let end = rest.find(['"', ',', ';']).unwrap();
            rest[..end].to_owned()
        })
        .collect();
    let listed: BTreeSet<String> = files.iter().map(|f| f.path.display().to_string()).collect();
    assert_eq!(listed, written);
    assert_eq!(files.len(), written.len(), "{files:#?}");
    // Each under the route and key its path spells.
    for f in &files {
        let want = format!("/every/{}/{}", f.route, f.key);
        let p = f.path.display().to_string();
        assert!(p == want || p.starts_with(&format!("{want}.")), "{f:?}");
    }
    assert_eq!(files.len(), 30);
}

/// Records, per table (indices dropped), the keys set in it.
fn walk(
    table: &str,
    map: &config::Map<String, config::Value>,
    seen: &mut BTreeMap<String, BTreeSet<String>>,
) {
    let entry = seen.entry(table.to_owned()).or_default();
    entry.extend(map.keys().cloned());
    for (k, v) in map {
        let at = if table.is_empty() {
            k.clone()
        } else {
            format!("{table}.{k}")
        };
        match &v.kind {
            config::ValueKind::Table(t) => walk(&at, t, seen),
            config::ValueKind::Array(items) => {
                for item in items {
                    if let config::ValueKind::Table(t) = &item.kind {
                        walk(&format!("{at}[]"), t, seen);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The keys a serde struct reads (its derived `Deserialize` names them to
/// the deserializer).
fn fields<T: DeserializeOwned>() -> Vec<String> {
    let e = T::deserialize(FieldLister).err().expect("a struct");
    e.to_string().split(',').map(str::to_owned).collect()
}

struct FieldLister;

impl<'de> de::Deserializer<'de> for FieldLister {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom(fields.join(",")))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map enum identifier ignored_any
    }
}
