//! [`ChannelRef`]: how a caller names a channel, by key or by name.

use serde::{Deserialize, Serialize};

use super::ChannelKey;

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
