//! TLS configuration as Docker builds it: system roots plus `certs.d/<host:port>/*.crt`,
//! a client certificate from `*.cert` + `*.key`, and no verification at all for
//! registries that are insecure.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::{Error, Result};

/// The CA bundles of the common distributions, as Go's crypto/x509 looks for them.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

fn provider() -> Arc<CryptoProvider> {
    static P: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The system's roots: `$SSL_CERT_FILE`, else the first distribution bundle found.
/// Unparseable entries are skipped (as Go does).
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut store = RootCertStore::empty();
            let env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
            let candidates = env
                .into_iter()
                .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from));
            for path in candidates {
                if let Ok(iter) = CertificateDer::pem_file_iter(&path) {
                    let certs: Vec<_> = iter.filter_map(|c| c.ok()).collect();
                    if !certs.is_empty() {
                        store.add_parsable_certificates(certs);
                        break;
                    }
                }
            }
            Arc::new(store)
        })
        .clone()
}

/// Builds and caches one rustls config per (registry, secure).
pub(crate) struct TlsConfigs {
    certs_dir: PathBuf,
    cache: Mutex<HashMap<(String, bool), Arc<ClientConfig>>>,
}

impl TlsConfigs {
    pub fn new(certs_dir: PathBuf) -> Self {
        TlsConfigs {
            certs_dir,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The config for `registry` (`host:port` as in the reference): verified with system
    /// roots plus certs.d when `secure`, unverified otherwise (Docker reads no certs.d
    /// then either).
    pub fn get(&self, registry: &str, secure: bool) -> Result<Arc<ClientConfig>> {
        let key = (registry.to_string(), secure);
        if let Some(c) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(c.clone());
        }
        let cfg = Arc::new(self.build(registry, secure)?);
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, cfg.clone());
        Ok(cfg)
    }

    fn build(&self, registry: &str, secure: bool) -> Result<ClientConfig> {
        let tls_err = |path: &Path, message: String| Error::TlsConfig {
            registry: registry.to_string(),
            path: path.display().to_string(),
            message,
        };
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err(Path::new("-"), e.to_string()))?;
        let mut cfg = if !secure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider())))
                .with_no_client_auth()
        } else {
            let mut roots = (*system_roots()).clone();
            let dir = self.certs_dir.join(clean_host_dir(registry));
            let mut client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> = None;
            let mut names: Vec<PathBuf> = match std::fs::read_dir(&dir) {
                Ok(rd) => rd.filter_map(|e| e.ok().map(|e| e.path())).collect(),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(tls_err(&dir, e.to_string())),
            };
            names.sort();
            for path in &names {
                let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
                match ext {
                    "crt" => {
                        let certs: Vec<_> = CertificateDer::pem_file_iter(path)
                            .map_err(|e| tls_err(path, e.to_string()))?
                            .collect::<std::result::Result<_, _>>()
                            .map_err(|e| tls_err(path, e.to_string()))?;
                        if certs.is_empty() {
                            return Err(tls_err(path, "no certificate in file".into()));
                        }
                        for c in certs {
                            roots.add(c).map_err(|e| tls_err(path, e.to_string()))?;
                        }
                    }
                    "cert" => {
                        let key_path = path.with_extension("key");
                        if !key_path.exists() {
                            return Err(tls_err(
                                path,
                                format!(
                                    "missing key {} for client certificate",
                                    key_path.display()
                                ),
                            ));
                        }
                        let chain: Vec<_> = CertificateDer::pem_file_iter(path)
                            .map_err(|e| tls_err(path, e.to_string()))?
                            .collect::<std::result::Result<_, _>>()
                            .map_err(|e| tls_err(path, e.to_string()))?;
                        let key = PrivateKeyDer::from_pem_file(&key_path)
                            .map_err(|e| tls_err(&key_path, e.to_string()))?;
                        client = Some((chain, key));
                    }
                    "key" => {
                        let cert_path = path.with_extension("cert");
                        if !cert_path.exists() {
                            return Err(tls_err(
                                path,
                                format!(
                                    "missing client certificate {} for key",
                                    cert_path.display()
                                ),
                            ));
                        }
                    }
                    _ => {}
                }
            }
            let builder = builder.with_root_certificates(roots);
            match client {
                Some((chain, key)) => builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| tls_err(&dir, e.to_string()))?,
                None => builder.with_no_client_auth(),
            }
        };
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(cfg)
    }
}

/// The certs.d directory name of a registry: `host:port` as given, with path separators
/// (never valid in a host) neutralised so nothing escapes the directory.
pub(crate) fn clean_host_dir(registry: &str) -> String {
    let s: String = registry
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c == '\0' {
                '_'
            } else {
                c
            }
        })
        .collect();
    if s == "." || s == ".." || s.is_empty() {
        "_".to_string()
    } else {
        s
    }
}

/// The server name to present and verify for `host` (a DNS name or an IP literal).
pub(crate) fn server_name(host: &str) -> Result<ServerName<'static>> {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(h.to_string())
        .map_err(|e| Error::InvalidInput(format!("invalid host name {host:?}: {e}")))
}

/// Accepts any certificate (insecure registries only) but still checks handshake
/// signatures, so the session keys are the peer's.
#[derive(Debug)]
struct NoVerify(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
