//! Errors on the wire: `{code, message, detail}`, rebuilt into the same [`Error`] variant
//! on the other side.
//!
//! `code` is [`Error::code`]; `message` is the `Display` text; `detail` is the error's serde
//! form (`{"e": <subsystem>, "v": <variant>, ...fields}`, see `docs/protocol.md` §3), so the
//! receiver can rebuild the typed error (a caller matching
//! `Error::Write(WriteError::TypeMismatch { .. })` sees the same thing on both backends).
//! A code this build does not know, or a detail that does not rebuild a variant with that
//! code, becomes [`Error::Remote`] with the message intact.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, code_info};

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
        WireError { code: e.code().to_string(), message: e.to_string(), detail: serde_json::to_value(e).unwrap_or(Value::Null) }
    }
}

impl From<WireError> for Error {
    fn from(w: WireError) -> Error {
        match serde_json::from_value::<Error>(w.detail) {
            // A variant rebuilt from fields that do not match its code is not faithful.
            Ok(e) if e.code() == w.code => e,
            _ => Error::Remote { code: code_info(&w.code).map_or("remote", |c| c.code), message: w.message },
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::channel::ChannelError;
    use crate::control::ControlError;
    use crate::protocol::NetError;
    use crate::ranger::RangerError;
    use crate::relay::StreamError;
    use crate::storage::{StorageError, WriteError};
    use crate::telem::{DataType, SeriesError, TimeRange, TimeStamp};

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
        round(ChannelError::InvalidName { name: "x".into(), reason: "names cannot be empty".into() }.into());
        round(ChannelError::IndexNotTimestamp { name: "t".into(), data_type: DataType::F32 }.into());
        round(WriteError::TypeMismatch { channel: "p".into(), expected: DataType::F64, actual: DataType::I32 }.into());
        round(WriteError::NotMonotonic { index: "t".into(), position: 3, previous: TimeStamp(5), value: TimeStamp(4) }.into());
        round(WriteError::OverlapsCommitted { channel: "t".into(), start: TimeStamp(1), existing: TimeRange::from_nanos(0, 9) }.into());
        round(ControlError::Unauthorized { channels: vec!["valve".into()] }.into());
        round(StreamError::Lagged { dropped: 12 }.into());
        round(StreamError::Closed.into());
        round(RangerError::Invalid { name: "".into(), reason: "names cannot be empty".into() }.into());
        round(SeriesError::BadOffsets { reason: "offsets decrease".into() }.into());
        round(Error::Closed { what: "the writer".into() });
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
        assert!(matches!(e, Error::Remote { .. }));
        // A detail of another variant than the code says is not trusted either.
        let detail = serde_json::to_value(Error::from(StreamError::Closed)).unwrap();
        let e: Error = WireError { code: "stream.lagged".into(), message: "m".into(), detail }.into();
        assert!(matches!(e, Error::Remote { code: "stream.lagged", .. }));
    }

    #[test]
    fn detail_is_flat_and_tagged() {
        let e: Error = WriteError::TypeMismatch { channel: "p".into(), expected: DataType::F64, actual: DataType::I32 }.into();
        let w = WireError::from(&e);
        assert_eq!(w.detail, json!({"e": "write", "v": "type_mismatch", "channel": "p", "expected": "f64", "actual": "i32"}));
        let e: Error = NetError::Busy { limit: 3 }.into();
        assert_eq!(WireError::from(&e).detail, json!({"e": "net", "kind": "busy", "limit": 3}));
    }
}
