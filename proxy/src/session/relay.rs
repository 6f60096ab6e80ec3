//! The full-duplex forwarding loop of one session.
//!
//! One task owns both sockets. Each direction has an input buffer (bytes read,
//! not yet framed) and an output buffer (bytes to write). A single `select!` reads
//! and writes both directions as they become ready, so a notification reaches an
//! idle client at once, and the proxy never deadlocks where a direct connection
//! would not: it keeps reading the server while the client's writes are blocked,
//! and the other way round, up to a high-water mark per buffer. Past the mark it
//! stops reading that side, which pushes back on the sender through TCP.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::session::halves::Split;
use crate::session::protocol::Protocol;
use crate::wire::{ErrorResponse, FrameError, Framer, Piece, SqlState};

/// Messages up to this size are buffered whole and can be inspected; larger ones
/// stream through in parts.
const INSPECT_LIMIT: usize = 1 << 20;
/// Stop reading a side while the buffer of bytes it produced and that wait to be
/// written holds this much.
const HIGH_WATER: usize = 256 << 10;
/// Stop reading a client while this many of its requests wait for answers
/// (each costs the proxy a little memory until the server answers it).
const MAX_IN_FLIGHT: usize = 1024;
/// Read at least this much at a time.
const READ_CHUNK: usize = 16 << 10;
/// After one side has gone, how long the proxy keeps trying to deliver what the
/// other side still has to receive.
const LINGER: Duration = Duration::from_secs(5);
/// How long a session whose client left waits for its writes to finish.
const WRITE_SETTLE: Duration = Duration::from_secs(30);

/// One peer's socket halves and buffers.
struct Half<R, W> {
    reader: R,
    writer: W,
    /// Bytes read from this peer, not yet framed.
    inbox: BytesMut,
    /// Bytes to write to this peer.
    outbox: BytesMut,
    /// Written since the last flush (TLS streams buffer).
    unflushed: bool,
    framer: Framer,
    open: bool,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Half<R, W> {
    /// Bytes to write, or a flush still due.
    fn has_output(&self) -> bool {
        !self.outbox.is_empty() || self.unflushed
    }

    fn new<T: Split<Reader = R, Writer = W>>(stream: T, max_message: usize) -> Half<R, W> {
        let (reader, writer) = stream.split();
        Half {
            reader,
            writer,
            inbox: BytesMut::with_capacity(READ_CHUNK),
            outbox: BytesMut::with_capacity(READ_CHUNK),
            unflushed: false,
            framer: Framer::new(INSPECT_LIMIT, max_message),
            open: true,
        }
    }
}

/// How a session ended, for the log line.
#[derive(Debug)]
pub enum Ending {
    ClientClosed,
    ClientTerminated,
    ServerClosed,
    ClientProtocolError(FrameError),
    ServerProtocolError(FrameError),
    ClientIo(std::io::Error),
    ServerIo(std::io::Error),
    /// The proxy is shutting down and the session was idle.
    Shutdown,
    /// The client was idle longer than --idle-timeout.
    IdleTimeout,
}

pub struct Relay<C: Split, S: Split> {
    client: Half<C::Reader, C::Writer>,
    server: Half<S::Reader, S::Writer>,
    pub protocol: Protocol,
    /// Becomes true when the proxy shuts down: the session ends when idle.
    shutdown: tokio::sync::watch::Receiver<bool>,
    idle_timeout: Option<Duration>,
}

impl<C: Split, S: Split> Relay<C, S> {
    pub fn new(
        client: C,
        server: S,
        protocol: Protocol,
        max_client_message: usize,
        shutdown: tokio::sync::watch::Receiver<bool>,
        idle_timeout: Option<Duration>,
    ) -> Self {
        Relay {
            client: Half::new(client, max_client_message),
            // The server is trusted to respect its own limits.
            server: Half::new(server, crate::wire::MAX_MESSAGE_LEN),
            protocol,
            shutdown,
            idle_timeout,
        }
    }

