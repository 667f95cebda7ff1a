//! The wire protocol shared by the server and the remote client.
//!
//! - [`codec`]: the binary frame codec: little-endian typed buffers that decode into series
//!   without copying where the buffer is aligned.
//!
//! The full protocol (HTTP routes, WebSocket stream messages, handshake, errors) is
//! described in `docs/protocol.md`.

pub mod codec;

/// Protocol version spoken by this build. A peer with another major version is refused at
/// the handshake with a message naming both versions.
pub const PROTOCOL_VERSION: u16 = 1;
