//! The umbrella error type.

use std::path::PathBuf;

use crate::channel::ChannelError;
use crate::control::ControlError;
use crate::net::NetError;
use crate::ranger::RangeError;
use crate::relay::StreamError;
use crate::storage::{StorageError, WriteError};
use crate::telem::SeriesError;

/// Result with [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the engine returns. Each subsystem has its own enum; this wraps them.
///
/// Messages say what happened and what to do. Match on the variants (and the inner enums)
/// to react programmatically; [`Error::code`] gives a stable string for other languages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A channel definition or lookup failed.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// A range operation failed.
    #[error(transparent)]
    Range(#[from] RangeError),
    /// The storage engine failed (I/O, corruption).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A write was rejected; nothing of it was written.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A control request was refused.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// A streamer fell behind or was closed.
    #[error(transparent)]
    Stream(#[from] StreamError),
    /// A series was malformed.
    #[error(transparent)]
    Series(#[from] SeriesError),
    /// Another engine (this process or another) has the data directory open.
    #[error("data directory {path} is already open{}; close the other engine or use another directory", holder.map(|p| format!(" by process {p}")).unwrap_or_default())]
    AlreadyOpen {
        /// The directory.
        path: PathBuf,
        /// The holding process, when known.
        holder: Option<u32>,
    },
    /// The directory exists, is not empty and is not a Telemetron data directory.
    #[error("{path} is not a Telemetron data directory (it holds {found:?}); pass an empty or new directory")]
    NotADataDirectory {
        /// The directory.
        path: PathBuf,
        /// Some of the entries found there.
        found: Vec<String>,
    },
    /// Written by an incompatible version.
    #[error("{path} uses format version {found}; this build reads version {supported}. Use a matching Telemetron version")]
    UnsupportedFormat {
        /// The file or directory.
        path: PathBuf,
        /// Version found.
        found: u64,
        /// Version supported.
        supported: u64,
    },
    /// The metadata catalog failed.
    #[error("metadata catalog error: {reason}")]
    Metadata {
        /// Details.
        reason: String,
    },
    /// The engine or the object was closed.
    #[error("{what} is closed; open it again")]
    Closed {
        /// What was closed.
        what: &'static str,
    },
    /// An argument is out of its allowed range.
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// What to change.
        reason: String,
    },
    /// Connecting to, authenticating with or talking to a remote node failed.
    #[error(transparent)]
    Net(#[from] NetError),
    /// An error from a remote node that this build cannot rebuild as a typed variant (a
    /// newer node). `code` is the node's code when this build knows it, else `"remote"`.
    #[error("{message}")]
    Remote {
        /// The stable code (see [`Error::code`]).
        code: &'static str,
        /// The node's message.
        message: String,
    },
}

impl Error {
    /// A stable, language-neutral code for this error (`"channel.not_found"`, ...), used by
    /// the wire protocol and the Python and Node bindings.
    pub fn code(&self) -> &'static str {
        match self {
            Error::Channel(e) => match e {
                ChannelError::KeyNotFound { .. } | ChannelError::NameNotFound { .. } => "channel.not_found",
                ChannelError::NameTaken { .. } => "channel.name_taken",
                ChannelError::InvalidName { .. } | ChannelError::InvalidDefinition { .. } => "channel.invalid",
                ChannelError::IndexNotTimestamp { .. } | ChannelError::NotAnIndex { .. } => "channel.invalid_index",
                ChannelError::IndexInUse { .. } => "channel.index_in_use",
                ChannelError::Busy { .. } => "channel.busy",
            },
            Error::Range(RangeError::NotFound { .. }) => "range.not_found",
            Error::Range(RangeError::Invalid { .. }) => "range.invalid",
            Error::Storage(e) => e.code(),
            Error::Write(e) => e.code(),
            Error::Control(e) => e.code(),
            Error::Stream(e) => e.code(),
            Error::Series(_) => "series.invalid",
            Error::AlreadyOpen { .. } => "engine.already_open",
            Error::NotADataDirectory { .. } => "engine.not_a_data_directory",
            Error::UnsupportedFormat { .. } => "engine.unsupported_format",
            Error::Metadata { .. } => "engine.metadata",
            Error::Closed { .. } => "engine.closed",
            Error::InvalidArgument { .. } => "invalid_argument",
            Error::Net(e) => e.code(),
            Error::Remote { code, .. } => code,
        }
    }
}
