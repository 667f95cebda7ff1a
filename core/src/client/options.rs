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
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions { credentials: Credentials::None, ca_cert: None, timeout: Duration::from_secs(10) }
    }
}
