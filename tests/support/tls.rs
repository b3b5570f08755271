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
    ca: CertifiedIssuer<'static, KeyPair>,
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
            ca,
        }
    }

    /// A new leaf certificate for `names`, signed by the test CA: (certificate PEM, key PEM).
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().expect("leaf key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let cert = CertificateParams::new(names)
            .expect("leaf params")
            .signed_by(&key, &self.ca)
            .expect("leaf certificate");
        (cert.pem(), key.serialize_pem())
    }

    /// Replaces the focus's certificate files with a new leaf for localhost and 127.0.0.1;
    /// returns its DER, to tell it apart from the old one.
    pub fn renew(&self) -> Vec<u8> {
        let (cert, key) = self.issue(&["localhost", "127.0.0.1"]);
        std::fs::write(self.dir.join("focus.pem"), &cert).unwrap();
        std::fs::write(self.dir.join("focus.key"), key).unwrap();
        CertificateDer::pem_slice_iter(cert.as_bytes())
            .next()
            .unwrap()
            .unwrap()
            .to_vec()
    }

    /// A TLS server on loopback presenting a leaf for `names`: it accepts connections, and
    /// sends the first bytes each one carries after the handshake.
    pub fn server(&self, names: &[&str]) -> (SocketAddr, std::sync::mpsc::Receiver<Vec<u8>>) {
        let (cert, key) = self.issue(names);
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
            .map(|c| c.unwrap())
            .collect();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use tokio::io::AsyncReadExt;
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while let Ok((tcp, _)) = listener.accept().await {
                    let (acceptor, tx) = (acceptor.clone(), tx.clone());
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let mut buf = vec![0u8; 4096];
                        if let Ok(n) = tls.read(&mut buf).await {
                            buf.truncate(n);
                            let _ = tx.send(buf);
                        }
                    });
                }
            });
        });
        (addr, rx)
    }

    /// The DER of the certificate a TLS server at `addr` presents (verified against the test
    /// CA and 127.0.0.1), on a fresh connection.
    pub fn peer_certificate(&self, addr: SocketAddr) -> Vec<u8> {
        let connector = tokio_rustls::TlsConnector::from(self.client());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let name = ServerName::IpAddress(addr.ip().into());
            let tls = connector.connect(name, tcp).await.expect("TLS handshake");
            let (_, conn) = tls.get_ref();
            conn.peer_certificates().unwrap()[0].to_vec()
        })
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

    /// A TLS server on loopback presenting `cert` (PEM, with its `key`): each connection's
    /// bytes after the handshake are carried over plain TCP to `target` (a passive test
    /// participant's MSRP listener), so the focus connecting out speaks real TLS to it.
    pub fn terminator(&self, target: SocketAddr, cert: &str, key: &str) -> SocketAddr {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
            .map(|c| c.unwrap())
            .collect();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while let Ok((tcp, _)) = listener.accept().await {
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let Ok(mut plain) = tokio::net::TcpStream::connect(target).await else {
                            return;
                        };
                        let _ = plain.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
                    });
                }
            });
        });
        addr
    }

    /// [`Pki::relay`] whose TLS side presents a client certificate (PEM certificate and key).
    pub fn relay_as(&self, target: SocketAddr, cert: &str, key: &str) -> SocketAddr {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(self.ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert.as_bytes())
            .map(|c| c.unwrap())
            .collect();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .unwrap();
        relay_with(Arc::new(config), target)
    }

    /// A relay to `target`: connections to the returned (plain TCP) address are carried over
    /// TLS to `target`, whose certificate must name 127.0.0.1 and chain to the test CA. A
    /// failed handshake closes the plain side.
    pub fn relay(&self, target: SocketAddr) -> SocketAddr {
        relay_with(self.client(), target)
    }
}

fn relay_with(client: Arc<rustls::ClientConfig>, target: SocketAddr) -> SocketAddr {
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let connector = tokio_rustls::TlsConnector::from(client);
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
