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
    /// Compressing costs the node CPU (Pcodec: roughly 5–8 ms per MB here), so it pays on
    /// slow links, not on loopback. Measured on one channel of 16 MB: through a 100 Mbit/s
    /// link 6–60x faster for signals that compress 10x or more and 1.3–2.1x for noisy
    /// floats; through 1 Gbit/s 1.2–4.9x for the former and 0.73x (slower) for noisy
    /// floats (docs/benchmarks.md, "Compression on the wire"). Off by default.
    pub compress: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions { credentials: Credentials::None, ca_cert: None, timeout: Duration::from_secs(10), compress: false }
    }
}
