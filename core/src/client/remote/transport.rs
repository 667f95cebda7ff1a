//! Where the node is and how to reach it: URL parsing, TCP with `TCP_NODELAY`, TLS.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::client::ConnectOptions;
use crate::error::Result;
use crate::protocol::NetError;

/// A parsed node address.
#[derive(Clone)]
pub(crate) struct Endpoint {
    /// The URL as given (for messages).
    pub url: String,
    /// `host:port` for the `Host` header and for connecting.
    pub authority: String,
    host: String,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    timeout: Duration,
    /// Ask for compressed frames (`ConnectOptions::compress`).
    pub compress: bool,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("url", &self.url).field("tls", &self.tls.is_some()).finish()
    }
}

fn bad_url(url: &str, reason: impl Into<String>) -> crate::Error {
    NetError::InvalidUrl { url: url.to_string(), reason: reason.into() }.into()
}

impl Endpoint {
    /// Parse `http://host[:port]`, `https://...` (`ws`/`wss` and `tcp` are accepted as
    /// aliases; no scheme means `http`). The default port is 9090.
    pub(crate) fn parse(url: &str, opts: &ConnectOptions) -> Result<Endpoint> {
        let (scheme, rest) = match url.split_once("://") {
            Some((s, r)) => (s.to_ascii_lowercase(), r),
            None => ("http".to_string(), url),
        };
        let secure = match scheme.as_str() {
            "http" | "ws" | "tcp" | "telemetron" => false,
            "https" | "wss" => true,
            other => return Err(bad_url(url, format!("unsupported scheme {other:?}"))),
        };
        let authority = rest.split('/').next().unwrap_or_default();
        if authority.is_empty() {
            return Err(bad_url(url, "no host"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad_url(url, "bad host or port"))?;
        let tls = if secure { Some(tls_connector(&host, opts)?) } else { None };
        Ok(Endpoint {
            url: url.to_string(),
            authority: format!("{}:{port}", bracket(&host)),
            host,
            tls,
            timeout: opts.timeout,
            compress: opts.compress,
        })
    }

    /// True for TLS endpoints.
    pub(crate) fn secure(&self) -> bool {
        self.tls.is_some()
    }

    /// The connect timeout.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Open a connection (TCP, then TLS when configured).
    pub(crate) async fn dial(&self) -> Result<Io> {
        let connect = async {
            let tcp = TcpStream::connect(&self.authority).await.map_err(|e| self.connect_err(e))?;
            tcp.set_nodelay(true).map_err(|e| self.connect_err(e))?;
            match &self.tls {
                None => Ok(Io::Plain(tcp)),
                Some((c, name)) => {
                    let s = c
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(|e| NetError::Tls { reason: format!("handshake with {}: {e}", self.host) })?;
                    Ok(Io::Tls(Box::new(s)))
                }
            }
        };
        match tokio::time::timeout(self.timeout, connect).await {
            Ok(r) => r,
            Err(_) => {
                Err(NetError::Timeout { what: format!("connecting to {}", self.url), millis: self.timeout.as_millis() as u64 }.into())
            }
        }
    }

    fn connect_err(&self, e: io::Error) -> crate::Error {
        NetError::Connect { url: self.url.clone(), reason: e.to_string() }.into()
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') { format!("[{host}]") } else { host.to_string() }
}

fn split_host_port(a: &str) -> Option<(String, u16)> {
    if let Some(rest) = a.strip_prefix('[') {
        let (h, p) = rest.split_once(']')?;
        let port = match p.strip_prefix(':') {
            Some(p) => p.parse().ok()?,
            None if p.is_empty() => 9090,
            None => return None,
        };
        return Some((h.to_string(), port));
    }
    match a.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() => Some((h.to_string(), p.parse().ok()?)),
        Some(_) => None,
        None => Some((a.to_string(), 9090)),
    }
}

fn tls_connector(host: &str, opts: &ConnectOptions) -> Result<(TlsConnector, ServerName<'static>)> {
    let tls_err = |reason: String| crate::Error::from(NetError::Tls { reason });
    let mut roots = rustls::RootCertStore::empty();
    match &opts.ca_cert {
        Some(path) => {
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| tls_err(format!("cannot read CA certificate {}: {e}", path.display())))?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| tls_err(format!("bad PEM in {}: {e}", path.display())))?;
            if certs.is_empty() {
                return Err(tls_err(format!("{} holds no certificate", path.display())));
            }
            for c in certs {
                roots.add(c).map_err(|e| tls_err(format!("unusable CA certificate in {}: {e}", path.display())))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_err(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string()).map_err(|e| tls_err(format!("{host:?} is not a valid server name: {e}")))?;
    Ok((TlsConnector::from(Arc::new(config)), name))
}

/// A client connection, plain or TLS.
#[derive(Debug)]
pub(crate) enum Io {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Io {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let o = ConnectOptions::default();
        assert_eq!(Endpoint::parse("http://127.0.0.1:9090", &o).unwrap().authority, "127.0.0.1:9090");
        assert_eq!(Endpoint::parse("localhost", &o).unwrap().authority, "localhost:9090");
        assert_eq!(Endpoint::parse("ws://[::1]:80/x", &o).unwrap().authority, "[::1]:80");
        assert!(Endpoint::parse("https://example.com", &o).unwrap().secure());
        assert!(Endpoint::parse("ftp://x", &o).is_err());
        assert!(Endpoint::parse("http://:9", &o).is_err());
        assert!(Endpoint::parse("http://h:notaport", &o).is_err());
    }
}
