//! TLS for the tests: certificates made at run time (rcgen: a CA and a leaf for `localhost`
//! and 127.0.0.1), the `[tls]` section that points the focus at them, and a client-side
//! relay: the synchronous test agents speak plain TCP to it, and it speaks TLS to the focus
//! (verifying the focus's certificate against the test CA), so every byte between the relay
//! and the focus is real TLS.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

static DIRS: AtomicUsize = AtomicUsize::new(0);

/// A test CA and the focus's certificate, written to a temporary directory.
pub struct Pki {
    pub ca_pem: String,
    pub dir: PathBuf,
}

impl Pki {
    pub fn new() -> Pki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");
        let leaf_key = KeyPair::generate().expect("leaf key");
        let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .expect("leaf params")
            .signed_by(&leaf_key, &ca)
            .expect("leaf certificate");
        let n = DIRS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("cpm-focus-tls-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("focus.pem"), leaf.pem()).unwrap();
        std::fs::write(dir.join("focus.key"), leaf_key.serialize_pem()).unwrap();
        Pki {
            ca_pem: ca.pem(),
            dir,
        }
    }

    /// The `[tls]` section of a focus configured with these files.
    pub fn config(&self) -> String {
        format!(
            "[tls]\ncert_file = {:?}\nkey_file = {:?}\nca_file = {:?}\n",
            self.dir.join("focus.pem"),
            self.dir.join("focus.key"),
            self.dir.join("ca.pem"),
        )
    }

    /// A TLS client configuration that trusts the test CA.
    pub fn client(&self) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        Arc::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
        )
    }

    /// A relay to `target`: connections to the returned (plain TCP) address are carried over
    /// TLS to `target`, whose certificate must name 127.0.0.1 and chain to the test CA. A
    /// failed handshake closes the plain side.
    pub fn relay(&self, target: SocketAddr) -> SocketAddr {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let connector = tokio_rustls::TlsConnector::from(self.client());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while let Ok((mut plain, _)) = listener.accept().await {
                    let connector = connector.clone();
                    tokio::spawn(async move {
                        let Ok(tcp) = tokio::net::TcpStream::connect(target).await else {
                            return;
                        };
                        let _ = tcp.set_nodelay(true);
                        let name = ServerName::IpAddress(target.ip().into());
                        let Ok(mut tls) = connector.connect(name, tcp).await else {
                            return;
                        };
                        let _ = tokio::io::copy_bidirectional(&mut plain, &mut tls).await;
                    });
                }
            });
        });
        addr
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
