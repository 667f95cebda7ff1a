//! The wire protocol shared by the server and the remote client.
//!
//! - [`codec`]: the binary frame codec: little-endian typed buffers that decode into series
//!   without copying where the buffer is aligned.
//! - [`messages`]: JSON bodies of unary calls and control messages of the streams.
//! - [`WireError`]: errors as `{code, message, detail}`, rebuilt into the same
//!   [`crate::Error`] variant on the other side.
//! - [`NetError`]: what can go wrong between client and node.
//! - [`CloseCode`]: the WebSocket close codes that end a stream.
//!
//! The full protocol (HTTP routes, WebSocket stream messages, handshake, keep-alive,
//! errors, limits) is described in `docs/protocol.md`.
//!
//! ## Versioning
//! Every request to `/api/v1/...` (except `health` and `version`) carries the header
//! [`VERSION_HEADER`] with [`PROTOCOL_VERSION`]. A node refuses any other value with
//! `protocol.version_mismatch` naming both versions; the client checks
//! `GET /api/v1/version` first and refuses an incompatible node the same way.

mod close;
pub mod codec;
pub mod messages;
mod wire_error;

pub use crate::net::NetError;
pub use close::CloseCode;
pub use wire_error::WireError;

/// Protocol version spoken by this build. A peer with another version is refused at the
/// handshake with a message naming both versions.
pub const PROTOCOL_VERSION: u16 = 1;

/// Header carrying the protocol version on every request.
pub const VERSION_HEADER: &str = "telemetron-protocol";

/// Header by which a client asks the node to compress the frames it sends back (reads,
/// iterator steps, streamed frames) where that pays (`codec::encode_chunks_for`). Its
/// value is `1`. A node that does not know it sends raw frames, which the client decodes
/// all the same.
pub const COMPRESS_HEADER: &str = "telemetron-compress";

/// The WebSocket read buffer of a socket that receives only small messages (see
/// [`StreamKind::server_reads_small`] and [`StreamKind::client_reads_small`]).
/// tungstenite zeroes the buffer's free space (128 KiB by default) before every read,
/// whether or not data is waiting, which cost a node fanning out small frames a third of
/// its CPU (docs/benchmarks.md). Bulk readers keep the default. A message larger than this
/// is still read whole, in several reads.
pub const SMALL_READ_BUFFER: usize = 8 * 1024;

/// The three streams a client opens on a node, at `/api/v1/stream/{kind}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// Frames in, acknowledgements out.
    Writer,
    /// Requests in, live frames out.
    Streamer,
    /// Requests in, bulk steps of stored data out.
    Iterator,
}

impl StreamKind {
    /// The last segment of the stream's path, and its name in logs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Writer => "writer",
            Self::Streamer => "streamer",
            Self::Iterator => "iterator",
        }
    }

    /// The node receives only small JSON requests on it (a writer's frames are bulk).
    #[must_use]
    pub const fn server_reads_small(self) -> bool {
        !matches!(self, Self::Writer)
    }

    /// The client receives only small messages on it: acknowledgements, live frames of a
    /// few samples (an iterator's steps are bulk).
    #[must_use]
    pub const fn client_reads_small(self) -> bool {
        !matches!(self, Self::Iterator)
    }
}

/// Content type of a binary frame body.
pub const FRAME_CONTENT_TYPE: &str = "application/vnd.telemetron.frame";

/// Prefix of every route.
pub const API_PREFIX: &str = "/api/v1";

/// Parse a JSON request body as the server does (exposed for fuzzing).
///
/// # Errors
/// [`NetError::Protocol`] naming what is wrong.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, NetError> {
    serde_json::from_slice(body).map_err(|e| NetError::protocol(format!("malformed JSON message: {e}")))
}

/// Run every JSON parser of the protocol (the node's requests, its replies as the client
/// reads them, and errors turned into [`crate::Error`]) over `data`, discarding the
/// results. The fuzz target and the fuzz test both drive this, so a new message type is
/// fuzzed by both once it is added here. Must never panic.
#[doc(hidden)]
pub fn parse_every_message(data: &[u8]) {
    use messages::*;
    let _ = parse_json::<WriterRequest>(data);
    let _ = parse_json::<StreamerRequest>(data);
    let _ = parse_json::<IteratorRequest>(data);
    let _ = parse_json::<CreateChannels>(data);
    let _ = parse_json::<RetrieveChannels>(data);
    let _ = parse_json::<Search>(data);
    let _ = parse_json::<RangeOfKeys>(data);
    let _ = parse_json::<ReadFrames>(data);
    let _ = parse_json::<CreateRange>(data);
    let _ = parse_json::<Meta>(data);
    let _ = parse_json::<LoginRequest>(data);
    let _ = parse_json::<WriterResponse>(data);
    let _ = parse_json::<StreamerResponse>(data);
    let _ = parse_json::<IteratorResponse>(data);
    if let Ok(w) = parse_json::<WireError>(data) {
        let e: crate::Error = w.into();
        let _ = (e.code(), e.to_string());
    }
}