    /// Relays until one side goes away, then delivers what the other side is
    /// still owed (for at most `LINGER`).
    pub async fn run(&mut self) -> Ending {
        let ending = self.forward().await;
        if matches!(ending, Ending::ClientClosed | Ending::ClientIo(_))
            && self.server.open
            && self.protocol.has_pending_writes()
        {
            // A write or COMMIT is in flight from a client that left: wait for
            // the server to finish it, so the invalidation comes after it.
            let _ = tokio::time::timeout(WRITE_SETTLE, self.settle_server()).await;
        }
        self.protocol.on_session_end();
        let linger = async {
            let _ = drain(&mut self.client).await;
            let _ = drain(&mut self.server).await;
        };
        let _ = tokio::time::timeout(LINGER, linger).await;
        ending
    }

    /// Reads the server until the cycles in flight are answered; the answers
    /// go nowhere.
    async fn settle_server(&mut self) {
        self.protocol.abandon_client_input(&mut self.server.outbox);
        if send_all(&mut self.server).await.is_err() {
            return;
        }
        while self.protocol.awaiting_answers() {
            self.server.inbox.reserve(READ_CHUNK);
            match self.server.reader.read_buf(&mut self.server.inbox).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    if self.on_server_bytes().is_err() {
                        return;
                    }
                    self.client.outbox.clear();
                }
            }
        }
    }

    async fn forward(&mut self) -> Ending {
        loop {
            if *self.shutdown.borrow() && self.protocol.is_idle() && self.client.inbox.is_empty() {
                // Like the server's own shutdown: the client hears why, then
                // the server session ends cleanly with Terminate.
                self.tell_client(ErrorResponse::fatal(
                    SqlState::ADMIN_SHUTDOWN,
                    "terminating connection because pgcache is shutting down",
                ));
                self.server
                    .outbox
                    .extend_from_slice(crate::wire::encode::TERMINATE);
                self.protocol.terminated = true;
                return Ending::Shutdown;
            }
            if let Some(ending) = self.send_ready() {
                return ending;
            }
            let backlogged = self.client_backlogged();
            if !backlogged && !self.protocol.parked() && !self.client.inbox.is_empty() {
                // Messages left in the inbox when the buffers were full.
                if let Some(ending) = self.take_client_bytes().await {
                    return ending;
                }
            }
            let backlogged = self.client_backlogged();
            // The idle clock runs only while nothing is in flight and no
            // transaction is open; any client byte restarts the loop.
            let idle_limit = self.idle_timeout.filter(|_| self.protocol.is_idle());
            let Relay {
                client,
                server,
                shutdown,
                ..
            } = self;
            let watch_shutdown = !*shutdown.borrow();
            let idle = async {
                match idle_limit {
                    Some(limit) => tokio::time::sleep(limit).await,
                    None => std::future::pending().await,
                }
            };
            // A message parked for a probe holds the client's input back,
            // like a server that has not read the next query yet.
            // Answers from the cache go to the client's buffer without the
            // server: a client that sends but does not read is not read
            // either, past the high-water mark or a number of requests in
            // flight.
            let read_client = client.open && !backlogged && !self.protocol.parked();
            let read_server = server.open && client.outbox.len() < HIGH_WATER;
            if client.inbox.capacity() - client.inbox.len() < READ_CHUNK / 4 {
                client.inbox.reserve(READ_CHUNK);
            }
            if server.inbox.capacity() - server.inbox.len() < READ_CHUNK / 4 {
                server.inbox.reserve(READ_CHUNK);
            }
            tokio::select! {
                // Writes first: deliver before taking in more.
                biased;
                r = send(&mut client.writer, &mut client.outbox, &mut client.unflushed), if client.has_output() => {
                    if let Err(e) = r {
                        return Ending::ClientIo(e);
                    }
                }
                r = send(&mut server.writer, &mut server.outbox, &mut server.unflushed), if server.has_output() => {
                    if let Err(e) = r {
                        return self.server_lost(Ending::ServerIo(e));
                    }
                }
                r = server.reader.read_buf(&mut server.inbox), if read_server => {
                    match r {
                        Ok(0) => return self.server_lost(Ending::ServerClosed),
                        Ok(_) => {
                            if let Err(e) = self.on_server_bytes() {
                                return self.server_lost(Ending::ServerProtocolError(e));
                            }
                            if self.protocol.ready_to_resume() {
                                self.protocol
                                    .resume(&mut self.server.outbox, &mut self.client.outbox)
                                    .await;
                                // What the client sent after the parked message.
                                if let Some(ending) = self.take_client_bytes().await {
                                    return ending;
                                }
                            }
                        }
                        Err(e) => return self.server_lost(Ending::ServerIo(e)),
                    }
                }
                _ = shutdown.changed(), if watch_shutdown => {}
                _ = idle => {
                    self.tell_client(ErrorResponse::fatal(
                        SqlState::IDLE_SESSION_TIMEOUT,
                        "terminating connection due to idle-session timeout",
                    ));
                    self.server.outbox.extend_from_slice(crate::wire::encode::TERMINATE);
                    self.protocol.terminated = true;
                    return Ending::IdleTimeout;
                }
                r = client.reader.read_buf(&mut client.inbox), if read_client => {
                    match r {
                        Ok(0) => {
                            return if self.protocol.terminated {
                                Ending::ClientTerminated
                            } else {
                                Ending::ClientClosed
                            }
                        }
                        Ok(_) => if let Some(ending) = self.take_client_bytes().await {
                            return ending;
                        },
                        Err(e) => return Ending::ClientIo(e),
                    }
                }
            }
        }
    }

    /// [`Relay::on_client_bytes`]; a client that broke the protocol is told
    /// why and the session ends.
    async fn take_client_bytes(&mut self) -> Option<Ending> {
        let e = self.on_client_bytes().await.err()?;
        self.tell_client(ErrorResponse::fatal(
            SqlState::PROTOCOL_VIOLATION,
            e.to_string(),
        ));
        // The server must not see the rest of a broken stream.
        self.server.outbox.clear();
        self.server.open = false;
        Some(Ending::ClientProtocolError(e))
    }

    /// Frames what the client sent and hands it to the protocol, which queues
    /// it for the server or answers it from the cache. Stops at a message
    /// parked for a probe: the rest waits until it is processed.
    async fn on_client_bytes(&mut self) -> Result<(), FrameError> {
        loop {
            if self.protocol.parked() || self.client_backlogged() {
                // The rest stays in the inbox until the buffers drain.
                return Ok(());
            }
            let Some(piece) = self.client.framer.next(&mut self.client.inbox)? else {
                break;
            };
            match piece {
                Piece::Message { tag, bytes } => {
                    self.protocol
                        .on_client_message(
                            tag,
                            bytes.freeze(),
                            &mut self.server.outbox,
                            &mut self.client.outbox,
                        )
                        .await
                }
                Piece::Part { bytes, .. } => {
                    self.protocol
                        .on_client_part(&bytes, &mut self.server.outbox)
                        .await
                }
            }
        }
        self.protocol.end_of_input(&mut self.server.outbox).await;
        Ok(())
    }

    /// The client has more in flight than the proxy takes on: its answers
    /// (from the server or the cache) fill the buffer toward it, or the
    /// server's buffer is full, or too many requests wait for answers.
    fn client_backlogged(&self) -> bool {
        self.client.outbox.len() >= HIGH_WATER
            || self.server.outbox.len() >= HIGH_WATER
            || self.protocol.requests_in_flight() >= MAX_IN_FLIGHT
    }

    /// Frames what the server sent and hands it to the protocol, which queues
    /// it for the client.
    fn on_server_bytes(&mut self) -> Result<(), FrameError> {
        while let Some(piece) = self.server.framer.next(&mut self.server.inbox)? {
            match piece {
                Piece::Message { tag, bytes } => {
                    self.protocol
                        .on_server_message(tag, &bytes, &mut self.client.outbox)
                }
                Piece::Part { bytes, .. } => self
                    .protocol
                    .on_server_part(&bytes, &mut self.client.outbox),
            }
        }
        Ok(())
    }

    /// Writes what each side's socket takes right now. Most answers fit in
    /// the socket buffer, so they leave in the same wake-up that produced
    /// them instead of one `select!` round later.
    fn send_ready(&mut self) -> Option<Ending> {
        let client = &mut self.client;
        if client.has_output() {
            if let Err(e) = send_now(
                &mut client.writer,
                &mut client.outbox,
                &mut client.unflushed,
            ) {
                return Some(Ending::ClientIo(e));
            }
        }
        let server = &mut self.server;
        if server.has_output() {
            if let Err(e) = send_now(
                &mut server.writer,
                &mut server.outbox,
                &mut server.unflushed,
            ) {
                return Some(self.server_lost(Ending::ServerIo(e)));
            }
        }
        None
    }

    /// The server connection is gone. Unless the server said why (a FATAL error,
    /// as on pg_terminate_backend or shutdown) or the client asked for it, the
    /// client hears it as a connection failure, like libpq would report it.
    fn server_lost(&mut self, ending: Ending) -> Ending {
        self.server.open = false;
        self.server.outbox.clear();
        if !self.protocol.server_said_fatal && !self.protocol.terminated {
            let why = match &ending {
                Ending::ServerIo(e) => format!(": {e}"),
                Ending::ServerProtocolError(e) => format!(": {e}"),
                _ => String::new(),
            };
            self.tell_client(ErrorResponse::fatal(
                SqlState::CONNECTION_FAILURE,
                format!("server closed the connection unexpectedly{why}"),
            ));
        }
        ending
    }

    /// Queues a message of the proxy's own for the client, unless that would
    /// land in the middle of a relayed message.
    fn tell_client(&mut self, error: ErrorResponse) {
        if !self.server.framer.in_part() {
            self.client.outbox.extend_from_slice(&error.encode());
        }
    }
}

