//! The connection to the upstream server: TCP, and TLS when `--upstream` asks
//! for it with `sslmode` (`prefer`, the default, tries TLS and falls back;
//! `require` encrypts without checking the certificate, like libpq without a
//! root certificate; `verify-full` checks it against `sslrootcert` and the host
//! name).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::client::danger::{
    HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier,
};
use tokio_rustls::rustls::crypto::{ring, verify_tls12_signature, verify_tls13_signature};
use tokio_rustls::rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_rustls::TlsConnector;

use crate::config::{SslMode, Upstream, UpstreamTls};
use crate::maybe_tls::MaybeTls;
use crate::wire::{ErrorResponse, SqlState};

impl UpstreamTls {
    /// The rustls client configuration, or `None` for `sslmode=disable`.
    pub fn client_config(&self) -> anyhow::Result<Option<Arc<ClientConfig>>> {
        let provider = Arc::new(ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?;
        let config = match self.mode {
            SslMode::Disable => return Ok(None),
            SslMode::Prefer | SslMode::Require => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(EncryptOnly(provider)))
                .with_no_client_auth(),
            SslMode::VerifyFull => {
                let Some(path) = &self.root_cert else {
                    bail!("sslmode=verify-full needs sslrootcert=FILE in the upstream URL");
                };
                let mut roots = RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(path)
                    .with_context(|| format!("cannot read sslrootcert {}", path.display()))?
                {
                    roots
                        .add(cert.with_context(|| format!("invalid PEM in {}", path.display()))?)
                        .context("invalid root certificate")?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
        };
        Ok(Some(Arc::new(config)))
    }
}

/// `sslmode=prefer/require`: encrypt, but accept any certificate (libpq's
/// behaviour without a root certificate). Signatures are still checked.
#[derive(Debug)]
struct EncryptOnly(Arc<tokio_rustls::rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for EncryptOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, tokio_rustls::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls12_signature(
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
    ) -> Result<HandshakeSignatureValid, tokio_rustls::rustls::Error> {
        verify_tls13_signature(
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

/// A connection to the upstream, plain or encrypted.
pub type UpstreamStream = MaybeTls<TcpStream, Box<tokio_rustls::client::TlsStream<TcpStream>>>;

const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// Connects to the upstream, negotiating TLS as `tls` says.
pub async fn connect(
    upstream: &Upstream,
    tls: Option<&Arc<ClientConfig>>,
    timeout: Duration,
) -> Result<UpstreamStream, ErrorResponse> {
    let address = upstream.address();
    let refuse = |why: String| {
        ErrorResponse::fatal(
            SqlState::SQLCLIENT_UNABLE_TO_ESTABLISH_SQLCONNECTION,
            format!("pgcache could not connect to the upstream server at {address}: {why}"),
        )
        .with_hint("Check that the server is running and that --upstream names it.")
    };
    let connect = async {
        let mut tcp = TcpStream::connect((upstream.host.as_str(), upstream.port))
            .await
            .map_err(|e| refuse(e.to_string()))?;
        // Small request/response messages: never wait to coalesce them.
        tcp.set_nodelay(true).map_err(|e| refuse(e.to_string()))?;
        let Some(config) = tls else {
            return Ok(MaybeTls::Plain(tcp));
        };
        tcp.write_all(&SSL_REQUEST)
            .await
            .map_err(|e| refuse(e.to_string()))?;
        match tcp.read_u8().await.map_err(|e| refuse(e.to_string()))? {
            b'S' => {
                let name = ServerName::try_from(upstream.host.clone())
                    .map_err(|e| refuse(format!("invalid host name for TLS: {e}")))?;
                let stream = TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| refuse(format!("TLS handshake failed: {e}")))?;
                Ok(MaybeTls::Tls(Box::new(stream)))
            }
            b'N' if upstream.tls.mode == SslMode::Prefer => Ok(MaybeTls::Plain(tcp)),
            b'N' => Err(refuse(format!(
                "the server does not support TLS, but the upstream URL says sslmode={}",
                if upstream.tls.mode == SslMode::Require {
                    "require"
                } else {
                    "verify-full"
                }
            ))),
            other => Err(refuse(format!(
                "unexpected answer {:?} to the TLS request",
                other as char
            ))),
        }
    };
    tokio::time::timeout(timeout, connect)
        .await
        .map_err(|_| refuse(format!("timed out after {timeout:?}")))?
}
