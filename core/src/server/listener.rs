//! The accept loop: TCP (with `TCP_NODELAY`), optional TLS, HTTP/1.1 with upgrades.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use super::observe::{ConnStats, OpenConn};
use super::shutdown::Shutdown;

/// Longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a connection may take to send a request's headers, counted from when the node
/// starts waiting for them (so an idle kept-alive connection is closed after this).
pub(crate) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(120);

/// Accept connections until shutdown. Past `limit` open connections, a new one is served
/// [`super::http::busy_router`] (one 503 reply, then closed), so its client learns why.
pub(crate) async fn run(listener: TcpListener, tls: Option<TlsAcceptor>, router: Router, shutdown: Shutdown, limits: Limits) {
    let Limits { connections: limit, write_stall, stats } = limits;
    let permits = Arc::new(Semaphore::new(limit));
    let busy = super::http::busy_router(limit);
    let mut conns = 0u64;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.wait() => return,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(key = "server", error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let conn = match permits.clone().try_acquire_owned() {
            Ok(permit) => Conn { router: router.clone(), keep_alive: true, permit: Some(permit), write_stall, open: stats.accepted(true) },
            Err(_) => {
                tracing::warn!(key = "server", %peer, limit, "connection limit reached; refusing a connection");
                Conn { router: busy.clone(), keep_alive: false, permit: None, write_stall, open: stats.accepted(false) }
            }
        };
        conns += 1;
        tokio::spawn(super::in_conn(Some(conns), connection(tcp, tls.clone(), conn, shutdown.clone(), peer)));
    }
}

/// The per-connection limits of the accept loop.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    /// Most connections open at once.
    pub connections: usize,
    /// Longest a write to a connection may wait for the peer to read.
    pub write_stall: Duration,
    /// Where connections are counted (metrics).
    pub stats: Arc<ConnStats>,
}

/// How to serve one connection.
struct Conn {
    router: Router,
    keep_alive: bool,
    permit: Option<OwnedSemaphorePermit>,
    write_stall: Duration,
    open: OpenConn,
}

/// A connection's socket with its slot: the permit moves with the socket into a WebSocket
/// upgrade, so a stream holds its slot until the stream itself closes (hyper's connection
/// future ends at the upgrade). A write that cannot progress for `stall` (the peer reads
/// nothing) fails with `TimedOut`, which ends the connection: a stuck client cannot pin a
/// reply's buffers (for a read, mapped segments that then cannot be reclaimed) forever.
struct Slotted<I> {
    io: I,
    _permit: Option<OwnedSemaphorePermit>,
    _open: OpenConn,
    stall: Duration,
    blocked: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<I> Slotted<I> {
    /// Pass a write's result through, failing one that stayed pending for `stall`.
    fn watch<T>(&mut self, cx: &mut Context<'_>, r: Poll<std::io::Result<T>>) -> Poll<std::io::Result<T>> {
        if r.is_ready() {
            self.blocked = None;
            return r;
        }
        let stall = self.stall;
        let timer = self.blocked.get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the peer read nothing for {stall:?}; closing the connection"),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Slotted<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Slotted<I> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        self.watch(cx, r)
    }
    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[std::io::IoSlice<'_>]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watch(cx, r)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.io).poll_flush(cx);
        self.watch(cx, r)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

async fn connection(tcp: TcpStream, tls: Option<TlsAcceptor>, conn: Conn, shutdown: Shutdown, peer: std::net::SocketAddr) {
    match tls {
        None => serve(tcp, conn, shutdown).await,
        Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(s)) => serve(s, conn, shutdown).await,
            Ok(Err(e)) => tracing::debug!(key = super::conn_key().as_str(), %peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(key = super::conn_key().as_str(), %peer, "TLS handshake timed out"),
        },
    }
}

async fn serve<I>(io: I, c: Conn, shutdown: Shutdown)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(c.router);
    let io = TokioIo::new(Slotted { io, _permit: c.permit, _open: c.open, stall: c.write_stall, blocked: None });
    // The header-read timeout also closes a connection that sends nothing (it would hold a
    // slot); clients drop pooled connections idle for less than this.
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .keep_alive(c.keep_alive)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(key = super::conn_key().as_str(), error = %e, "connection ended with an error");
            }
        }
        _ = shutdown.wait() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}
