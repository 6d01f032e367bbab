//! Which certificates an HTTPS server is checked against, and the TLS
//! client configuration built from them.
//!
//! The system's store is what Docker (Go) uses on Linux: the CA bundle the
//! distribution ships (`/etc/ssl/certs/ca-certificates.crt` on Debian, which
//! includes what `update-ca-certificates` adds from
//! `/usr/local/share/ca-certificates`), or the file `SSL_CERT_FILE` names,
//! plus every file in the directories `SSL_CERT_DIR` lists. A built-in list
//! such as webpki-roots would miss a company's or a proxy's own CA, which
//! exists only there. The store is read once per process.
//!
//! rustls runs with the *ring* provider only, and speaks HTTP/1.1 (ALPN).

use std::ffi::OsString;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};

use crate::error::RegistryError;

/// CA bundles that Linux distributions ship, the first found is read
/// (Debian/Ubuntu, Fedora/RHEL, openSUSE, Alpine's is Debian's path).
const SYSTEM_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
];

/// Where trusted certificates are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustPaths {
    /// Bundles tried in order; the first that exists is read.
    pub bundles: Vec<PathBuf>,
    /// Directories whose every file is read (PEM certificates).
    pub dirs: Vec<PathBuf>,
}

impl TrustPaths {
    /// Go's rules, from the values of `SSL_CERT_FILE` and `SSL_CERT_DIR`:
    /// the file, when set, replaces the distribution's bundles; the
    /// directories (`:`-separated) are read as well.
    pub fn from_env_values(
        ssl_cert_file: Option<OsString>,
        ssl_cert_dir: Option<OsString>,
    ) -> TrustPaths {
        let bundles = match ssl_cert_file.filter(|f| !f.is_empty()) {
            Some(file) => vec![PathBuf::from(file)],
            None => SYSTEM_BUNDLES.iter().map(PathBuf::from).collect(),
        };
        let dirs = ssl_cert_dir
            .map(|dirs| {
                std::env::split_paths(&dirs).filter(|d| !d.as_os_str().is_empty()).collect()
            })
            .unwrap_or_default();
        TrustPaths { bundles, dirs }
    }

    /// The paths this process is told to use by its environment.
    pub fn from_env() -> TrustPaths {
        TrustPaths::from_env_values(
            std::env::var_os("SSL_CERT_FILE"),
            std::env::var_os("SSL_CERT_DIR"),
        )
    }
}

/// The certificates HTTPS servers are checked against, as a TLS client
/// configuration built once and shared by every connection. Cheap to clone.
#[derive(Clone, Default)]
pub struct Trust {
    /// `None`: the system's store, read at the first HTTPS connection.
    loaded: Option<Arc<Loaded>>,
}

struct Loaded {
    config: Arc<ClientConfig>,
    /// How many CA certificates were loaded (0 explains every failure).
    roots: usize,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.loaded {
            None => f.write_str("Trust(system)"),
            Some(loaded) => write!(f, "Trust({} roots)", loaded.roots),
        }
    }
}

impl Trust {
    /// The system's store (`SSL_CERT_FILE`, `SSL_CERT_DIR`, else the
    /// distribution's bundle), read once per process when first needed.
    pub fn system() -> Trust {
        Trust { loaded: None }
    }

    /// Trust exactly the certificates found at `paths`. Unlike the system
    /// store, a file or directory that cannot be read is an error here: the
    /// caller named it.
    pub fn from_paths(paths: &TrustPaths) -> Result<Trust, RegistryError> {
        let roots = load_roots(paths, true)?;
        let loaded = Loaded::new(roots).map_err(|source| RegistryError::TlsSetup { source })?;
        Ok(Trust { loaded: Some(Arc::new(loaded)) })
    }

    /// The client configuration and how many roots it trusts.
    fn loaded(&self) -> Result<Arc<Loaded>, RegistryError> {
        if let Some(loaded) = &self.loaded {
            return Ok(loaded.clone());
        }
        static SYSTEM: OnceLock<Result<Arc<Loaded>, rustls::Error>> = OnceLock::new();
        SYSTEM
            .get_or_init(|| {
                let paths = TrustPaths::from_env();
                // Never fails for the system store: what is missing is skipped.
                let roots = load_roots(&paths, false).unwrap_or_else(|_| RootCertStore::empty());
                if roots.is_empty() {
                    tracing::warn!(
                        bundles = ?paths.bundles,
                        dirs = ?paths.dirs,
                        "no trusted CA certificates found; HTTPS servers cannot be verified"
                    );
                }
                Loaded::new(roots).map(Arc::new)
            })
            .clone()
            .map_err(|source| RegistryError::TlsSetup { source })
    }

    /// Open TLS on `stream` to `host` (SNI and the certificate's name).
    pub(crate) async fn connect(
        &self,
        host: &str,
        authority: &str,
        stream: tokio::net::TcpStream,
    ) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, RegistryError> {
        let loaded = self.loaded()?;
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare.to_owned())
            .map_err(|_| RegistryError::InvalidUrl { url: format!("https://{authority}") })?;
        let connector = tokio_rustls::TlsConnector::from(loaded.config.clone());
        connector
            .connect(name, stream)
            .await
            .map_err(|source| handshake_error(bare, authority, loaded.roots, source))
    }
}

impl Loaded {
    fn new(roots: RootCertStore) -> Result<Loaded, rustls::Error> {
        let count = roots.len();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // hyper speaks HTTP/1.1 here; a server must not pick h2.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Loaded { config: Arc::new(config), roots: count })
    }
}

