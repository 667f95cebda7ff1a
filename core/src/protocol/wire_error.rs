//! Errors on the wire: `{code, message, detail}`, rebuilt into the same [`Error`] variant
//! on the other side.
//!
//! `code` is [`Error::code`]; `message` is the `Display` text; `detail` holds the
//! variant's fields so the receiver can rebuild the typed error (a caller matching
//! `Error::Write(WriteError::TypeMismatch { .. })` sees the same thing on both backends).
//! A code this build does not know becomes [`Error::Remote`] with the message intact.

use std::collections::HashSet;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::NetError;
use crate::channel::ChannelError;
use crate::control::ControlError;
use crate::error::Error;
use crate::ranger::RangeError;
use crate::relay::StreamError;
use crate::storage::{StorageError, WriteError};
use crate::telem::{DataType, SeriesError, TimeRange, TimeStamp};

/// An error as it crosses the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    /// Stable code.
    pub code: String,
    /// Human-readable message (what happened and what to do).
    pub message: String,
    /// The variant's fields.
    #[serde(default)]
    pub detail: Value,
}

impl From<&Error> for WireError {
    fn from(e: &Error) -> WireError {
        WireError { code: e.code().to_string(), message: e.to_string(), detail: detail(e) }
    }
}

impl From<WireError> for Error {
    fn from(w: WireError) -> Error {
        rebuild(&w).unwrap_or_else(|| Error::Remote { code: known_code(&w.code).unwrap_or("remote"), message: w.message })
    }
}

fn detail(e: &Error) -> Value {
    match e {
        Error::Channel(c) => channel_detail(c),
        Error::Range(RangeError::NotFound { key }) => json!({ "v": "not_found", "key": key }),
        Error::Range(RangeError::Invalid { name, reason }) => json!({ "v": "invalid", "name": name, "reason": reason }),
        Error::Storage(s) => match s {
            StorageError::Io { path, reason, .. } => json!({ "v": "io", "path": path, "reason": reason }),
            StorageError::Corrupt { segment, offset, reason } => {
                json!({ "v": "corrupt", "segment": segment, "offset": offset, "reason": reason })
            }
            StorageError::SegmentPoisoned { segment } => json!({ "v": "poisoned", "segment": segment }),
        },
        Error::Write(w) => write_detail(w),
        Error::Control(ControlError::Unauthorized { channels }) => json!({ "channels": channels }),
        Error::Control(ControlError::UnknownChannel { channel }) => json!({ "channel": channel }),
        Error::Stream(StreamError::Lagged { dropped } | StreamError::Disconnected { dropped }) => json!({ "dropped": dropped }),
        Error::Series(s) => series_detail(s),
        Error::AlreadyOpen { path, holder } => json!({ "path": path, "holder": holder }),
        Error::NotADataDirectory { path, found } => json!({ "path": path, "found": found }),
        Error::UnsupportedFormat { path, found, supported } => json!({ "path": path, "found": found, "supported": supported }),
        Error::Metadata { reason } => json!({ "reason": reason }),
        Error::Closed { what } => json!({ "what": what }),
        Error::InvalidArgument { reason } => json!({ "reason": reason }),
        Error::Net(n) => serde_json::to_value(n).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

fn channel_detail(c: &ChannelError) -> Value {
    match c {
        ChannelError::KeyNotFound { key } => json!({ "v": "key_not_found", "key": key }),
        ChannelError::NameNotFound { name } => json!({ "v": "name_not_found", "name": name }),
        ChannelError::NameTaken { name, existing } => json!({ "v": "name_taken", "name": name, "existing": existing }),
        ChannelError::InvalidName { name, reason } => json!({ "v": "invalid_name", "name": name, "reason": reason }),
        ChannelError::InvalidDefinition { name, reason } => json!({ "v": "invalid_definition", "name": name, "reason": reason }),
        ChannelError::IndexNotTimestamp { name, data_type } => {
            json!({ "v": "index_not_timestamp", "name": name, "data_type": data_type })
        }
        ChannelError::NotAnIndex { name, index } => json!({ "v": "not_an_index", "name": name, "index": index }),
        ChannelError::IndexInUse { name, dependents } => json!({ "v": "index_in_use", "name": name, "dependents": dependents }),
        ChannelError::Busy { name } => json!({ "v": "busy", "name": name }),
    }
}

fn write_detail(w: &WriteError) -> Value {
    match w {
        WriteError::NotInWriter { channel } => json!({ "channel": channel }),
        WriteError::TypeMismatch { channel, expected, actual } => json!({ "channel": channel, "expected": expected, "actual": actual }),
        WriteError::LengthMismatch { channel, index, expected, actual } => {
            json!({ "channel": channel, "index": index, "expected": expected, "actual": actual })
        }
        WriteError::IndexMissing { index, data } => json!({ "index": index, "data": data }),
        WriteError::NotMonotonic { index, position, previous, value } => {
            json!({ "index": index, "position": position, "previous": previous, "value": value })
        }
        WriteError::BeforeStart { index, start, value } => json!({ "index": index, "start": start, "value": value }),
        WriteError::Overlap { index, value, next_start } => json!({ "index": index, "value": value, "next_start": next_start }),
        WriteError::OverlapsCommitted { channel, start, existing } => json!({ "channel": channel, "start": start, "existing": existing }),
        WriteError::ChannelBusy { channel } => json!({ "channel": channel }),
        WriteError::TooLarge { samples, limit } => json!({ "samples": samples, "limit": limit }),
        WriteError::InvalidConfig { reason } => json!({ "reason": reason }),
    }
}

fn series_detail(s: &SeriesError) -> Value {
    match s {
        SeriesError::RaggedBuffer { len, data_type, density } => {
            json!({ "v": "ragged", "len": len, "data_type": data_type, "density": density })
        }
        SeriesError::TypeMismatch { actual, requested } => json!({ "v": "type_mismatch", "actual": actual, "requested": requested }),
        SeriesError::BadOffsets { reason } => json!({ "v": "bad_offsets", "reason": reason }),
        SeriesError::InvalidValue { index, data_type, reason } => {
            json!({ "v": "invalid_value", "index": index, "data_type": data_type, "reason": reason })
        }
        SeriesError::OutOfBounds { start, end, len } => json!({ "v": "out_of_bounds", "start": start, "end": end, "len": len }),
    }
}

/// Field access on a detail object; `None` if missing or of another type.
struct D<'a>(&'a Value);

impl D<'_> {
    fn get<T: serde::de::DeserializeOwned>(&self, k: &str) -> Option<T> {
        serde_json::from_value(self.0.get(k)?.clone()).ok()
    }
    fn s(&self, k: &str) -> Option<String> {
        self.get(k)
    }
    fn st(&self, k: &str) -> Option<&'static str> {
        self.0.get(k)?.as_str().map(intern)
    }
    fn u32(&self, k: &str) -> Option<u32> {
        self.get(k)
    }
    fn u64(&self, k: &str) -> Option<u64> {
        self.get(k)
    }
    fn us(&self, k: &str) -> Option<usize> {
        self.get(k)
    }
    fn ts(&self, k: &str) -> Option<TimeStamp> {
        self.get(k)
    }
    fn dt(&self, k: &str) -> Option<DataType> {
        self.get(k)
    }
    fn v(&self) -> Option<&str> {
        self.0.get("v")?.as_str()
    }
}

