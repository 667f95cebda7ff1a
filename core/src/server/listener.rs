//! The accept loop: TCP (with `TCP_NODELAY`), optional TLS, HTTP/1.1 with upgrades.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use super::shutdown::Shutdown;

/// Longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accept connections until shutdown. Past `limit` open connections, a new one is served
/// [`super::http::busy_router`] (one 503 reply, then closed), so its client learns why.
pub(crate) async fn run(listener: TcpListener, tls: Option<TlsAcceptor>, router: Router, shutdown: Shutdown, limit: usize) {
    let permits = Arc::new(Semaphore::new(limit));
    let busy = super::http::busy_router(limit);
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.wait() => return,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let conn = match permits.clone().try_acquire_owned() {
            Ok(permit) => Conn { router: router.clone(), keep_alive: true, _permit: Some(permit) },
            Err(_) => {
                tracing::warn!(%peer, limit, "connection limit reached; refusing a connection");
                Conn { router: busy.clone(), keep_alive: false, _permit: None }
            }
        };
        tokio::spawn(connection(tcp, tls.clone(), conn, shutdown.clone(), peer));
    }
}

/// How to serve one connection; the permit (if any) is held until it closes.
struct Conn {
    router: Router,
    keep_alive: bool,
    _permit: Option<OwnedSemaphorePermit>,
}

async fn connection(tcp: TcpStream, tls: Option<TlsAcceptor>, conn: Conn, shutdown: Shutdown, peer: std::net::SocketAddr) {
    match tls {
        None => serve(tcp, conn, shutdown).await,
        Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
            Ok(Ok(s)) => serve(s, conn, shutdown).await,
            Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
            Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
        },
    }
}

async fn serve<I>(io: I, c: Conn, shutdown: Shutdown)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = TowerToHyperService::new(c.router.clone());
    let conn =
        hyper::server::conn::http1::Builder::new().keep_alive(c.keep_alive).serve_connection(TokioIo::new(io), service).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        }
        _ = shutdown.wait() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}
