//! Storage and write errors: what can fail on disk (data directory, catalog, segments) and
//! why a write is refused. A leaf module below `storage`, so the catalog, the channel registry
//! and ranges can return `StorageError` without depending on the storage engine.

use std::io;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::codes::CodeInfo;
use crate::telem::{DataType, TimeRange, TimeStamp};

/// The storage engine failed. Nothing partial is ever served: a chunk that fails its
/// checksum is reported, not returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "v", rename_all = "snake_case")]
pub enum StorageError {
    /// An operating-system I/O error.
    #[error("I/O error on {path}: {reason}. Check free disk space and permissions")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error kind (not sent over the wire: a remote client sees `Other`).
        #[serde(skip, default = "other_kind")]
        kind: io::ErrorKind,
        /// The OS message.
        reason: String,
    },
    /// Stored bytes failed verification.
    #[error("corrupt data in segment {segment} at offset {offset}: {reason}. The affected range can be deleted; other data is unaffected")]
    Corrupt {
        /// Segment id.
        segment: u64,
        /// Byte offset of the record.
        offset: u64,
        /// What failed.
        reason: String,
    },
    /// A segment could not be rolled back after a failed append and takes no more writes.
    #[error("segment {segment} failed and was retired; open a new writer")]
    SegmentFailed {
        /// Segment id.
        segment: u64,
    },
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
    #[error(
        "{path} uses format version {found}; this build reads versions up to {supported} (older ones are converted when opened). Open it with the Telemetron release that wrote it or a newer one"
    )]
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
    /// The data directory or the metadata catalog is closed; becomes
    /// [`crate::Error::Closed`] (`engine.closed`).
    #[error("{what} is closed; open it again")]
    Closed {
        /// What was closed.
        what: String,
    },
    /// The data directory cannot be created, read or locked; becomes
    /// [`crate::Error::InvalidArgument`] (`invalid_argument`).
    #[error("invalid argument: {reason}")]
    DataDirectory {
        /// What failed.
        reason: String,
    },
}

impl StorageError {
    /// Stable code, see [`crate::Error::code`]. `Closed` and `DataDirectory` have the
    /// umbrella's codes (`engine.closed`, `invalid_argument`), listed in `Error::CODES`.
    pub fn code(&self) -> &'static str {
        match self {
            StorageError::Io { .. } => "storage.io",
            StorageError::Corrupt { .. } => "storage.corrupt",
            StorageError::SegmentFailed { .. } => "storage.segment_failed",
            StorageError::AlreadyOpen { .. } => "engine.already_open",
            StorageError::NotADataDirectory { .. } => "engine.not_a_data_directory",
            StorageError::UnsupportedFormat { .. } => "engine.unsupported_format",
            StorageError::Metadata { .. } => "engine.metadata",
            StorageError::Closed { .. } => "engine.closed",
            StorageError::DataDirectory { .. } => "invalid_argument",
        }
    }

    /// Every code of this enum.
    pub const CODES: &[CodeInfo] = &[
        CodeInfo::new("storage.io", "an operating-system I/O error"),
        CodeInfo::new("storage.corrupt", "stored bytes failed verification"),
        CodeInfo::new("storage.segment_failed", "a segment failed and was retired; open a new writer"),
        CodeInfo::new("engine.already_open", "another engine has the data directory open"),
        CodeInfo::new("engine.not_a_data_directory", "the directory is not empty and not a Telemetron data directory"),
        CodeInfo::new("engine.unsupported_format", "the data was written by an incompatible version"),
        CodeInfo::new("engine.metadata", "the metadata catalog failed"),
    ];
}

fn other_kind() -> io::ErrorKind {
    io::ErrorKind::Other
}

