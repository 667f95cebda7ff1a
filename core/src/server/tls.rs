//! TLS from PEM files (rustls with the `ring` provider).

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::error::{Error, Result};

fn bad(reason: String) -> Error {
    Error::InvalidArgument { reason }
}

/// A TLS acceptor for the certificate chain in `cert` and the private key in `key`.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the file and what is wrong with it.
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(format!("cannot read TLS certificate {}: {e}", cert.display())))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| bad(format!("bad PEM in TLS certificate {}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(bad(format!("{} holds no certificate; pass a PEM certificate chain with --cert", cert.display())));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| bad(format!("cannot read a private key from {}: {e}; pass a PEM key with --key", key.display())))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS setup failed: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad(format!("the TLS certificate and key do not fit together: {e}")))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
