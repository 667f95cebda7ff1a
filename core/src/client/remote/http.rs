//! Unary calls: HTTP/1.1 over a small pool of kept-alive connections.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::transport::Endpoint;
use crate::error::{Error, Result};
use crate::protocol::messages::{LoginRequest, LoginResponse};
use crate::protocol::{API_PREFIX, COMPRESS_HEADER, NetError, PROTOCOL_VERSION, VERSION_HEADER, WireError};

/// Most idle connections kept.
const POOL: usize = 8;
/// An idle connection older than this is not reused.
const POOL_IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// An HTTP client for one node.
#[derive(Debug)]
pub(crate) struct Http {
    pub endpoint: Endpoint,
    /// Idle connections and when each was last used.
    idle: parking_lot::Mutex<Vec<(SendRequest<Full<Bytes>>, std::time::Instant)>>,
    /// `Authorization` header value, once authenticated.
    pub auth: parking_lot::RwLock<Option<String>>,
    /// Username and password, to log in again when the node has let the session expire.
    pub login: parking_lot::RwLock<Option<(String, String)>>,
    /// The node's message size limit (0: unknown).
    pub max_message: std::sync::atomic::AtomicU64,
    /// Set by `Client::close`: later calls fail with `engine.closed`, as on an embedded
    /// client.
    pub closed: std::sync::atomic::AtomicBool,
}

/// A response: status, content type and body.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub frame: bool,
    pub body: Bytes,
}

impl Http {
    pub(crate) fn new(endpoint: Endpoint) -> Http {
        Http {
            endpoint,
            idle: parking_lot::Mutex::new(Vec::new()),
            auth: parking_lot::RwLock::new(None),
            login: parking_lot::RwLock::new(None),
            max_message: Default::default(),
            closed: Default::default(),
        }
    }

    async fn sender(&self) -> Result<SendRequest<Full<Bytes>>> {
        loop {
            let Some((mut s, since)) = self.idle.lock().pop() else { break };
            // The node closes a connection that stays silent for its header-read timeout
            // (120 s); one idle for half of that is dropped rather than raced.
            if since.elapsed() < POOL_IDLE && !s.is_closed() && s.ready().await.is_ok() {
                return Ok(s);
            }
        }
        let io = self.endpoint.dial().await?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
            .await
            .map_err(|e| NetError::Connect { url: self.endpoint.url.clone(), reason: e.to_string() })?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Fail if the client was closed.
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(std::sync::atomic::Ordering::Acquire) { Err(Error::Closed { what: "the client".into() }) } else { Ok(()) }
    }