/// A write or writer open was rejected. Nothing of the rejected frame was written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "v", rename_all = "snake_case")]
pub enum WriteError {
    /// The frame names a channel the writer was not opened on.
    #[error("channel {channel} is not one of this writer's channels; open the writer on it")]
    NotInWriter {
        /// The channel key.
        channel: u32,
    },
    /// A series has the wrong data type for its channel.
    #[error("channel {channel:?} holds {expected} samples but the series holds {actual}; convert the values to {expected}")]
    TypeMismatch {
        /// Channel name.
        channel: String,
        /// The channel's type.
        expected: DataType,
        /// The series' type.
        actual: DataType,
    },
    /// Data series do not match the length of their index series.
    #[error(
        "channel {channel:?} has {actual} samples but its index {index:?} has {expected}; every series of an index group must have the same length"
    )]
    LengthMismatch {
        /// The data channel.
        channel: String,
        /// Its index channel.
        index: String,
        /// Index samples in this write.
        expected: usize,
        /// Data samples in this write.
        actual: usize,
    },
    /// Data channels were written without their index.
    #[error("data channels {data:?} were written without their index {index:?}; include the index timestamps in the same frame")]
    IndexMissing {
        /// The index channel.
        index: String,
        /// The data channels present.
        data: Vec<String>,
    },
    /// Index timestamps do not strictly increase.
    #[error(
        "index {index:?}: sample {position} is {value} but the previous timestamp is {previous}; index timestamps must strictly increase within and across writes"
    )]
    NotMonotonic {
        /// The index channel.
        index: String,
        /// Position of the offending sample within this write.
        position: usize,
        /// The previous timestamp.
        previous: TimeStamp,
        /// The offending timestamp.
        value: TimeStamp,
    },
    /// A timestamp precedes the writer's start.
    #[error("index {index:?}: timestamp {value} is before the writer's start {start}; open the writer at an earlier start")]
    BeforeStart {
        /// The index channel.
        index: String,
        /// The writer's start.
        start: TimeStamp,
        /// The offending timestamp.
        value: TimeStamp,
    },
    /// A write reaches into a later domain that is already stored.
    #[error("index {index:?}: timestamp {value} reaches into data already stored from {next_start}; write only before {next_start}")]
    Overlap {
        /// The index channel.
        index: String,
        /// The offending timestamp.
        value: TimeStamp,
        /// Start of the stored data it would overlap.
        next_start: TimeStamp,
    },
    /// A writer was opened at a time already covered by stored data.
    #[error("channel {channel:?} already has data over {existing} and the writer starts at {start}; open the writer after {} or delete that range first", existing.end)]
    OverlapsCommitted {
        /// The channel.
        channel: String,
        /// The writer's start.
        start: TimeStamp,
        /// The stored range it falls into.
        existing: TimeRange,
    },
    /// An open writer holds the channel (for range deletes).
    #[error("channel {channel:?} is held by an open writer; close the writer first")]
    ChannelBusy {
        /// The channel.
        channel: String,
    },
    /// A single write is too large.
    #[error("a single write of {samples} samples exceeds the limit of {limit}; split it into smaller frames")]
    TooLarge {
        /// Samples in the write.
        samples: u64,
        /// The limit.
        limit: u64,
    },
    /// The writer's channel list is empty or names a channel twice.
    #[error("invalid writer configuration: {reason}")]
    InvalidConfig {
        /// What to change.
        reason: String,
    },
}

impl WriteError {
    /// Stable code, see [`crate::Error::code`].
    pub fn code(&self) -> &'static str {
        match self {
            WriteError::NotInWriter { .. } => "write.not_in_writer",
            WriteError::TypeMismatch { .. } => "write.type_mismatch",
            WriteError::LengthMismatch { .. } => "write.length_mismatch",
            WriteError::IndexMissing { .. } => "write.index_missing",
            WriteError::NotMonotonic { .. } => "write.not_monotonic",
            WriteError::BeforeStart { .. } => "write.before_start",
            WriteError::Overlap { .. } => "write.overlap",
            WriteError::OverlapsCommitted { .. } => "write.overlaps_committed",
            WriteError::ChannelBusy { .. } => "write.channel_busy",
            WriteError::TooLarge { .. } => "write.too_large",
            WriteError::InvalidConfig { .. } => "write.invalid_config",
        }
    }

    /// Every code of this enum.
    pub const CODES: &[CodeInfo] = &[
        CodeInfo::new("write.not_in_writer", "the frame names a channel the writer was not opened on"),
        CodeInfo::new("write.type_mismatch", "a series has the wrong data type for its channel"),
        CodeInfo::new("write.length_mismatch", "data and index series of one write differ in length"),
        CodeInfo::new("write.index_missing", "data channels were written without their index timestamps"),
        CodeInfo::new("write.not_monotonic", "index timestamps do not strictly increase"),
        CodeInfo::new("write.before_start", "a timestamp precedes the writer's start"),
        CodeInfo::new("write.overlap", "a write reaches into data already stored"),
        CodeInfo::new("write.overlaps_committed", "the writer starts inside stored data"),
        CodeInfo::new("write.channel_busy", "an open writer holds the channel"),
        CodeInfo::new("write.too_large", "a single write is too large; split it"),
        CodeInfo::new("write.invalid_config", "the writer's channel list is empty or names a channel twice"),
    ];
}

/// What a call into the storage engine's write and recovery paths can fail with: the engine
/// itself ([`StorageError`]), a refused write ([`WriteError`]) or a malformed series. The umbrella error converts
/// it into the matching variant, so callers see the same codes as before.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub(crate) enum StorageFailure {
    /// The engine failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The write was refused; nothing of it was written.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// A series of the write was malformed; nothing of it was written.
    #[error(transparent)]
    Series(#[from] crate::telem::SeriesError),
}
