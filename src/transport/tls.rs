//! TLS for SIP (`sips:`, RFC 5630) and MSRP (`msrps:`, RFC 4975 §14) with rustls: the
//! focus's certificate and key from `[tls]` (reloadable: new handshakes take the new one,
//! open connections keep theirs), and the roots it trusts when it connects out. As a client
//! the focus always verifies the peer's chain against `tls.ca_file` and its name against the
//! host it dialled; every failed handshake is counted by role and a bounded reason.

use crate::config::TlsConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::sync::{Arc, RwLock};
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
    /// MSRP's: it asks the peer for a certificate (optional, any issuer), to check it
    /// against the `a=fingerprint` the peer offered (RFC 4572 / RFC 8122).
    pub msrp_acceptor: TlsAcceptor,
    /// The certificate new handshakes present; [`CertStore::reload`] swaps it.
    pub certs: Arc<CertStore>,
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
        let store = Arc::new(CertStore {
            current: RwLock::new(Arc::new(certified_key(config)?)),
        });
        let server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(store.clone());
        let msrp_server = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(Arc::new(AnyPeerCert))
            .with_cert_resolver(store.clone());
        let connector = if config.ca_file.is_empty() {
            None
        } else {
            Some(TlsConnector::from(client_config(&config.ca_file)?))
        };
        Ok(Some(TlsContext {
            acceptor: TlsAcceptor::from(Arc::new(server)),
            msrp_acceptor: TlsAcceptor::from(Arc::new(msrp_server)),
            certs: store,
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

/// The certificate chain and key `[tls]` names, checked to belong together.
fn certified_key(config: &TlsConfig) -> Result<CertifiedKey, TlsError> {
    let chain = certs("cert_file", &config.cert_file)?;
    let key = PrivateKeyDer::from_pem_file(&config.key_file)
        .map_err(|e| file_err("key_file", &config.key_file, e))?;
    CertifiedKey::from_der(chain, key, &provider())
        .map_err(|e| file_err("key_file", &config.key_file, e))
}

/// A client configuration that verifies servers: the chain against the roots in `ca_file`
/// (PEM; Debian's system store is `/etc/ssl/certs/ca-certificates.crt`), the name against
/// the host connected to (rustls' WebPKI verifier). Every client of the focus (SIP and MSRP
/// dial-outs, the credit server) builds on it.
pub fn client_config(ca_file: &str) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    client_config_from(&[ca_file])
}

/// [`client_config`] trusting the roots of several PEM files (a client with roots of its
/// own besides `tls.ca_file`, such as the credit server's `charging.online_ca_file`).
pub fn client_config_from(ca_files: &[&str]) -> Result<Arc<rustls::ClientConfig>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for ca_file in ca_files {
        for c in certs("ca_file", ca_file)? {
            roots.add(c).map_err(|e| file_err("ca_file", ca_file, e))?;
        }
    }
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(client))
}

/// The focus's certificate for new handshakes. A reload swaps it; a connection keeps the
/// one it was established with.
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CertStore")
    }
}

impl CertStore {
    /// Re-reads `cert_file` and `key_file`; on any error the running certificate stays.
    pub fn reload(&self, config: &TlsConfig) -> Result<(), TlsError> {
        let key = Arc::new(certified_key(config)?);
        *self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = key;
        Ok(())
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        )
    }
}

/// Which side of a handshake the focus was on (a metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Server,
    Client,
}

/// Counts a failed handshake in `focus_tls_handshake_failures_total{role,service,reason}`
/// and returns the reason (bounded: `name_mismatch`, `unknown_issuer`, `expired`,
/// `bad_certificate`, `fingerprint_mismatch`, `alert`, `timeout`, `protocol`, `io`).
pub fn count_failure(role: Role, service: &'static str, reason: &'static str) -> &'static str {
    let role = match role {
        Role::Server => "server",
        Role::Client => "client",
    };
    metrics::counter!("focus_tls_handshake_failures_total", "role" => role, "service" => service, "reason" => reason)
        .increment(1);
    reason
}

