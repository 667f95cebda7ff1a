//! The umbrella error type and the one list of error codes.
//!
//! Each subsystem enum owns its codes: it has a `code()` method and a `CODES` table of
//! [`CodeInfo`] (code, family, one-line meaning). [`Error::code`] delegates to them and
//! [`codes`] chains every table: it is the single source the wire protocol, the Python and
//! Node SDKs (their generated `_codes.py` / `codes.js`, checked by `core/tests/error_codes.rs`)
//! and their tests derive from.

use serde::{Deserialize, Serialize};

pub use crate::codes::CodeInfo;

use crate::channel::ChannelError;
use crate::control::ControlError;
use crate::net::NetError;
use crate::ranger::RangerError;
use crate::relay::StreamError;
use crate::storage::{StorageError, WriteError};
use crate::telem::SeriesError;

/// Result with [`Error`] by default.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the engine returns. Each subsystem has its own enum; this wraps them.
///
/// Messages say what happened and what to do. Match on the variants (and the inner enums)
/// to react programmatically; [`Error::code`] gives a stable string for other languages.
///
/// The serde form (tag `e` for the subsystem, the inner enum's own tag `v` for the
/// variant) is the `detail` of a wire error; see `docs/protocol.md` §3.
#[derive(Debug, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "e", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Error {
    /// A channel definition or lookup failed.
    #[error(transparent)]
    Channel(ChannelError),
    /// A range operation failed.
    #[error(transparent)]
    Range(RangerError),
    /// The storage engine failed (I/O, corruption), or the data directory cannot be used
    /// (already open, not a data directory, unsupported format, metadata catalog failed).
    #[error(transparent)]
    Storage(StorageError),
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
    /// The engine or the object was closed.
    #[error("{what} is closed; open it again")]
    Closed {
        /// What was closed.
        what: String,
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
    /// A flow could not be compiled, deployed, reconfigured or found (`flow.*`; the
    /// dataflow runtime's own `telemetron::flow::FlowError` converts into it).
    #[error(transparent)]
    Flow(#[from] FlowFailure),
    /// An error from a remote node that this build cannot rebuild as a typed variant (a
    /// newer node). `code` is the node's code when this build knows it, else `"remote"`.
    #[error("{message}")]
    #[serde(skip)]
    Remote {
        /// The stable code (see [`Error::code`]): an entry of [`codes`], or `"remote"`.
        #[serde(skip)]
        code: &'static str,
        /// The node's message.
        #[serde(skip)]
        message: String,
    },
}

impl Error {
    /// A stable, language-neutral code for this error (`"channel.not_found"`, ...), used by
    /// the wire protocol and the Python and Node bindings. Every code is in [`codes`].
    pub fn code(&self) -> &'static str {
        match self {
            Error::Channel(e) => e.code(),
            Error::Range(e) => e.code(),
            Error::Storage(e) => e.code(),
            Error::Write(e) => e.code(),
            Error::Control(e) => e.code(),
            Error::Stream(e) => e.code(),
            Error::Series(e) => e.code(),
            Error::Closed { .. } => "engine.closed",
            Error::InvalidArgument { .. } => "invalid_argument",
            Error::Net(e) => e.code(),
            Error::Flow(e) => e.code(),
            Error::Remote { code, .. } => code,
        }
    }

    /// The codes of the umbrella's own variants.
    pub const CODES: &[CodeInfo] = &[
        CodeInfo::new("engine.closed", "the engine, client, writer, streamer or iterator is closed"),
        CodeInfo::new("invalid_argument", "an argument is out of its allowed range"),
    ];
}