fn rebuild(w: &WireError) -> Option<Error> {
    let d = D(&w.detail);
    let e: Error = match w.code.as_str() {
        c if c.starts_with("channel.") => Error::Channel(rebuild_channel(&d)?),
        "range.not_found" => RangeError::NotFound { key: d.get("key")? }.into(),
        "range.invalid" => RangeError::Invalid { name: d.s("name")?, reason: d.st("reason")? }.into(),
        "storage.io" => StorageError::Io { path: d.get("path")?, kind: std::io::ErrorKind::Other, reason: d.s("reason")? }.into(),
        "storage.corrupt" => StorageError::Corrupt { segment: d.u64("segment")?, offset: d.u64("offset")?, reason: d.s("reason")? }.into(),
        "storage.segment_failed" => StorageError::SegmentPoisoned { segment: d.u64("segment")? }.into(),
        c if c.starts_with("write.") => Error::Write(rebuild_write(c, &d)?),
        "control.unauthorized" => ControlError::Unauthorized { channels: d.get("channels")? }.into(),
        "control.unknown_channel" => ControlError::UnknownChannel { channel: d.u32("channel")? }.into(),
        "stream.lagged" => StreamError::Lagged { dropped: d.u64("dropped")? }.into(),
        "stream.disconnected" => StreamError::Disconnected { dropped: d.u64("dropped")? }.into(),
        "stream.closed" => StreamError::Closed.into(),
        "series.invalid" => Error::Series(rebuild_series(&d)?),
        "engine.already_open" => Error::AlreadyOpen { path: d.get("path")?, holder: d.get("holder")? },
        "engine.not_a_data_directory" => Error::NotADataDirectory { path: d.get("path")?, found: d.get("found")? },
        "engine.unsupported_format" => {
            Error::UnsupportedFormat { path: d.get("path")?, found: d.u64("found")?, supported: d.u64("supported")? }
        }
        "engine.metadata" => Error::Metadata { reason: d.s("reason")? },
        "engine.closed" => Error::Closed { what: d.st("what")? },
        "invalid_argument" => Error::InvalidArgument { reason: d.s("reason")? },
        c if c.starts_with("net.") || c.starts_with("protocol.") || c.starts_with("auth.") || c.starts_with("server.") => {
            Error::Net(serde_json::from_value::<NetError>(w.detail.clone()).ok()?)
        }
        _ => return None,
    };
    // A variant rebuilt from fields that do not match its code is not faithful.
    (e.code() == w.code).then_some(e)
}

