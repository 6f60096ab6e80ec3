//! Splitting a connection into the read half and the write half the relay
//! drives at the same time.
//!
//! A plain TCP socket splits for free ([`TcpStream::into_split`]); a TLS
//! stream's halves share one session state, so they go through
//! [`tokio::io::split`], which takes a lock on every read and write.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

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
    type Reader = Either<OwnedReadHalf, ReadHalf<Box<ClientTls>>>;
    type Writer = Either<OwnedWriteHalf, WriteHalf<Box<ClientTls>>>;

    fn split(self) -> (Self::Reader, Self::Writer) {
        match self {
            UpstreamStream::Plain(tcp) => {
                let (r, w) = tcp.into_split();
                (Either::Plain(r), Either::Plain(w))
            }
            UpstreamStream::Tls(tls) => {
                let (r, w) = tokio::io::split(tls);
                (Either::Tls(r), Either::Tls(w))
            }
        }
    }
}

/// The half of a plain or of a TLS connection.
pub enum Either<P, T> {
    Plain(P),
    Tls(T),
}

impl<P: AsyncRead + Unpin, T: AsyncRead + Unpin> AsyncRead for Either<P, T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Either::Plain(p) => Pin::new(p).poll_read(cx, buf),
            Either::Tls(t) => Pin::new(t).poll_read(cx, buf),
        }
    }
}

impl<P: AsyncWrite + Unpin, T: AsyncWrite + Unpin> AsyncWrite for Either<P, T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Either::Plain(p) => Pin::new(p).poll_write(cx, buf),
            Either::Tls(t) => Pin::new(t).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Either::Plain(p) => Pin::new(p).poll_write_vectored(cx, bufs),
            Either::Tls(t) => Pin::new(t).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Either::Plain(p) => p.is_write_vectored(),
            Either::Tls(t) => t.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Either::Plain(p) => Pin::new(p).poll_flush(cx),
            Either::Tls(t) => Pin::new(t).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Either::Plain(p) => Pin::new(p).poll_shutdown(cx),
            Either::Tls(t) => Pin::new(t).poll_shutdown(cx),
        }
    }
}