/// Read the CA certificates at `paths`. With `strict`, unreadable files and
/// directories are errors; otherwise they are skipped (Go does the same for
/// the system store), and only logged when they exist.
fn load_roots(paths: &TrustPaths, strict: bool) -> Result<RootCertStore, RegistryError> {
    let mut roots = RootCertStore::empty();
    let read_err = |path: &Path, source: io::Error| RegistryError::TrustStore {
        path: path.to_owned(),
        source,
    };
    let mut missing = None;
    for bundle in &paths.bundles {
        match std::fs::read(bundle) {
            Ok(pem) => {
                let added = add_pem(&mut roots, bundle, &pem);
                if strict && added == 0 {
                    let source = io::Error::new(io::ErrorKind::InvalidData, "no PEM certificates");
                    return Err(read_err(bundle, source));
                }
                missing = None;
                break;
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                missing = missing.or(Some(bundle));
            }
            Err(err) if strict => return Err(read_err(bundle, err)),
            Err(err) => {
                tracing::warn!(path = %bundle.display(), error = %err, "cannot read CA bundle");
            }
        }
    }
    if let Some(bundle) = missing.filter(|_| strict) {
        return Err(read_err(bundle, io::ErrorKind::NotFound.into()));
    }
    for dir in &paths.dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if !strict => {
                if err.kind() != io::ErrorKind::NotFound {
                    tracing::warn!(path = %dir.display(), error = %err, "cannot read CA directory");
                }
                continue;
            }
            Err(err) => return Err(read_err(dir, err)),
        };
        for entry in entries.flatten() {
            let path = entry.path();
            // Directories and dangling links are skipped; files that are
            // not PEM (hash links to them are) add nothing.
            if let Ok(pem) = std::fs::read(&path) {
                add_pem(&mut roots, &path, &pem);
            }
        }
    }
    Ok(roots)
}

/// Add every certificate of a PEM file, and say how many; broken ones are
/// skipped.
fn add_pem(roots: &mut RootCertStore, path: &Path, pem: &[u8]) -> usize {
    let certificates = CertificateDer::pem_slice_iter(pem).filter_map(Result::ok);
    let (added, ignored) = roots.add_parsable_certificates(certificates);
    if ignored > 0 {
        tracing::debug!(path = %path.display(), added, ignored, "unusable CA certificates skipped");
    }
    added
}

/// A failed handshake as one line: certificate problems in Go's words
/// (`x509: certificate signed by unknown authority`), other TLS failures
/// as such, and plain I/O failures as a failed connection (retried).
fn handshake_error(host: &str, authority: &str, roots: usize, source: io::Error) -> RegistryError {
    let Some(tls) = source.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) else {
        return RegistryError::Connect { authority: authority.to_owned(), source };
    };
    let reason = match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer if roots == 0 => {
                "x509: certificate signed by unknown authority (no trusted CA certificates \
                 were found: install ca-certificates or set SSL_CERT_FILE)"
                    .to_owned()
            }
            CertificateError::UnknownIssuer => {
                "x509: certificate signed by unknown authority".to_owned()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!("x509: certificate is not valid for {host}")
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "x509: certificate has expired".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "x509: certificate is not valid yet".to_owned()
            }
            other => format!("x509: {}", describe(other)),
        },
        _ => return RegistryError::Tls { authority: authority.to_owned(), source },
    };
    RegistryError::Certificate { host: host.to_owned(), reason }
}

/// rustls's description of a certificate error, without its own prefix.
fn describe(error: &CertificateError) -> String {
    let text = rustls::Error::InvalidCertificate(error.clone()).to_string();
    text.strip_prefix("invalid peer certificate: ").map(str::to_owned).unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssl_cert_file_replaces_the_bundles_and_ssl_cert_dir_adds_directories() {
        let default = TrustPaths::from_env_values(None, None);
        assert_eq!(default.bundles[0], Path::new("/etc/ssl/certs/ca-certificates.crt"));
        assert!(default.dirs.is_empty());

        let set = TrustPaths::from_env_values(
            Some("/tmp/ca.pem".into()),
            Some("/a/certs:/b/certs:".into()),
        );
        assert_eq!(set.bundles, vec![PathBuf::from("/tmp/ca.pem")]);
        assert_eq!(set.dirs, vec![PathBuf::from("/a/certs"), PathBuf::from("/b/certs")]);

        // An empty SSL_CERT_FILE is as good as unset.
        assert_eq!(TrustPaths::from_env_values(Some("".into()), None), default);
    }

    #[test]
    fn a_named_trust_file_that_is_missing_is_an_error_naming_it() {
        let paths =
            TrustPaths { bundles: vec![PathBuf::from("/nonexistent/kiln-ca.pem")], dirs: vec![] };
        let err = Trust::from_paths(&paths).expect_err("missing file");
        assert!(err.to_string().contains("/nonexistent/kiln-ca.pem"), "{err}");
        // The system store skips what is missing instead.
        assert!(load_roots(&paths, false).expect("lenient").is_empty());
    }

    #[test]
    fn certificate_errors_read_like_go() {
        let err = |e: CertificateError, roots| {
            let io =
                io::Error::new(io::ErrorKind::InvalidData, rustls::Error::InvalidCertificate(e));
            handshake_error("registry.example", "registry.example:443", roots, io).to_string()
        };
        assert_eq!(
            err(CertificateError::UnknownIssuer, 5),
            "cannot verify the TLS certificate of registry.example: \
             x509: certificate signed by unknown authority"
        );
        assert!(err(CertificateError::UnknownIssuer, 0).contains("SSL_CERT_FILE"));
        assert!(err(CertificateError::Expired, 5).ends_with("x509: certificate has expired"));
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert!(matches!(handshake_error("h", "h:443", 5, reset), RegistryError::Connect { .. }));
    }
}