/// The bounded reason of a failed handshake (tokio-rustls reports rustls errors inside I/O
/// errors).
pub fn failure_reason(e: &std::io::Error) -> &'static str {
    use rustls::CertificateError as C;
    let Some(err) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return "io";
    };
    match err {
        rustls::Error::InvalidCertificate(c) => match c {
            C::NotValidForName | C::NotValidForNameContext { .. } => "name_mismatch",
            C::UnknownIssuer => "unknown_issuer",
            C::Expired
            | C::ExpiredContext { .. }
            | C::NotValidYet
            | C::NotValidYetContext { .. } => "expired",
            C::ApplicationVerificationFailure => "fingerprint_mismatch",
            _ => "bad_certificate",
        },
        rustls::Error::AlertReceived(_) => "alert",
        _ => "protocol",
    }
}

/// A certificate fingerprint from SDP (`a=fingerprint:sha-256 AB:CD:...`, RFC 8122 §5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    alg: &'static ring::digest::Algorithm,
    digest: Vec<u8>,
}

impl Fingerprint {
    /// Parses the attribute value; `None` for an unknown hash or malformed hex.
    pub fn parse(value: &str) -> Option<Fingerprint> {
        let (alg, hex) = value.trim().split_once(' ')?;
        let alg = match alg.to_ascii_lowercase().as_str() {
            "sha-1" => &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
            "sha-256" => &ring::digest::SHA256,
            "sha-384" => &ring::digest::SHA384,
            "sha-512" => &ring::digest::SHA512,
            _ => return None,
        };
        let digest = hex
            .trim()
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).ok().filter(|_| b.len() == 2))
            .collect::<Option<Vec<u8>>>()?;
        (digest.len() == alg.output_len()).then_some(Fingerprint { alg, digest })
    }

    /// Whether `der` (a certificate) has this fingerprint.
    pub fn matches(&self, der: &[u8]) -> bool {
        ring::digest::digest(self.alg, der).as_ref() == self.digest.as_slice()
    }

    /// `sha-256 AB:CD:...` of `der`.
    pub fn sha256_of(der: &[u8]) -> String {
        let d = ring::digest::digest(&ring::digest::SHA256, der);
        let hex: Vec<String> = d.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        format!("sha-256 {}", hex.join(":"))
    }
}

/// The handshake signatures of any certificate, checked with the provider's algorithms:
/// the peer proves it holds the key of the certificate it presented.
fn algorithms() -> rustls::crypto::WebPkiSupportedAlgorithms {
    provider().signature_verification_algorithms
}

/// MSRP's peer certificates: asked for, never required, any issuer. Who the peer is was
/// said in SIP; the certificate is then checked against the offered fingerprint.
#[derive(Debug)]
struct AnyPeerCert;

impl rustls::server::danger::ClientCertVerifier for AnyPeerCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        algorithms().supported_schemes()
    }
}

/// The verifier of an outbound MSRP connection to a peer that offered a fingerprint: its
/// certificate must have it (RFC 8122: self-signed is fine, the SDP vouches for it).
#[derive(Debug)]
struct PinnedCert(Fingerprint);

impl rustls::client::danger::ServerCertVerifier for PinnedCert {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if self.0.matches(end_entity) {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &algorithms())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        algorithms().supported_schemes()
    }
}

/// A connector that accepts exactly the certificate with `fingerprint`.
pub fn pinned_connector(fingerprint: &Fingerprint) -> Result<TlsConnector, TlsError> {
    let client = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCert(fingerprint.clone())))
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(client)))
}

#[cfg(test)]
mod tests {
    use super::Fingerprint;

    #[test]
    fn fingerprints_parse_and_match() {
        let der = b"not really a certificate";
        let fp = Fingerprint::sha256_of(der);
        let parsed = Fingerprint::parse(&fp).expect("our own rendering parses");
        assert!(parsed.matches(der));
        assert!(!parsed.matches(b"another one"));
        assert!(Fingerprint::parse(&fp.to_lowercase().replace("sha-256", "SHA-256")).is_some());
        for bad in [
            "",
            "sha-256",
            "md5 AB:CD",
            "sha-256 AB:CD",
            "sha-256 zz",
            "sha-256 ABC:D",
        ] {
            assert_eq!(Fingerprint::parse(bad), None, "{bad:?}");
        }
    }
}
