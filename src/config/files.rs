//! Every file a validated config names, with the route and the key that
//! name it: certificates, keys, keystores, trust stores, their password
//! files, CRLs, OCSP responses and the proxy's `via_credentials`.
//!
//! One list, three readers: the sandbox allows reading each file
//! (`sandbox.rs`), the watch stats each for rotation (`watch.rs`), and
//! `run` reads each under the same route and key (a test makes each file
//! missing in turn and compares the error). The model's structs are taken
//! apart here without `..`, so a field added to them does not compile until
//! this list says whether it names a file.

use std::path::PathBuf;

use super::model::{CertKey, Config, ConnectTls, ListenTls, Ocsp, Route, Via};

/// One file named by the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedFile {
    /// The route whose table names it.
    pub route: String,
    /// The key, dotted from the route, as `run`'s errors name it:
    /// `connect_tls.ca`, `listen_tls.certs[1].key`, `listen_tls.crl[0]`,
    /// `via_credentials`.
    pub key: String,
    /// As written in the config (relative to the working directory when
    /// not absolute).
    pub path: PathBuf,
}

impl Config {
    /// Every file the config names, route by route in the order `run`
    /// reads them. A file named twice (a shared password file) is listed
    /// under each key.
    pub fn files(&self) -> Vec<NamedFile> {
        let mut out = Vec::new();
        for r in &self.routes {
            let mut add = |key: String, path: &PathBuf| {
                out.push(NamedFile {
                    route: r.name.clone(),
                    key,
                    path: path.clone(),
                })
            };
            route_files(r, &mut add);
        }
        out
    }

    /// The paths of [`Config::files`] alone.
    pub fn file_paths(&self) -> Vec<PathBuf> {
        self.files().into_iter().map(|f| f.path).collect()
    }
}

type Add<'a> = dyn FnMut(String, &PathBuf) + 'a;

fn route_files(r: &Route, add: &mut Add<'_>) {
    let Route {
        name: _,
        listen: _,
        connect: _,
        connect_timeout: _,
        handshake_timeout: _,
        idle_timeout: _,
        max_connections: _,
        connect_tls,
        listen_tls,
        proxy_protocol: _,
        accept_proxy_protocol: _,
        accept_proxy_protocol_from: _,
        via,
        kernel_tls: _,
    } = r;
    if let Some(t) = connect_tls {
        connect_files(t, add);
    }
    if let Some(t) = listen_tls {
        listen_files(t, add);
    }
    if let Some(Via {
        proxy: _,
        credentials: Some(c),
    }) = via
    {
        add("via_credentials".into(), c);
    }
}

fn connect_files(t: &ConnectTls, add: &mut Add<'_>) {
    let ConnectTls {
        start: _,
        verify: _,
        server_name: _,
        ca,
        crl,
        client_cert,
        protocols: _,
        alpn: _,
        resumption: _,
        ca_password_file,
        ciphers: _,
        genesys: _,
        cn_fallback: _,
    } = t;
    // The order `tls/client.rs` reads them: trust, CRLs, the identity.
    if let Some(ca) = ca {
        add("connect_tls.ca".into(), ca);
        if let Some(pw) = ca_password_file {
            add("connect_tls.ca_password_file".into(), pw);
        }
    }
    for (i, c) in crl.iter().enumerate() {
        add(format!("connect_tls.crl[{i}]"), c);
    }
    if let Some(ck) = client_cert {
        cert_key_files(ck, add);
    }
}

fn listen_files(t: &ListenTls, add: &mut Add<'_>) {
    let ListenTls {
        certs,
        client_ca,
        crl,
        sni_required: _,
        protocols: _,
        alpn: _,
        alpn_required: _,
        client_ca_password_file,
        ciphers: _,
        genesys: _,
        allow: _,
        resumption: _,
    } = t;
    for ck in certs {
        cert_key_files(ck, add);
    }
    if let Some(ca) = client_ca {
        add("listen_tls.client_ca".into(), ca);
        if let Some(pw) = client_ca_password_file {
            add("listen_tls.client_ca_password_file".into(), pw);
        }
    }
    for (i, c) in crl.iter().enumerate() {
        add(format!("listen_tls.crl[{i}]"), c);
    }
}

/// The files of one certificate setting, under its table's name
/// (`connect_tls`, `listen_tls`, `listen_tls.certs[N]`).
fn cert_key_files(ck: &CertKey, add: &mut Add<'_>) {
    let CertKey {
        cert,
        key,
        chain,
        password_file,
        key_password_file,
        alias: _,
        key_name,
        ocsp,
    } = ck;
    add(format!("{key_name}.cert"), cert);
    if let Some(pw) = password_file {
        add(format!("{key_name}.password_file"), pw);
    }
    if let Some(pw) = key_password_file {
        add(format!("{key_name}.key_password_file"), pw);
    }
    if let Some(k) = key {
        add(format!("{key_name}.key"), k);
    }
    // Genesys's comma-separated `certificate`: more chain files, read
    // under the certificate's key.
    for c in chain {
        add(format!("{key_name}.cert"), c);
    }
    // `ocsp = "auto"` names no file: the response is fetched.
    if let Some(Ocsp::File(o)) = ocsp {
        add(format!("{key_name}.ocsp"), o);
    }
}
