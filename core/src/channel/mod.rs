//! Channels: named, typed streams of samples, and their registry.
//!
//! ## Kinds
//! - **Index** channels hold `timestamp` samples that strictly increase. They give time to
//!   the data channels bound to them.
//! - **Data** channels are bound to one index channel; sample `i` of a data series written
//!   with index series `s` carries the timestamp `s[i]`.
//! - **Virtual** channels are streamed live and never stored.
//!
//! ## Keys and names
//! Keys are `u32`, assigned in increasing order and never reused, so data of a deleted
//! channel can never reappear under a new one. Names are unique.
//!
//! ## Persistence
//! Channel definitions live in the metadata catalog (an embedded redb database); every
//! create, rename and delete is a durable transaction.

mod error;
mod reference;
mod registry;

pub use error::ChannelError;
pub use reference::ChannelRef;
pub use registry::Channels;

use serde::{Deserialize, Serialize};

use crate::telem::DataType;

/// A channel's key (defined in [`crate::telem`], which frames are keyed by).
pub use crate::telem::ChannelKey;

/// What a channel is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChannelKind {
    /// Timestamps, strictly increasing; gives time to data channels.
    Index,
    /// Samples aligned one to one with an index channel's samples.
    Data {
        /// The index channel's key.
        index: ChannelKey,
    },
    /// Streamed live, never stored.
    Virtual,
}

/// How writers of equal authority share a channel (see the control layer).
///
/// Every new channel is `Exclusive` unless created with `Shared`: virtual command channels
/// included, so two sequences at equal authority can never both command the same valve
/// (the first to acquire keeps it; the other is told it is not authorized). `Shared` is
/// the opt-in for channels that several equal writers feed on purpose (a merged event log,
/// redundant sensors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Concurrency {
    /// One holder at a time; among equals, the first to acquire keeps control.
    #[default]
    Exclusive,
    /// Every writer at the top authority may write.
    Shared,
}

impl Concurrency {
    /// The name used in definitions, the protocol and the SDKs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Concurrency::Exclusive => "exclusive",
            Concurrency::Shared => "shared",
        }
    }
}

impl std::str::FromStr for Concurrency {
    type Err = String;

    /// Parse a name; the error says which names are accepted (the SDKs pass it on).
    fn from_str(s: &str) -> Result<Concurrency, String> {
        [Concurrency::Exclusive, Concurrency::Shared]
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("concurrency {s:?} is not \"exclusive\" or \"shared\""))
    }
}

/// How compaction stores a channel's samples (docs/architecture.md §9; the codecs were
/// chosen by `telemetron bench codecs`, docs/benchmarks.md). Fresh data is always written
/// raw; the codec applies when compaction merges a channel's small records.
///
/// Only stored data channels of fixed-size types take a codec: index channels stay raw (a
/// time lookup binary-searches their mapped bytes), virtual channels are never stored.
///
/// # Examples
///
/// ```
/// use telemetron::channel::Compression;
///
/// assert_eq!("pcodec".parse::<Compression>().unwrap(), Compression::Pcodec);
/// assert!("gzip".parse::<Compression>().unwrap_err().contains("pcodec"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum Compression {
    /// Whatever the engine's `StorageOptions::compress` says: Pcodec for 16-, 32- and
    /// 64-bit numeric data channels when it is on, raw otherwise.
    #[default]
    Default,
    /// Never compressed, whatever the engine's setting (e.g. a channel read at memory speed).
    Off,
    /// Pcodec: 16-, 32- and 64-bit integers and floats. The smallest on every numeric
    /// signal measured, decoding at about 1.5 GB/s per core.
    Pcodec,
    /// Byte shuffle, then Zstandard (level 1): any fixed-size type (8-bit values, booleans,
    /// UUIDs); within 5 % of Pcodec on filtered floats.
    Zstd,
    /// Byte shuffle, then LZ4: any fixed-size type; the fastest to decode, the least gain.
    Lz4,
}

impl Compression {
    /// Every choice, in the order help texts list them.
    pub const ALL: [Compression; 5] = [Compression::Default, Compression::Off, Compression::Pcodec, Compression::Zstd, Compression::Lz4];

    /// The name used in definitions, the protocol and the SDKs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Compression::Default => "default",
            Compression::Off => "off",
            Compression::Pcodec => "pcodec",
            Compression::Zstd => "zstd",
            Compression::Lz4 => "lz4",
        }
    }
}

impl std::fmt::Display for Compression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Compression {
    type Error = String;

    /// The wire's and the catalog's path: the same message as [`str::parse`].
    fn try_from(s: String) -> Result<Compression, String> {
        s.parse()
    }
}

impl std::str::FromStr for Compression {
    type Err = String;

    /// Parse a name; the error lists the accepted names (the SDKs pass it on).
    fn from_str(s: &str) -> Result<Compression, String> {
        Compression::ALL.into_iter().find(|c| c.as_str() == s).ok_or_else(|| {
            let names: Vec<String> = Compression::ALL.iter().map(|c| format!("{:?}", c.as_str())).collect();
            format!("compression {s:?} is not one of {}", names.join(", "))
        })
    }
}

