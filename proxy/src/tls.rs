//! TLS toward clients: the proxy terminates it with its own certificate.
//!
//! SCRAM still passes through: the upstream connection is plain, so the server
//! offers SCRAM-SHA-256 without channel binding (`-PLUS`). A client that
//! insists on channel binding (`channel_binding=require`) is refused by its own
//! driver, with libpq's "channel binding required" error.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

/// Whether clients may, must, or may not use TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsMode {
    /// SSLRequest is answered 'N'.
    Disabled,
    /// TLS when the client asks (sslmode=prefer/require/verify-full), plain otherwise.
    Optional,
    /// Plain connections are refused.
    Required,
}

/// Builds the acceptor from PEM files: the certificate chain and its key.
pub fn acceptor(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read the TLS certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("invalid PEM in {}", cert.display()))?;
    if certs.is_empty() {
        anyhow::bail!("no certificate found in {}", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("cannot read a private key from {}", key.display()))?;
    let config = ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("the TLS certificate and key do not match")?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}