    /// Close: refuse later calls and drop idle connections.
    pub(crate) fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::Release);
        self.idle.lock().clear();
    }

    /// Send a request to `/api/v1/{path}` and read the whole response.
    pub(crate) async fn send(&self, method: Method, path: &str, content_type: &str, body: Bytes) -> Result<Reply> {
        self.check_open()?;
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{API_PREFIX}/{path}"))
            .header(hyper::header::HOST, &self.endpoint.authority)
            .header(VERSION_HEADER, PROTOCOL_VERSION.to_string())
            .header(hyper::header::CONTENT_TYPE, content_type);
        if let Some(a) = self.auth.read().as_deref() {
            req = req.header(hyper::header::AUTHORIZATION, a);
        }
        if let Some(tp) = crate::client::current_traceparent() {
            req = req.header("traceparent", tp.as_ref());
        }
        if self.endpoint.compress {
            req = req.header(COMPRESS_HEADER, "1");
        }
        let req = req.body(Full::new(body)).map_err(|e| NetError::protocol(format!("cannot build request: {e}")))?;
        let timeout = self.endpoint.timeout().max(std::time::Duration::from_secs(60));
        let work = async {
            let mut s = self.sender().await?;
            let resp = s.send_request(req).await.map_err(NetError::lost)?;
            let status = resp.status();
            let frame = resp
                .headers()
                .get(hyper::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes() == crate::protocol::FRAME_CONTENT_TYPE.as_bytes());
            let len = resp.headers().get(hyper::header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
            let body = read_body(resp.into_body(), len).await?;
            let mut idle = self.idle.lock();
            if idle.len() < POOL {
                idle.push((s, std::time::Instant::now()));
            }
            Ok::<_, Error>(Reply { status, frame, body })
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(NetError::Timeout { what: format!("request {path}"), millis: timeout.as_millis() as u64 }.into()),
        }
    }

    /// Refuse a message the node would refuse, before sending it.
    pub(crate) fn check_size(&self, size: usize) -> Result<()> {
        let limit = self.max_message.load(std::sync::atomic::Ordering::Relaxed);
        if limit > 0 && size as u64 > limit {
            return Err(NetError::TooLarge { size: size as u64, limit }.into());
        }
        Ok(())
    }

    /// POST a JSON body; returns the raw reply, with errors already turned into `Err`. A
    /// request refused because the node let this client's session expire is sent once
    /// more after logging in again (password credentials only).
    pub(crate) async fn post_raw(&self, path: &str, content_type: &str, body: Bytes) -> Result<Reply> {
        self.check_size(body.len())?;
        let used = self.auth.read().clone();
        match check(self.send(Method::POST, path, content_type, body.clone()).await?) {
            Err(e) if refused(&e) && self.relogin(used).await? => check(self.send(Method::POST, path, content_type, body).await?),
            r => r,
        }
    }

    /// After a request sent with the credentials `used` was refused: log in with the
    /// stored username and password and use the new session token from now on (unless
    /// another request already did, then just use its token). `false` if there is no
    /// password to log in with.
    pub(crate) async fn relogin(&self, used: Option<String>) -> Result<bool> {
        let Some((username, password)) = self.login.read().clone() else { return Ok(false) };
        if *self.auth.read() != used {
            return Ok(true);
        }
        let body = serde_json::to_vec(&LoginRequest { username, password })
            .map_err(|e| NetError::protocol(format!("cannot encode request: {e}")))?;
        let r = check(self.send(Method::POST, "auth/login", "application/json", Bytes::from(body)).await?)?;
        let reply: LoginResponse = decode(&r.body)?;
        *self.auth.write() = Some(format!("Bearer {}", reply.token));
        Ok(true)
    }

    /// POST JSON, receive JSON.
    pub(crate) async fn call<Q: Serialize, R: DeserializeOwned>(&self, path: &str, req: &Q) -> Result<R> {
        let body = serde_json::to_vec(req).map_err(|e| NetError::protocol(format!("cannot encode request: {e}")))?;
        let r = self.post_raw(path, "application/json", Bytes::from(body)).await?;
        decode(&r.body)
    }

    /// GET JSON.
    pub(crate) async fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R> {
        let r = check(self.send(Method::GET, path, "application/json", Bytes::new()).await?)?;
        decode(&r.body)
    }
}

/// Read a whole response body into one buffer, allocated once when its length is known:
/// a large read then touches fresh memory once, not once per chunk and again to join them.
async fn read_body(mut body: hyper::body::Incoming, len: Option<usize>) -> Result<Bytes> {
    let mut out = Vec::new();
    if let Some(n) = len {
        // The request asked for too much: the caller's error, not the node's.
        out.try_reserve_exact(n).map_err(|_| Error::InvalidArgument {
            reason: format!("a reply of {n} bytes does not fit in this process's memory; read a smaller range or use an iterator"),
        })?;
    }
    while let Some(f) = body.frame().await {
        if let Ok(d) = f.map_err(NetError::lost)?.into_data() {
            out.extend_from_slice(&d);
        }
    }
    Ok(Bytes::from(out))
}

/// True for the error of a request whose credentials the node no longer accepts.
pub(crate) fn refused(e: &Error) -> bool {
    matches!(e, Error::Net(NetError::InvalidCredentials))
}

/// Decode a JSON body from the node.
pub(crate) fn decode<R: DeserializeOwned>(body: &[u8]) -> Result<R> {
    serde_json::from_slice(body).map_err(|e| NetError::protocol(format!("unexpected reply from the node: {e}")).into())
}

/// Turn a non-2xx reply into the error it carries.
fn check(r: Reply) -> Result<Reply> {
    if r.status.is_success() {
        return Ok(r);
    }
    Err(error_from_body(r.status.as_u16(), &r.body))
}

/// The error in an error reply's body (or a generic one naming the status).
pub(crate) fn error_from_body(status: u16, body: &[u8]) -> Error {
    match serde_json::from_slice::<WireError>(body) {
        Ok(w) => w.into(),
        Err(_) => NetError::Server { reason: format!("HTTP {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)])) }.into(),
    }
}