fn rebuild_channel(d: &D<'_>) -> Option<ChannelError> {
    Some(match d.v()? {
        "key_not_found" => ChannelError::KeyNotFound { key: d.u32("key")? },
        "name_not_found" => ChannelError::NameNotFound { name: d.s("name")? },
        "name_taken" => ChannelError::NameTaken { name: d.s("name")?, existing: d.u32("existing")? },
        "invalid_name" => ChannelError::InvalidName { name: d.s("name")?, reason: d.st("reason")? },
        "invalid_definition" => ChannelError::InvalidDefinition { name: d.s("name")?, reason: d.s("reason")? },
        "index_not_timestamp" => ChannelError::IndexNotTimestamp { name: d.s("name")?, data_type: d.dt("data_type")? },
        "not_an_index" => ChannelError::NotAnIndex { name: d.s("name")?, index: d.s("index")? },
        "index_in_use" => ChannelError::IndexInUse { name: d.s("name")?, dependents: d.get("dependents")? },
        "busy" => ChannelError::Busy { name: d.s("name")? },
        _ => return None,
    })
}

fn rebuild_write(code: &str, d: &D<'_>) -> Option<WriteError> {
    Some(match code {
        "write.not_in_writer" => WriteError::NotInWriter { channel: d.u32("channel")? },
        "write.type_mismatch" => {
            WriteError::TypeMismatch { channel: d.s("channel")?, expected: d.dt("expected")?, actual: d.dt("actual")? }
        }
        "write.length_mismatch" => WriteError::LengthMismatch {
            channel: d.s("channel")?,
            index: d.s("index")?,
            expected: d.us("expected")?,
            actual: d.us("actual")?,
        },
        "write.index_missing" => WriteError::IndexMissing { index: d.s("index")?, data: d.get("data")? },
        "write.not_monotonic" => WriteError::NotMonotonic {
            index: d.s("index")?,
            position: d.us("position")?,
            previous: d.ts("previous")?,
            value: d.ts("value")?,
        },
        "write.before_start" => WriteError::BeforeStart { index: d.s("index")?, start: d.ts("start")?, value: d.ts("value")? },
        "write.overlap" => WriteError::Overlap { index: d.s("index")?, value: d.ts("value")?, next_start: d.ts("next_start")? },
        "write.overlaps_committed" => {
            WriteError::OverlapsCommitted { channel: d.s("channel")?, start: d.ts("start")?, existing: d.get::<TimeRange>("existing")? }
        }
        "write.channel_busy" => WriteError::ChannelBusy { channel: d.s("channel")? },
        "write.too_large" => WriteError::TooLarge { samples: d.u64("samples")?, limit: d.u64("limit")? },
        "write.invalid_config" => WriteError::InvalidConfig { reason: d.s("reason")? },
        _ => return None,
    })
}

fn rebuild_series(d: &D<'_>) -> Option<SeriesError> {
    Some(match d.v()? {
        "ragged" => SeriesError::RaggedBuffer { len: d.us("len")?, data_type: d.dt("data_type")?, density: d.us("density")? },
        "type_mismatch" => SeriesError::TypeMismatch { actual: d.dt("actual")?, requested: d.dt("requested")? },
        "bad_offsets" => SeriesError::BadOffsets { reason: d.st("reason")? },
        "invalid_value" => SeriesError::InvalidValue { index: d.us("index")?, data_type: d.dt("data_type")?, reason: d.s("reason")? },
        "out_of_bounds" => SeriesError::OutOfBounds { start: d.us("start")?, end: d.us("end")?, len: d.us("len")? },
        _ => return None,
    })
}