/// A change to the channels, as published on the engine's change channel
/// (`telemetron_changes`, see [`crate::Change`]). Engine-internal channels are not reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op")]
pub enum ChannelChange {
    /// Channels were created (in one transaction).
    #[serde(rename = "channel.create")]
    Created {
        /// Their definitions.
        channels: Vec<Channel>,
    },
    /// A channel was renamed.
    #[serde(rename = "channel.rename")]
    Renamed {
        /// Its definition under the new name.
        channels: Vec<Channel>,
    },
    /// A channel's definition changed other than by name (today: its compression).
    #[serde(rename = "channel.update")]
    Updated {
        /// Its new definition.
        channels: Vec<Channel>,
    },
    /// Channels were deleted (with their data).
    #[serde(rename = "channel.delete")]
    Deleted {
        /// Their keys.
        keys: Vec<ChannelKey>,
    },
}

impl ChannelChange {
    fn is_empty(&self) -> bool {
        match self {
            ChannelChange::Created { channels } | ChannelChange::Renamed { channels } | ChannelChange::Updated { channels } => {
                channels.is_empty()
            }
            ChannelChange::Deleted { keys } => keys.is_empty(),
        }
    }
}

/// A channel definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// Unique key.
    pub key: ChannelKey,
    /// Unique name.
    pub name: String,
    /// Sample type (`timestamp` for index channels).
    pub data_type: DataType,
    /// Index, data or virtual.
    #[serde(flatten)]
    pub kind: ChannelKind,
    /// Equal-authority behaviour.
    #[serde(default)]
    pub concurrency: Concurrency,
    /// Managed by the engine (e.g. the control-state channel): hidden from `list` and
    /// `search`, still retrievable by key or name.
    #[serde(default)]
    pub internal: bool,
    /// How compaction stores the samples (catalogs written before this field read as
    /// `Default`).
    #[serde(default)]
    pub compression: Compression,
}

impl Channel {
    /// True for index channels.
    pub fn is_index(&self) -> bool {
        matches!(self.kind, ChannelKind::Index)
    }

    /// True for virtual channels.
    pub fn is_virtual(&self) -> bool {
        matches!(self.kind, ChannelKind::Virtual)
    }

    /// The index channel that gives this channel time: itself for an index, its index for a
    /// data channel, `None` for a virtual channel.
    pub fn index_key(&self) -> Option<ChannelKey> {
        match self.kind {
            ChannelKind::Index => Some(self.key),
            ChannelKind::Data { index } => Some(index),
            ChannelKind::Virtual => None,
        }
    }
}

/// How a new data channel names its index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum IndexRef {
    /// An existing channel's key.
    Key(ChannelKey),
    /// A channel's name: an existing channel, or an index created in the same call.
    Name(String),
}

/// A channel to create.
///
/// # Examples
///
/// ```
/// use telemetron::channel::NewChannel;
/// use telemetron::telem::DataType;
///
/// let batch = vec![
///     NewChannel::index("stand_time"),
///     NewChannel::data("pressure_1", DataType::F64, "stand_time"),
///     NewChannel::virtual_("valve_cmd", DataType::U8),
/// ];
/// assert_eq!(batch.len(), 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewChannel {
    /// Unique name.
    pub name: String,
    /// Sample type.
    pub data_type: DataType,
    /// `true` for an index channel.
    #[serde(default)]
    pub is_index: bool,
    /// The index of a data channel.
    #[serde(default)]
    pub index: Option<IndexRef>,
    /// `true` for a virtual channel.
    #[serde(default, rename = "virtual")]
    pub is_virtual: bool,
    /// Equal-authority behaviour.
    #[serde(default)]
    pub concurrency: Concurrency,
    /// Engine-managed (hidden from `list` and `search`).
    #[serde(default)]
    pub internal: bool,
    /// How compaction stores the samples.
    #[serde(default)]
    pub compression: Compression,
}

impl NewChannel {
    /// An index channel (`timestamp`).
    pub fn index(name: impl Into<String>) -> NewChannel {
        NewChannel {
            name: name.into(),
            data_type: DataType::Timestamp,
            is_index: true,
            index: None,
            is_virtual: false,
            concurrency: Concurrency::Exclusive,
            internal: false,
            compression: Compression::Default,
        }
    }

    /// A data channel bound to the index named `index`.
    pub fn data(name: impl Into<String>, data_type: DataType, index: impl Into<String>) -> NewChannel {
        NewChannel {
            name: name.into(),
            data_type,
            is_index: false,
            index: Some(IndexRef::Name(index.into())),
            is_virtual: false,
            concurrency: Concurrency::Exclusive,
            internal: false,
            compression: Compression::Default,
        }
    }

    /// A data channel bound to the index with key `index`.
    pub fn data_with_key(name: impl Into<String>, data_type: DataType, index: ChannelKey) -> NewChannel {
        NewChannel { index: Some(IndexRef::Key(index)), ..NewChannel::data(name, data_type, "") }
    }

    /// A virtual (live-only) channel, e.g. a command. Exclusive, like every channel (see
    /// [`Concurrency`]).
    pub fn virtual_(name: impl Into<String>, data_type: DataType) -> NewChannel {
        NewChannel {
            name: name.into(),
            data_type,
            is_index: false,
            index: None,
            is_virtual: true,
            concurrency: Concurrency::Exclusive,
            internal: false,
            compression: Compression::Default,
        }
    }

    /// Set the equal-authority behaviour.
    #[must_use]
    pub fn with_concurrency(mut self, c: Concurrency) -> NewChannel {
        self.concurrency = c;
        self
    }

    /// Set how compaction stores the samples.
    #[must_use]
    pub fn with_compression(mut self, c: Compression) -> NewChannel {
        self.compression = c;
        self
    }
}
