//! Splitting a connection into the read half and the write half the relay
//! drives at the same time.
//!
//! A plain TCP socket splits for free ([`TcpStream::into_split`]); a TLS
//! stream's halves share one session state, so they go through
//! [`tokio::io::split`], which takes a lock on every read and write.

use tokio::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use crate::maybe_tls::MaybeTls;
use crate::upstream::UpstreamStream;

/// A connection that can be split into halves used concurrently.
pub trait Split {
    type Reader: AsyncRead + Unpin + Send;
    type Writer: AsyncWrite + Unpin + Send;

    fn split(self) -> (Self::Reader, Self::Writer);
}

impl Split for TcpStream {
    type Reader = OwnedReadHalf;
    type Writer = OwnedWriteHalf;

    fn split(self) -> (OwnedReadHalf, OwnedWriteHalf) {
        self.into_split()
    }
}

type ServerTls = tokio_rustls::server::TlsStream<TcpStream>;

impl Split for ServerTls {
    type Reader = ReadHalf<ServerTls>;
    type Writer = WriteHalf<ServerTls>;

    fn split(self) -> (Self::Reader, Self::Writer) {
        tokio::io::split(self)
    }
}

type ClientTls = tokio_rustls::client::TlsStream<TcpStream>;

impl Split for UpstreamStream {
    type Reader = MaybeTls<OwnedReadHalf, ReadHalf<Box<ClientTls>>>;
    type Writer = MaybeTls<OwnedWriteHalf, WriteHalf<Box<ClientTls>>>;

    fn split(self) -> (Self::Reader, Self::Writer) {
        match self {
            MaybeTls::Plain(tcp) => {
                let (r, w) = tcp.into_split();
                (MaybeTls::Plain(r), MaybeTls::Plain(w))
            }
            MaybeTls::Tls(tls) => {
                let (r, w) = tokio::io::split(tls);
                (MaybeTls::Tls(r), MaybeTls::Tls(w))
            }
        }
    }
}
