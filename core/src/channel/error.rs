//! Channel registry errors.

use serde::{Deserialize, Serialize};

use super::ChannelKey;
use crate::codes::CodeInfo;
use crate::storage_error::StorageError;
use crate::telem::DataType;

/// Why a channel operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "v", rename_all = "snake_case")]
pub enum ChannelError {
    /// No channel has this key.
    #[error("no channel has key {key}; list channels to find the right key")]
    KeyNotFound {
        /// The key asked for.
        key: ChannelKey,
    },
    /// No channel has this name.
    #[error("no channel is named {name:?}; create it first or check the spelling")]
    NameNotFound {
        /// The name asked for.
        name: String,
    },
    /// The name is already used by another channel.
    #[error("a channel named {name:?} already exists (key {existing}); pick another name or retrieve the existing channel")]
    NameTaken {
        /// The name.
        name: String,
        /// The channel that has it.
        existing: ChannelKey,
    },
    /// The name is not acceptable.
    #[error("invalid channel name {name:?}: {reason}")]
    InvalidName {
        /// The name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The definition contradicts itself or the rules for its kind.
    #[error("invalid definition for channel {name:?}: {reason}")]
    InvalidDefinition {
        /// The channel name.
        name: String,
        /// What to change.
        reason: String,
    },
    /// An index channel must hold timestamps.
    #[error("index channel {name:?} must have data type timestamp, not {data_type}")]
    IndexNotTimestamp {
        /// The channel name.
        name: String,
        /// The type given.
        data_type: DataType,
    },
    /// A data channel names a channel that is not an index.
    #[error("channel {name:?} names {index:?} as its index, but that channel is not an index channel")]
    NotAnIndex {
        /// The data channel.
        name: String,
        /// The channel named as index.
        index: String,
    },
    /// An index channel still has data channels bound to it.
    #[error("index channel {name:?} cannot be deleted: data channels {dependents:?} still use it; delete them first")]
    IndexInUse {
        /// The index channel.
        name: String,
        /// Names of the channels bound to it.
        dependents: Vec<String>,
    },
    /// An open writer holds the channel.
    #[error("channel {name:?} is being written by an open writer; close the writer first")]
    Busy {
        /// The channel.
        name: String,
    },
    /// The channel is stored on another node of the cluster (its leaseholder, node
    /// `key >> 24`): this engine holds only its definition.
    #[error(
        "channel {name:?} (key {key}) is stored on cluster node {}; read, write, rename or delete it through a node of the cluster (a node forwards to the channel's leaseholder), not this engine directly",
        key >> 24
    )]
    Elsewhere {
        /// The channel.
        name: String,
        /// Its key.
        key: ChannelKey,
    },
    /// The metadata catalog failed or is closed; converts to the umbrella error of the
    /// storage error's code (`engine.metadata`, `engine.closed`).
    #[error(transparent)]
    #[serde(skip)]
    Storage(#[from] StorageError),
}

impl ChannelError {
    /// Stable code, see [`crate::Error::code`].
    pub fn code(&self) -> &'static str {
        match self {
            ChannelError::KeyNotFound { .. } | ChannelError::NameNotFound { .. } => "channel.not_found",
            ChannelError::NameTaken { .. } => "channel.name_taken",
            ChannelError::InvalidName { .. } | ChannelError::InvalidDefinition { .. } => "channel.invalid",
            ChannelError::IndexNotTimestamp { .. } | ChannelError::NotAnIndex { .. } => "channel.invalid_index",
            ChannelError::IndexInUse { .. } => "channel.index_in_use",
            ChannelError::Busy { .. } => "channel.busy",
            ChannelError::Elsewhere { .. } => "channel.elsewhere",
            ChannelError::Storage(e) => e.code(),
        }
    }

    /// Every code of this enum.
    pub const CODES: &[CodeInfo] = &[
        CodeInfo::new("channel.not_found", "no channel has this key or name"),
        CodeInfo::new("channel.name_taken", "another channel already has this name"),
        CodeInfo::new("channel.invalid", "the channel name or definition is not acceptable"),
        CodeInfo::new("channel.invalid_index", "an index is not a timestamp channel, or a data channel names a non-index as its index"),
        CodeInfo::new("channel.index_in_use", "an index channel still has data channels bound to it"),
        CodeInfo::new("channel.busy", "an open writer holds the channel"),
        CodeInfo::new("channel.elsewhere", "the channel is stored on another node of the cluster; go through a node"),
    ];
}