/// Every code this build produces (see [`Error::code`]).
pub const KNOWN_CODES: &[&str] = &[
    "channel.not_found",
    "channel.name_taken",
    "channel.invalid",
    "channel.invalid_index",
    "channel.index_in_use",
    "channel.busy",
    "range.not_found",
    "range.invalid",
    "storage.io",
    "storage.corrupt",
    "storage.segment_failed",
    "write.not_in_writer",
    "write.type_mismatch",
    "write.length_mismatch",
    "write.index_missing",
    "write.not_monotonic",
    "write.before_start",
    "write.overlap",
    "write.overlaps_committed",
    "write.channel_busy",
    "write.too_large",
    "write.invalid_config",
    "control.unauthorized",
    "control.unknown_channel",
    "stream.lagged",
    "stream.disconnected",
    "stream.closed",
    "series.invalid",
    "engine.already_open",
    "engine.not_a_data_directory",
    "engine.unsupported_format",
    "engine.metadata",
    "engine.closed",
    "invalid_argument",
    "net.invalid_url",
    "net.connect",
    "net.connection_lost",
    "net.timeout",
    "protocol.version_mismatch",
    "protocol.violation",
    "protocol.too_large",
    "auth.required",
    "auth.invalid_credentials",
    "net.tls",
    "server.shutdown",
    "server.busy",
    "net.keepalive_timeout",
    "server.internal",
];

/// The static form of a known code.
pub fn known_code(code: &str) -> Option<&'static str> {
    KNOWN_CODES.iter().copied().find(|c| *c == code)
}

/// Most distinct strings kept for `&'static str` fields rebuilt from the wire; past this,
/// the text is replaced (the full message is still in the error's `Display`).
const INTERN_CAP: usize = 512;

/// A `&'static str` for a short reason text received from the peer. Such texts come from
/// a small fixed set in the engine, so this leaks at most [`INTERN_CAP`] strings.
fn intern(s: &str) -> &'static str {
    static SET: OnceLock<parking_lot::Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = SET.get_or_init(Default::default).lock();
    if let Some(v) = set.get(s) {
        return v;
    }
    if set.len() >= INTERN_CAP || s.len() > 256 {
        return "see the node's log";
    }
    let v: &'static str = Box::leak(s.to_string().into_boxed_str());
    set.insert(v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round(e: Error) {
        let w = WireError::from(&e);
        let json = serde_json::to_string(&w).unwrap();
        let back: Error = serde_json::from_str::<WireError>(&json).unwrap().into();
        assert_eq!(back.code(), e.code());
        assert_eq!(back.to_string(), e.to_string());
        assert!(!matches!(back, Error::Remote { .. }), "{e:?} was not rebuilt");
    }

    #[test]
    fn typed_errors_survive_the_wire() {
        round(ChannelError::KeyNotFound { key: 7 }.into());
        round(ChannelError::InvalidName { name: "x".into(), reason: "names cannot be empty" }.into());
        round(ChannelError::IndexNotTimestamp { name: "t".into(), data_type: DataType::F32 }.into());
        round(WriteError::TypeMismatch { channel: "p".into(), expected: DataType::F64, actual: DataType::I32 }.into());
        round(WriteError::NotMonotonic { index: "t".into(), position: 3, previous: TimeStamp(5), value: TimeStamp(4) }.into());
        round(WriteError::OverlapsCommitted { channel: "t".into(), start: TimeStamp(1), existing: TimeRange::from_nanos(0, 9) }.into());
        round(ControlError::Unauthorized { channels: vec!["valve".into()] }.into());
        round(StreamError::Lagged { dropped: 12 }.into());
        round(StreamError::Closed.into());
        round(RangeError::Invalid { name: "".into(), reason: "names cannot be empty" }.into());
        round(SeriesError::BadOffsets { reason: "offsets decrease" }.into());
        round(Error::Closed { what: "the writer" });
        round(Error::InvalidArgument { reason: "no".into() });
        round(NetError::VersionMismatch { node: 1, client: 2 }.into());
        round(NetError::AuthRequired.into());
        round(NetError::Busy { limit: 3 }.into());
        round(StorageError::Corrupt { segment: 1, offset: 2, reason: "crc".into() }.into());
    }

    #[test]
    fn unknown_codes_keep_their_message() {
        let w = WireError { code: "future.thing".into(), message: "do this".into(), detail: Value::Null };
        let e: Error = w.into();
        assert_eq!(e.code(), "remote");
        assert_eq!(e.to_string(), "do this");
        let w = WireError { code: "write.type_mismatch".into(), message: "bad".into(), detail: json!({"channel": 3}) };
        let e: Error = w.into();
        assert_eq!(e.code(), "write.type_mismatch");
    }
}
