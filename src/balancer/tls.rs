//! TLS termination: a rustls server configuration built from a PEM certificate chain and a
//! PEM private key (PKCS#8, PKCS#1 or SEC1), with the ring crypto provider. Errors name the
//! file and what is wrong with it, so `roundhouse check` can report them as they are.

use rustls::ServerConfig;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;

/// Why a certificate and key could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A PEM block is malformed (bad base64, missing END line).
    #[error("{}: broken PEM: {detail}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said.
        detail: String,
    },
    /// The certificate file holds no `CERTIFICATE` block.
    #[error(
        "{}: no certificate (expected a -----BEGIN CERTIFICATE----- block)",
        path.display()
    )]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The key file holds no private key block.
    #[error(
        "{}: no private key (expected a -----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY block)",
        path.display()
    )]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
    /// The key is not the one the certificate was issued for.
    #[error(
        "{}: private key does not match the certificate in {}",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// rustls refused the key or the certificate (e.g. an unsupported key type).
    #[error("{}: unusable with {}: {detail}", key.display(), cert.display())]
    Rejected {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        detail: String,
    },
}

/// Builds a server configuration from a PEM certificate chain (leaf first) and a PEM private
/// key; `alpn` lists the application protocols offered, most preferred first (e.g.
/// `[b"h2", b"http/1.1"]`; empty for none). The two paths may name the same file.
pub fn server_config(
    cert_path: &Path,
    key_path: &Path,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = load_certs(cert_path)?;
    let key = load_key(key_path)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| rejected(cert_path, key_path, e))?
        .with_no_client_auth();
    let mut config = builder.with_single_cert(chain, key).map_err(|e| match e {
        rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
            TlsError::KeyMismatch {
                cert: cert_path.to_path_buf(),
                key: key_path.to_path_buf(),
            }
        }
        e => rejected(cert_path, key_path, e),
    })?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// A tokio acceptor for `config`.
pub fn acceptor(config: Arc<ServerConfig>) -> TlsAcceptor {
    TlsAcceptor::from(config)
}

/// Every `CERTIFICATE` block of the file, in order.
fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| broken(path, e))?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(chain)
}

/// The first private key block of the file.
fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        pem::Error::NoItemsFound => TlsError::NoPrivateKey {
            path: path.to_path_buf(),
        },
        e => broken(path, e),
    })
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

fn broken(path: &Path, e: pem::Error) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        detail: e.to_string(),
    }
}

fn rejected(cert: &Path, key: &Path, e: rustls::Error) -> TlsError {
    TlsError::Rejected {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        detail: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::ServerName;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// A fresh self-signed certificate for `localhost`: (certificate PEM, key PEM).
    fn self_signed() -> (String, String) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        (ck.cert.pem(), ck.signing_key.serialize_pem())
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn client_config(cert_pem: &str, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        for c in CertificateDer::pem_slice_iter(cert_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }

    #[tokio::test]
    async fn terminates_tls_and_echoes_bytes_with_the_negotiated_alpn() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        let cert_path = write(dir.path(), "cert.pem", &cert);
        let key_path = write(dir.path(), "key.pem", &key);
        let config = server_config(&cert_path, &key_path, &[b"h2", b"http/1.1"]).unwrap();

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = acceptor(config);
        let server = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.unwrap();
            let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = tls.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                tls.write_all(&buf[..n]).await.unwrap();
            }
            tls.shutdown().await.unwrap();
            alpn
        });

        let connector = tokio_rustls::TlsConnector::from(client_config(&cert, &[b"http/1.1"]));
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let tls = connector.connect(name, tcp).await.unwrap();
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let (mut rd, mut wr) = tokio::io::split(tls);
        let writer = {
            let sent = sent.clone();
            tokio::spawn(async move {
                wr.write_all(&sent).await.unwrap();
                wr.shutdown().await.unwrap();
            })
        };
        let mut got = Vec::new();
        rd.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert_eq!(got.len(), sent.len());
        assert!(got == sent, "echoed bytes differ");
        assert_eq!(server.await.unwrap(), Some(b"http/1.1".to_vec()));
    }

    #[test]
    fn one_file_may_hold_both_certificate_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        let both = write(dir.path(), "both.pem", &format!("{cert}{key}"));
        let config = server_config(&both, &both, &[]).unwrap();
        assert!(config.alpn_protocols.is_empty());
    }

    #[test]
    fn a_missing_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (_, key) = self_signed();
        let key_path = write(dir.path(), "key.pem", &key);
        let missing = dir.path().join("nope.pem");
        let err = server_config(&missing, &key_path, &[]).unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("{}: cannot read", missing.display())),
            "{msg}"
        );
    }

    #[test]
    fn garbage_is_no_certificate_and_no_key() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed();
        let junk = write(dir.path(), "junk.pem", "this is not PEM at all\n");
        let cert_path = write(dir.path(), "cert.pem", &cert);
        let key_path = write(dir.path(), "key.pem", &key);

        let err = server_config(&junk, &key_path, &[]).unwrap_err();
        assert!(matches!(err, TlsError::NoCertificate { .. }), "{err:?}");
        assert!(
            err.to_string().contains("junk.pem: no certificate"),
            "{err}"
        );

        let err = server_config(&cert_path, &junk, &[]).unwrap_err();
        assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err:?}");
        assert!(
            err.to_string().contains("junk.pem: no private key"),
            "{err}"
        );

        // A certificate file is not a key file.
        let err = server_config(&cert_path, &cert_path, &[]).unwrap_err();
        assert!(matches!(err, TlsError::NoPrivateKey { .. }), "{err:?}");
    }

    #[test]
    fn broken_base64_is_reported_as_broken_pem() {
        let dir = tempfile::tempdir().unwrap();
        let (_, key) = self_signed();
        let bad = write(
            dir.path(),
            "bad.pem",
            "-----BEGIN CERTIFICATE-----\n!!!not base64!!!\n-----END CERTIFICATE-----\n",
        );
        let key_path = write(dir.path(), "key.pem", &key);
        let err = server_config(&bad, &key_path, &[]).unwrap_err();
        assert!(matches!(err, TlsError::Pem { .. }), "{err:?}");
        assert!(err.to_string().contains("bad.pem: broken PEM"), "{err}");
    }

    #[test]
    fn a_key_from_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, _) = self_signed();
        let (_, other_key) = self_signed();
        let cert_path = write(dir.path(), "cert.pem", &cert);
        let key_path = write(dir.path(), "other.pem", &other_key);
        let err = server_config(&cert_path, &key_path, &[]).unwrap_err();
        assert!(matches!(err, TlsError::KeyMismatch { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("other.pem: private key does not match the certificate in")
                && msg.contains("cert.pem"),
            "{msg}"
        );
    }
}