/// Writes some of `outbox`; once it is all written, flushes. Cancel-safe:
/// what was written is gone from `outbox`, and `unflushed` says whether a
/// flush is still due.
async fn send<W: AsyncWrite + Unpin>(
    writer: &mut W,
    outbox: &mut BytesMut,
    unflushed: &mut bool,
) -> std::io::Result<()> {
    if !outbox.is_empty() {
        writer.write_buf(outbox).await?;
        *unflushed = true;
        if !outbox.is_empty() {
            return Ok(());
        }
    }
    writer.flush().await?;
    *unflushed = false;
    Ok(())
}

/// Polls `send` once without waiting: it writes what the socket takes now.
/// When it would wait, the `select!` polls it again with the task's waker.
fn send_now<W: AsyncWrite + Unpin>(
    writer: &mut W,
    outbox: &mut BytesMut,
    unflushed: &mut bool,
) -> std::io::Result<()> {
    let mut cx = Context::from_waker(Waker::noop());
    match pin!(send(writer, outbox, unflushed)).poll(&mut cx) {
        Poll::Ready(result) => result,
        Poll::Pending => Ok(()),
    }
}

async fn send_all<R, W: AsyncWrite + Unpin>(half: &mut Half<R, W>) -> std::io::Result<()> {
    if !half.outbox.is_empty() {
        half.writer.write_all_buf(&mut half.outbox).await?;
    }
    half.writer.flush().await?;
    half.unflushed = false;
    Ok(())
}

async fn drain<R, W: AsyncWrite + Unpin>(half: &mut Half<R, W>) -> std::io::Result<()> {
    if !half.outbox.is_empty() {
        half.writer.write_all_buf(&mut half.outbox).await?;
    }
    half.writer.flush().await?;
    half.writer.shutdown().await
}
