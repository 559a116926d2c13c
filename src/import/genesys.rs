//! `import genesys "PARAMS"`: one Genesys transport-parameter string as a
//! complete route. The route keeps the string itself (`genesys = …`, which
//! the config layer translates at every load), with the translation and
//! what was left aside written above it as comments, so the file says in
//! Genesys's words and in ours what it does.

use super::toml;
use super::{Import, ImportError};
use crate::config::genesys::Params;

/// Which end the parameters describe and where the route goes.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The parameters are a server port's (a `listen_tls` route in front
    /// of a plain local port) rather than a connection's.
    pub server_port: bool,
    pub listen: Option<String>,
    pub connect: Option<String>,
}

/// Translates `params` into a route; the config layer's own translation
/// gives the notes, so the comments say exactly what `check` will. The
/// route text is built key by key in output order: addresses, the route,
/// the notes above it.
pub fn import(params: &str, opts: &Options) -> Result<Import, ImportError> {
    let bad = |m: String| ImportError::Usage(format!("the transport parameters: {m}"));
    let p = Params::parse(params).map_err(bad)?;
    let (listen, connect) = addresses(&p, opts)?;
    let route = if opts.server_port {
        format!(
            "[[route]]\nname = \"genesys-port\"\nlisten = {}\nconnect = [{}]\n\n[route.listen_tls]\ngenesys = {}\n",
            toml::string(&listen),
            toml::string(&connect),
            toml::string(params)
        )
    } else {
        format!(
            "[[route]]\nname = \"genesys\"\nlisten = {}\nconnect = [{}]\ngenesys = {}\n",
            toml::string(&listen),
            toml::string(&connect),
            toml::string(params)
        )
    };
    let notes = notes(&route, opts)?;
    let mut out = toml::comment(&format!(
        "Imported by `tls-sidecar import genesys{} {params:?}`.\nThe parameters stay as written; each load translates them:",
        if opts.server_port { " --server-port" } else { "" }
    ));
    for n in &notes {
        out.push_str(&toml::comment(&format!("  {n}")));
    }
    out.push('\n');
    out.push_str(&route);
    Ok(Import {
        toml: out,
        secrets: Vec::new(),
    })
}

/// The route's `listen` and `connect`: the options', else the parameters'.
fn addresses(p: &Params, opts: &Options) -> Result<(String, String), ImportError> {
    let port = p.value("port");
    let address = p.value("address");
    Ok(if opts.server_port {
        let listen = match (&opts.listen, port) {
            (Some(l), _) => l.clone(),
            (None, Some(port)) => format!("0.0.0.0:{port}"),
            (None, None) => {
                return Err(ImportError::Usage(
                    "give --listen ADDR: the parameters name no port".into(),
                ))
            }
        };
        let connect = opts.connect.clone().ok_or_else(|| {
            ImportError::Usage(
                "give --connect ADDR: the plain local port the server now listens on".into(),
            )
        })?;
        (listen, connect)
    } else {
        let connect = match (&opts.connect, address, port) {
            (Some(c), _, _) => c.clone(),
            (None, Some(a), Some(p)) => format!("{a}:{p}"),
            _ => {
                return Err(ImportError::Usage(
                    "give --connect HOST:PORT: the parameters name no address and port".into(),
                ))
            }
        };
        let listen = match (&opts.listen, port) {
            (Some(l), _) => l.clone(),
            (None, Some(p)) => format!("127.0.0.1:{p}"),
            (None, None) => {
                return Err(ImportError::Usage(
                    "give --listen ADDR: the local plain port the application connects to".into(),
                ))
            }
        };
        (listen, connect)
    })
}

/// The config layer's translation of the route's parameters, one note per
/// line.
fn notes(route: &str, opts: &Options) -> Result<Vec<String>, ImportError> {
    // The translation as the config layer makes it.
    let config = crate::config::load_str(
        std::path::Path::new("import"),
        route,
        Some(Default::default()),
    )
    .map_err(|e| {
        ImportError::Usage(format!(
            "the transport parameters: {}",
            match &e.problem {
                crate::config::Problem::Invalid(m) => m.clone(),
                _ => e.to_string(),
            }
        ))
    })?;
    let r = &config.routes[0];
    Ok(if opts.server_port {
        r.listen_tls.as_ref().map(|t| t.genesys.clone())
    } else {
        r.connect_tls.as_ref().map(|t| t.genesys.clone())
    }
    .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connections_parameters_become_a_route_to_its_address_and_port() {
        let imp = import(
            "tls=1;port=7022;address=stat-a.example.com;tls-target-name-check=host;sec-protocol=TLSv12",
            &Options::default(),
        )
        .unwrap();
        let text = imp.write(None).unwrap();
        assert!(
            text.contains("listen = \"127.0.0.1:7022\"\nconnect = [\"stat-a.example.com:7022\"]\n"),
            "{text}"
        );
        assert!(
            text.contains("#   tls-target-name-check=host → verify = \"full\"\n"),
            "{text}"
        );
        assert!(
            text.contains("#   sec-protocol=TLSv12 → protocols = [\"TLSv1.2\"]\n"),
            "{text}"
        );
    }

    #[test]
    fn a_refused_parameter_is_refused_by_import_too() {
        let e = import(
            "tls=1;sec-protocol=TLSv1",
            &Options {
                connect: Some("h:1".into()),
                listen: Some("127.0.0.1:7000".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "the transport parameters: sec-protocol=TLSv1 is refused: TLS 1.0 and 1.1 are deprecated (RFC 8996); use TLSv12, TLSv13, or SSLv23 (or empty) for both"
        );
    }

    #[test]
    fn without_an_address_the_connect_side_must_be_given() {
        let e = import("tls=1", &Options::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "give --connect HOST:PORT: the parameters name no address and port"
        );
    }
}