/// What can fail when a flow is managed (`telemetron::flow::Flows`): the codes `flow.*`.
///
/// Defined here, below the dataflow runtime, so that the umbrella [`Error`] (and with it
/// the wire protocol and the SDKs) carries flow errors without depending on the runtime.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "v", rename_all = "snake_case")]
#[non_exhaustive]
pub enum FlowFailure {
    /// The flow file is wrong (YAML, an unknown component, a bad option, a cycle, a type
    /// mismatch). The message names the node and the line.
    #[error("{message}")]
    Config {
        /// What is wrong and what to do.
        message: String,
    },
    /// A component failed at runtime.
    #[error("{message}")]
    Component {
        /// The component's error.
        message: String,
    },
    /// A file a component uses could not be read or written.
    #[error("{message}")]
    Io {
        /// What was being done, and the OS error.
        message: String,
    },
    /// No flow of that name runs here.
    #[error("no flow named `{name}` runs here; list the flows to see their names")]
    NotFound {
        /// The name asked for.
        name: String,
    },
    /// A flow of that name runs already.
    #[error("a flow named `{name}` runs already; stop it first, reconfigure it, or give the new one another `flow:` name")]
    NameTaken {
        /// The name.
        name: String,
    },
}

impl FlowFailure {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            FlowFailure::Config { .. } => "flow.config",
            FlowFailure::Component { .. } => "flow.component",
            FlowFailure::Io { .. } => "flow.io",
            FlowFailure::NotFound { .. } => "flow.not_found",
            FlowFailure::NameTaken { .. } => "flow.name_taken",
        }
    }

    /// Its codes.
    pub const CODES: &[CodeInfo] = &[
        CodeInfo::new("flow.config", "a flow file is wrong: YAML, an unknown component, a bad option, a cycle or a type mismatch"),
        CodeInfo::new("flow.component", "a flow component failed at runtime"),
        CodeInfo::new("flow.io", "a file a flow component uses could not be read or written"),
        CodeInfo::new("flow.not_found", "no flow of that name runs on the node"),
        CodeInfo::new("flow.name_taken", "a flow of that name runs already on the node"),
    ];
}

impl From<crate::storage_error::StorageFailure> for Error {
    fn from(f: crate::storage_error::StorageFailure) -> Error {
        match f {
            crate::storage_error::StorageFailure::Storage(e) => e.into(),
            crate::storage_error::StorageFailure::Write(e) => Error::Write(e),
            crate::storage_error::StorageFailure::Series(e) => Error::Series(e),
        }
    }
}

impl From<StorageError> for Error {
    /// `StorageError::Closed` and `StorageError::DataDirectory` become the umbrella's
    /// [`Error::Closed`] and [`Error::InvalidArgument`] (their codes are the umbrella's);
    /// every other storage error is [`Error::Storage`].
    fn from(e: StorageError) -> Error {
        match e {
            StorageError::Closed { what } => Error::Closed { what },
            StorageError::DataDirectory { reason } => Error::InvalidArgument { reason },
            e => Error::Storage(e),
        }
    }
}

impl From<ChannelError> for Error {
    /// A catalog failure inside a channel operation becomes the umbrella error of its code.
    fn from(e: ChannelError) -> Error {
        match e {
            ChannelError::Storage(s) => Error::from(s),
            e => Error::Channel(e),
        }
    }
}

impl From<RangerError> for Error {
    /// A catalog failure inside a range operation becomes the umbrella error of its code.
    fn from(e: RangerError) -> Error {
        match e {
            RangerError::Storage(s) => Error::from(s),
            e => Error::Range(e),
        }
    }
}

/// Every code this build produces, each once, grouped by the enum that owns it:
/// [`ChannelError`], [`RangerError`], [`StorageError`], [`WriteError`], [`ControlError`],
/// [`StreamError`], [`SeriesError`], the umbrella [`Error`], [`NetError`] and [`FlowFailure`].
///
/// # Examples
///
/// ```
/// let mut codes = telemetron::error::codes();
/// assert!(codes.any(|c| c.code == "write.not_monotonic" && c.family == "write"));
/// ```
pub fn codes() -> impl Iterator<Item = &'static CodeInfo> {
    [
        ChannelError::CODES,
        RangerError::CODES,
        StorageError::CODES,
        WriteError::CODES,
        ControlError::CODES,
        StreamError::CODES,
        SeriesError::CODES,
        Error::CODES,
        NetError::CODES,
        FlowFailure::CODES,
    ]
    .into_iter()
    .flatten()
}

/// The table entry for `code`, if this build knows it.
pub fn code_info(code: &str) -> Option<&'static CodeInfo> {
    codes().find(|c| c.code == code)
}
