//! How to reach a node and authenticate to it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How to authenticate to a remote node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Credentials {
    /// No credentials (accepted only by nodes that do not require authentication).
    #[default]
    None,
    /// A bearer token.
    Token {
        /// The token.
        token: String,
    },
    /// Username and password.
    Password {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
}

/// Connection settings for `telemetron::connect` (feature `remote`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Credentials.
    pub credentials: Credentials,
    /// PEM file of a CA certificate to trust (for `https`/`wss` with a private CA).
    pub ca_cert: Option<std::path::PathBuf>,
    /// Give up connecting after this long.
    pub timeout: Duration,
    /// Ask the node to compress what it sends back (reads, iterator steps, streamed frames)
    /// where that pays: Pcodec for 16-, 32- and 64-bit numbers, shuffle + Zstandard for the
    /// other fixed-size types, only for series of at least 16 KiB that shrink by a tenth.
    /// It costs the node about 4 ms of CPU per MB compressed and the client about 0.7 ms
    /// per MB decompressed, so it pays on links slower than about 200 MB/s, not on
    /// loopback or a fast LAN (docs/benchmarks.md, "Compression on the wire"). Off by default.
    pub compress: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions { credentials: Credentials::None, ca_cert: None, timeout: Duration::from_secs(10), compress: false }
    }
}
