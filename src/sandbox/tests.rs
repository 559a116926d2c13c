//! The sandbox's rules: what they allow (narrowly), what they never
//! allow, and how a refusal is explained.

use super::*;

fn config(dir: &Path) -> (Config, PathBuf) {
    let path = dir.join("tls-sidecar.toml");
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let text = format!(
        "[[route]]\nname = \"r\"\nlisten = \"127.0.0.1:7001\"\nconnect = [\"peer.example:7022\"]\n\
         [route.listen_tls]\ncert = \"{0}/web.pem\"\nkey = \"{0}/web.key\"\nclient_ca = \"/nonexistent-dir/ca.pem\"\n",
        certs.display()
    );
    std::fs::write(&path, &text).unwrap();
    (crate::config::load(&path).unwrap(), path)
}

#[test]
fn the_rules_cover_the_config_its_files_and_the_system_paths_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, path) = config(dir.path());
    let r = rules(&cfg, &path);
    let dir = std::fs::canonicalize(dir.path()).unwrap();
    assert!(r.read.contains(&dir));
    assert!(r.read.contains(&dir.join("certs")));
    // A directory that does not exist is left out (it cannot be opened).
    assert!(!r.read.iter().any(|p| p.starts_with("/nonexistent-dir")));
    assert!(r.read.contains(&PathBuf::from("/proc/self")));
    assert!(r.read.contains(&PathBuf::from("/etc/hosts")) || !Path::new("/etc/hosts").exists());
    assert!(r.covers(&dir.join("certs/web.pem")));
    assert!(r.covers(&dir.join("tls-sidecar.toml")));
    assert!(!r.covers(Path::new("/root/.ssh/id_ed25519")));
    assert!(!r.covers(Path::new("/etc/shadow")));
    assert!(!r.covers(Path::new("/tmp/elsewhere/x.pem")) || dir.starts_with("/tmp/elsewhere"));
    let unique: std::collections::HashSet<_> = r.read.iter().collect();
    assert_eq!(unique.len(), r.read.len());
}

#[test]
fn the_ruleset_builds_from_the_rules() {
    // Building the ruleset without entering it: every rule's path opens
    // and is accepted by the running kernel (or the kernel has no
    // Landlock, which best effort accepts too).
    use landlock::{
        path_beneath_rules, Access, AccessFs, Ruleset, RulesetAttr, RulesetCreatedAttr, ABI,
    };
    let dir = tempfile::tempdir().unwrap();
    let (cfg, path) = config(dir.path());
    let r = rules(&cfg, &path);
    let created = Ruleset::default()
        .handle_access(AccessFs::from_all(ABI::V8))
        .unwrap()
        .create()
        .unwrap()
        .add_rules(path_beneath_rules(&r.read, AccessFs::from_read(ABI::V8)));
    assert!(created.is_ok(), "{:?}", created.err());
}

#[test]
fn a_file_directly_in_a_top_level_directory_is_allowed_alone() {
    for f in ["/etc/gms.pem", "/gms.pem", "/root/gms.key", "/tmp/gms.pem"] {
        assert_eq!(allowance(Path::new(f), &[]), PathBuf::from(f), "{f}");
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("gms.pem");
    assert_eq!(allowance(&f, &[]), dir.path());
}

#[test]
fn a_directory_with_a_private_subdirectory_is_allowed_whole_only_when_the_config_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let ssl = dir.path().join("ssl");
    std::fs::create_dir_all(ssl.join("private")).unwrap();
    let cert = ssl.join("gms.pem");
    let key = ssl.join("private/gms.key");
    // Only the certificate is named: it alone.
    assert_eq!(allowance(&cert, std::slice::from_ref(&cert)), cert);
    // The key in private/ is named too: both directories.
    let named = [cert.clone(), key.clone()];
    assert_eq!(allowance(&cert, &named), ssl);
    assert_eq!(allowance(&key, &named), ssl.join("private"));
    // A `private` that is a link leads elsewhere: allowing the
    // directory does not reach it (Landlock judges the real place).
    let lib = dir.path().join("lib");
    std::fs::create_dir(&lib).unwrap();
    std::os::unix::fs::symlink(ssl.join("private"), lib.join("private")).unwrap();
    assert_eq!(allowance(&lib.join("x.pem"), &[]), lib);
}

