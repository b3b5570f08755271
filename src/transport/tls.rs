//! TLS for SIP (`sips:`, RFC 5630) and MSRP (`msrps:`, RFC 4975 §14) with rustls: the
//! focus's certificate and key from `[tls]`, and the roots it trusts when it connects out.

use crate::config::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::sync::Arc;
use std::time::Duration;
use thiserror::Error;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Why TLS could not be set up (the focus refuses to start: a configured TLS that silently
/// did not run would be worse).
#[derive(Debug, Error)]
pub enum TlsError {
    #[error("tls.{key} {path}: {message}")]
    File {
        key: &'static str,
        path: String,
        message: String,
    },
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// What TLS connections are made with.
#[derive(Clone)]
pub struct TlsContext {
    pub acceptor: TlsAcceptor,
    /// Present when `tls.ca_file` names roots to verify peers the focus connects to.
    pub connector: Option<TlsConnector>,
    pub handshake_timeout: Duration,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("connector", &self.connector.is_some())
            .finish()
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn file_err(key: &'static str, path: &str, e: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        key,
        path: path.to_string(),
        message: e.to_string(),
    }
}

fn certs(key: &'static str, path: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_err(key, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_err(key, path, e))?;
    if certs.is_empty() {
        return Err(file_err(key, path, "no certificate in the file"));
    }
    Ok(certs)
}

impl TlsContext {
    /// Loads `[tls]`; `None` when TLS is not configured.
    pub fn load(config: &TlsConfig) -> Result<Option<TlsContext>, TlsError> {
        if !config.enabled() {
            return Ok(None);
        }
        let chain = certs("cert_file", &config.cert_file)?;
        let key = PrivateKeyDer::from_pem_file(&config.key_file)
            .map_err(|e| file_err("key_file", &config.key_file, e))?;
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        let connector = if config.ca_file.is_empty() {
            None
        } else {
            let mut roots = rustls::RootCertStore::empty();
            for c in certs("ca_file", &config.ca_file)? {
                roots
                    .add(c)
                    .map_err(|e| file_err("ca_file", &config.ca_file, e))?;
            }
            let client = rustls::ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()?
                .with_root_certificates(roots)
                .with_no_client_auth();
            Some(TlsConnector::from(Arc::new(client)))
        };
        Ok(Some(TlsContext {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            connector,
            handshake_timeout: Duration::from_millis(config.handshake_timeout_ms),
        }))
    }

    /// The name a peer's certificate must carry: its host (a domain or an IP address).
    pub fn server_name(host: &str) -> Option<ServerName<'static>> {
        ServerName::try_from(
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        )
        .ok()
    }
}
