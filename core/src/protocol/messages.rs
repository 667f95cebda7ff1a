//! JSON message shapes: unary request and response bodies, and the control messages of the
//! writer, streamer and iterator WebSocket streams. Frames travel as binary messages in
//! the [`super::codec`] format. See `docs/protocol.md` for the sequences.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::WireError;
use crate::channel::ChannelRef;
use crate::channel::{Channel, ChannelKey, Compression, NewChannel};
use crate::control::{Authority, State};
use crate::framer::{IterSpan, IteratorConfig, WriterConfig};
use crate::ranger::{NewRange, Range};
use crate::relay::StreamerConfig;
use crate::telem::{Reduction, TimeRange, TimeStamp};

/// `GET /api/v1/version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Protocol version the node speaks.
    pub protocol: u16,
    /// Telemetron version of the node.
    pub version: String,
    /// True if requests need credentials.
    pub auth_required: bool,
    /// Largest message or request body the node accepts, in bytes.
    #[serde(default)]
    pub max_message_bytes: u64,
}

/// `POST /api/v1/auth/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// A session token returned by login.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct LoginResponse {
    pub token: String,
}

/// `POST /api/v1/channels/create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct CreateChannels {
    pub channels: Vec<NewChannel>,
    #[serde(default)]
    pub retrieve_if_name_exists: bool,
    /// Cluster mode: the name of the node to store the channels on (default: the index's
    /// node for data channels, else the node's `--place`, else the node asked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
}

/// `POST /api/v1/channels/retrieve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RetrieveChannels {
    pub refs: Vec<ChannelRef>,
}

/// A list of channels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ChannelList {
    pub channels: Vec<Channel>,
}

/// Search by term (channels, ranges).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Search {
    pub term: String,
    #[serde(default)]
    pub overlapping: Option<TimeRange>,
}

/// `POST /api/v1/channels/rename`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RenameChannel {
    pub key: ChannelKey,
    pub name: String,
}

/// `POST /api/v1/channels/compression`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct SetCompression {
    pub key: ChannelKey,
    pub compression: Compression,
}

/// One channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ChannelOne {
    pub channel: Channel,
}

/// Channel keys (delete, control states).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Keys {
    pub keys: Vec<ChannelKey>,
}

/// One channel key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Key {
    pub key: ChannelKey,
}

/// A time range of channels (read, delete).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RangeOfKeys {
    pub range: TimeRange,
    pub keys: Vec<ChannelKey>,
}

/// `frames/read`: a time range of channels, reduced on the node when `reduce` is given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct ReadFrames {
    pub range: TimeRange,
    pub keys: Vec<ChannelKey>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reduce: Option<Reduction>,
}

/// A stored channel's extent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Extent {
    pub range: Option<TimeRange>,
}

/// The end returned by a one-shot write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct End {
    pub end: TimeStamp,
}

/// `POST /api/v1/ranges/create`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct CreateRange {
    pub range: NewRange,
}

/// One range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RangeOne {
    pub range: Range,
}

/// A list of ranges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RangeList {
    pub ranges: Vec<Range>,
}

/// One range key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RangeKey {
    pub key: Uuid,
}

/// Range keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RangeKeys {
    pub keys: Vec<Uuid>,
}

/// `POST /api/v1/ranges/rename`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RenameRange {
    pub key: Uuid,
    pub name: String,
}

/// `POST /api/v1/ranges/labels`: replace a range's labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct RangeLabels {
    pub key: Uuid,
    pub labels: Vec<String>,
}

/// A range's metadata.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Meta {
    pub key: Uuid,
    #[serde(default)]
    pub entries: BTreeMap<String, String>,
}

/// Metadata names to remove.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct MetaNames {
    pub key: Uuid,
    pub names: Vec<String>,
}

/// Control holders.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct States {
    pub states: Vec<State>,
}

/// Nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Empty {}

/// Client → node on `/api/v1/stream/writer`. Frames to write are binary messages; the
/// n-th binary message is write number n (from 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum WriterRequest {
    /// First message.
    Open { config: WriterConfig },
    /// Commit everything written so far.
    Commit { id: u64 },
    /// Change authorities (`set_authority` sends every channel).
    SetAuthorities { id: u64, changes: Vec<(ChannelKey, Authority)> },
    /// Close the writer, committing first if `commit`.
    Close { commit: bool },
    /// Answer `Done { id }` once every frame sent before this request has been applied, after
    /// any `WriteError` or `Dropped` for those frames.
    Flush { id: u64 },
}

/// Node → client on `/api/v1/stream/writer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum WriterResponse {
    /// The writer is open: its channels (indexes included), the channels it controls now,
    /// and how often the client must show it is alive.
    Opened { channels: Vec<Channel>, authorized: Vec<ChannelKey>, keepalive_ms: u64 },
    /// The channels this writer controls changed.
    Authority { authorized: Vec<ChannelKey> },
    /// Write number `seq` was rejected; nothing of it was written.
    WriteError { seq: u64, error: WireError },
    /// Write number `seq` was written without `channels` (control changed in flight).
    Dropped { seq: u64, channels: Vec<ChannelKey> },
    /// Commit `id` succeeded.
    Committed { id: u64, end: TimeStamp },
    /// Request `id` succeeded.
    Done { id: u64 },
    /// Request `id` failed.
    Failed { id: u64, error: WireError },
    /// The writer is closed (`end` after a commit); the node then closes the socket.
    Closed { end: Option<TimeStamp>, error: Option<WireError> },
}

/// Client → node on `/api/v1/stream/streamer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum StreamerRequest {
    Open { config: StreamerConfig },
    Update { id: u64, channels: Vec<ChannelKey> },
    Close,
}

/// Node → client on `/api/v1/stream/streamer`; frames are binary messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum StreamerResponse {
    Opened {
        keepalive_ms: u64,
    },
    /// A non-fatal notice (`stream.lagged`); frames continue.
    Notice {
        error: WireError,
    },
    Updated {
        id: u64,
    },
    Failed {
        id: u64,
        error: WireError,
    },
    /// The stream ended (`error` absent: closed normally, as `stream.closed`).
    Closed {
        error: Option<WireError>,
    },
}

/// Client → node on `/api/v1/stream/iterator`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum IteratorRequest {
    Open { config: IteratorConfig },
    SeekFirst,
    SeekLast,
    SeekGe { t: TimeStamp },
    SeekLe { t: TimeStamp },
    Next { span: IterSpan },
    Prev { span: IterSpan },
    Close,
}

/// Node → client on `/api/v1/stream/iterator`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum IteratorResponse {
    Opened {
        keepalive_ms: u64,
    },
    /// The command's result; a binary frame message follows when `frame` is true. `view`:
    /// the time range the iterator now covers (a point after a seek; absent from nodes
    /// older than this field).
    Result {
        ok: bool,
        frame: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        view: Option<crate::telem::TimeRange>,
    },
    /// The command failed; the iterator stays usable.
    Failed {
        error: WireError,
    },
    Closed {
        error: Option<WireError>,
    },
}
