//! Errors of the network layer: connecting, authenticating, speaking the protocol.
//!
//! Public as [`crate::protocol::NetError`]. It lives outside `protocol` so that the umbrella
//! [`crate::Error`] can wrap it while `protocol` (whose wire errors rebuild the umbrella
//! error) depends on the umbrella: see the "may depend on" table in `docs/architecture.md`.

use serde::{Deserialize, Serialize};

/// A network, protocol or authentication failure between a client and a node.
///
/// Engine errors (a rejected write, an unknown channel, ...) cross the wire unchanged and
/// are rebuilt as the same [`crate::Error`] variants; this enum holds only what can go
/// wrong *between* the two sides.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum NetError {
    /// The URL cannot be used.
    #[error("invalid URL {url:?}: {reason}; use http://host:port or https://host:port")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The node could not be reached.
    #[error("cannot connect to {url}: {reason}; check that `telemetron serve` runs there and the address is right")]
    Connect {
        /// The URL.
        url: String,
        /// The OS or TLS message.
        reason: String,
    },
    /// An established connection failed or was closed by the node.
    #[error("connection to the node was lost: {reason}; reconnect (writers must be opened again)")]
    ConnectionLost {
        /// What happened.
        reason: String,
    },
    /// The node did not answer in time.
    #[error("{what} timed out after {millis} ms; check the node and the network")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        millis: u64,
    },
    /// The two sides speak incompatible protocol versions.
    #[error(
        "protocol version mismatch: the node speaks version {node}, the client speaks version {client}; use matching Telemetron versions on client and node"
    )]
    VersionMismatch {
        /// The node's protocol version.
        node: u16,
        /// The client's protocol version.
        client: u16,
    },
    /// A message broke the protocol (malformed, wrong type, out of order).
    #[error("protocol violation: {reason}")]
    Protocol {
        /// What was wrong.
        reason: String,
    },
    /// A message exceeded the node's size limit.
    #[error(
        "message of {size} bytes exceeds the limit of {limit} bytes; split it into smaller frames or raise the node's --max-message-bytes"
    )]
    TooLarge {
        /// Size of the message.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The node requires credentials and none (or the wrong kind) were given.
    #[error("this node requires authentication; pass a token or a username and password in ConnectOptions::credentials")]
    AuthRequired,
    /// The credentials were refused.
    #[error("invalid credentials; check the token or the username and password")]
    InvalidCredentials,
    /// The user's role does not allow the request.
    #[error("forbidden: {reason}; ask an admin for a role that allows it")]
    Forbidden {
        /// Who asked for what, and what it needs.
        reason: String,
    },
    /// TLS setup or handshake failed.
    #[error("TLS error: {reason}")]
    Tls {
        /// Details.
        reason: String,
    },
    /// The node is shutting down.
    #[error("the node is shutting down; reconnect when it is back")]
    ServerShutdown,
    /// The node already serves as many connections as it may.
    #[error("the node is serving its limit of {limit} connections; close idle clients or raise the node's --max-connections")]
    Busy {
        /// The node's connection limit.
        limit: u64,
    },
    /// The peer sent nothing for longer than the keep-alive timeout.
    #[error("no keep-alive for {millis} ms: the peer is gone or unreachable")]
    KeepAliveTimeout {
        /// The timeout.
        millis: u64,
    },
    /// A node of the cluster that stores a channel asked for is not a live member (it died,
    /// was cut off, or has not joined yet): its lease expired or it does not answer.
    #[error("cluster node {node} is unavailable: {reason}; its channels come back when it rejoins (see `telemetron cluster status`)")]
    NodeUnavailable {
        /// The node's name (or number when its name is unknown).
        node: String,
        /// What happened.
        reason: String,
    },
    /// The cluster's coordination service (etcd) failed or refused a request.
    #[error("cluster coordination failed: {reason}; check that etcd runs and is reachable (--cluster)")]
    Coordination {
        /// What failed.
        reason: String,
    },
    /// The node refused the request for another reason.
    #[error("the node failed: {reason}")]
    Server {
        /// Details.
        reason: String,
    },
}

impl NetError {
    /// Stable code, see [`crate::Error::code`].
    pub fn code(&self) -> &'static str {
        match self {
            NetError::InvalidUrl { .. } => "net.invalid_url",
            NetError::Connect { .. } => "net.connect",
            NetError::ConnectionLost { .. } => "net.connection_lost",
            NetError::Timeout { .. } => "net.timeout",
            NetError::VersionMismatch { .. } => "protocol.version_mismatch",
            NetError::Protocol { .. } => "protocol.violation",
            NetError::TooLarge { .. } => "protocol.too_large",
            NetError::AuthRequired => "auth.required",
            NetError::InvalidCredentials => "auth.invalid_credentials",
            NetError::Forbidden { .. } => "auth.forbidden",
            NetError::Tls { .. } => "net.tls",
            NetError::ServerShutdown => "server.shutdown",
            NetError::Busy { .. } => "server.busy",
            NetError::KeepAliveTimeout { .. } => "net.keepalive_timeout",
            NetError::NodeUnavailable { .. } => "node.unavailable",
            NetError::Coordination { .. } => "cluster.coordination",
            NetError::Server { .. } => "server.internal",
        }
    }

    /// Every code of this enum.
    pub const CODES: &[crate::codes::CodeInfo] = &[
        crate::codes::CodeInfo::new("net.invalid_url", "the URL is not a node address"),
        crate::codes::CodeInfo::new("net.connect", "the node cannot be reached"),
        crate::codes::CodeInfo::new("net.connection_lost", "an established connection failed or was closed by the node"),
        crate::codes::CodeInfo::new("net.timeout", "the node did not answer in time"),
        crate::codes::CodeInfo::new("protocol.version_mismatch", "client and node speak incompatible protocol versions"),
        crate::codes::CodeInfo::new("protocol.violation", "a message broke the protocol"),
        crate::codes::CodeInfo::new("protocol.too_large", "a message exceeded the node's size limit"),
        crate::codes::CodeInfo::new("auth.required", "the node requires credentials"),
        crate::codes::CodeInfo::new("auth.invalid_credentials", "the credentials were refused"),
        crate::codes::CodeInfo::new("auth.forbidden", "the user's role does not allow the request"),
        crate::codes::CodeInfo::new("net.tls", "TLS setup or handshake failed"),
        crate::codes::CodeInfo::new("server.shutdown", "the node is shutting down"),
        crate::codes::CodeInfo::new("node.unavailable", "the cluster node that stores a channel is not a live member"),
        crate::codes::CodeInfo::new("cluster.coordination", "the cluster's coordination service (etcd) failed"),
        crate::codes::CodeInfo::new("server.busy", "the node serves its limit of connections"),
        crate::codes::CodeInfo::new("net.keepalive_timeout", "the peer sent nothing for longer than the keep-alive timeout"),
        crate::codes::CodeInfo::new("server.internal", "the node failed for another reason"),
    ];

    /// A protocol violation.
    pub fn protocol(reason: impl Into<String>) -> NetError {
        NetError::Protocol { reason: reason.into() }
    }

    /// A lost connection.
    pub fn lost(reason: impl std::fmt::Display) -> NetError {
        NetError::ConnectionLost { reason: reason.to_string() }
    }
}
