//! How to reach a node, and how callers name channels.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::channel::ChannelKey;

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

/// Connection settings for [`crate::connect`].
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

/// How a caller names a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChannelRef {
    /// By key.
    Key(ChannelKey),
    /// By name.
    Name(String),
}

impl From<ChannelKey> for ChannelRef {
    fn from(k: ChannelKey) -> Self {
        ChannelRef::Key(k)
    }
}

impl From<&str> for ChannelRef {
    fn from(n: &str) -> Self {
        ChannelRef::Name(n.to_string())
    }
}

impl From<String> for ChannelRef {
    fn from(n: String) -> Self {
        ChannelRef::Name(n)
    }
}