#[test]
fn the_rules_never_open_the_root_etc_or_a_private_key_directory_not_named() {
    let dir = tempfile::tempdir().unwrap();
    let (cfg, path) = config(dir.path());
    let r = rules(&cfg, &path);
    for p in ["/", "/etc", "/etc/ssl", "/etc/pki", "/etc/pki/tls", "/usr"] {
        assert!(!r.read.contains(&PathBuf::from(p)), "{p}: {:?}", r.read);
    }
    assert!(
        !r.covers(Path::new("/etc/ssl/private/gms.key")),
        "{:?}",
        r.read
    );
    assert!(
        !r.covers(Path::new("/etc/pki/tls/private/gms.key")),
        "{:?}",
        r.read
    );
    assert!(!r.covers(Path::new("/etc/shadow")));
    // The public trust store stays readable where this host has it.
    if Path::new("/etc/ssl/certs").exists() {
        assert!(r.covers(Path::new("/etc/ssl/certs/ca-certificates.crt")));
    }
}

#[test]
fn every_file_the_config_names_is_covered_wherever_it_is() {
    // Certificates beside the config, credentials in a secrets
    // directory of their own, a keystore behind a symlink elsewhere.
    let dir = tempfile::tempdir().unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let store = tempfile::tempdir().unwrap();
    std::fs::write(store.path().join("real.p12"), b"x").unwrap();
    std::os::unix::fs::symlink(store.path().join("real.p12"), dir.path().join("s.p12")).unwrap();
    std::fs::write(secrets.path().join("proxy.cred"), b"u:p\n").unwrap();
    std::fs::write(secrets.path().join("store.pw"), b"p\n").unwrap();
    let path = dir.path().join("t.toml");
    let text = format!(
        "[[route]]\nname = \"r\"\nlisten = \"127.0.0.1:7001\"\nconnect = [\"p:1\"]\n\
         via = \"http://proxy:3128\"\nvia_credentials = \"{0}/proxy.cred\"\n\
         [route.listen_tls]\ncert = \"{1}/s.p12\"\npassword_file = \"{0}/store.pw\"\n",
        secrets.path().display(),
        dir.path().display()
    );
    std::fs::write(&path, text).unwrap();
    let cfg = crate::config::load(&path).unwrap();
    let r = rules(&cfg, &path);
    let files = cfg.files();
    assert_eq!(files.len(), 3, "{files:?}");
    for f in &files {
        assert!(r.covers(&f.path), "{f:?} not in {:?}", r.read);
    }
    let real = std::fs::canonicalize(store.path()).unwrap();
    assert!(r.read.contains(&real), "{:?}", r.read);
}

#[test]
fn a_file_allowed_alone_and_replaced_is_explained_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("gms.pem");
    std::fs::write(&f, b"x").unwrap();
    let alone = Rules {
        read: vec![f.clone()],
        write: Vec::new(),
    };
    let why = alone.denied(&f).unwrap();
    assert!(why.contains("alone, not its directory"), "{why}");
    let whole = Rules {
        read: vec![dir.path().to_owned()],
        write: Vec::new(),
    };
    assert_eq!(whole.denied(&f), None);
    let none = Rules {
        read: Vec::new(),
        write: Vec::new(),
    };
    assert!(none.denied(&f).unwrap().contains("outside the directories"));
}

#[test]
fn a_refusal_is_explained_only_inside_an_entered_sandbox() {
    let e = ConfigError {
        file: "t.toml".into(),
        route: Some("r".into()),
        key: Some("listen_tls.cert".into()),
        problem: Problem::File {
            path: "/elsewhere/web.pem".into(),
            source: std::io::ErrorKind::PermissionDenied.into(),
        },
    };
    // The unit tests never enter the sandbox (it would bind the test
    // process): nothing to explain.
    assert_eq!(explain(&e), None);
}

#[test]
fn ssl_cert_dir_is_held_to_the_same_rule_and_ssl_cert_file_is_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let ssl = dir.path().join("ssl");
    std::fs::create_dir_all(ssl.join("private")).unwrap();
    std::fs::create_dir_all(ssl.join("certs")).unwrap();
    let named = [dir.path().join("t.toml")];
    // What `rules` asks of each SSL_CERT_DIR entry.
    assert!(!whole_dir_allowed(&ssl, &named));
    assert!(whole_dir_allowed(&ssl.join("certs"), &named));
    assert!(!whole_dir_allowed(Path::new("/etc"), &named));
    assert!(!whole_dir_allowed(Path::new("/"), &named));
}
