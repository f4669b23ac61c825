//! The TLS listener's configuration: the certificate chain and key read
//! once at start-up (PEM), offering HTTP/2 and HTTP/1.1 by ALPN
//! (RFC 7301). Every failure names the file, before anything serves.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use super::StartError;
use crate::config::TlsFiles;

pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, StartError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            StartError::Tls(format!(
                "{}: cannot read certificates: {e}",
                files.cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(StartError::Tls(format!(
            "{}: no certificate found",
            files.cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
        StartError::Tls(format!(
            "{}: cannot read the private key: {e}",
            files.key.display()
        ))
    })?;
    let mut config = rustls::ServerConfig::builder_with_provider(crate::http::tls::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| {
            StartError::Tls(format!(
                "the TLS provider refuses the default versions: {e}"
            ))
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| StartError::Tls(format!("certificate and key do not fit together: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
