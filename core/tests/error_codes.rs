//! The one list of error codes (`telemetron::error::codes()`): every variant of every error
//! enum has a code in it, every entry is produced by some variant, every variant survives
//! the wire, and the SDKs' generated code tables match it.
//!
//! The generated files are `bindings-python/python/telemetron/_codes.py` and
//! `lib/codes.js`. After adding a code, run
//! `TELEMETRON_UPDATE_CODES=1 cargo test -p telemetron --test error_codes` to rewrite them,
//! then give the new code a class in both SDKs (their tests fail until it has one).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use telemetron::Error;
use telemetron::channel::ChannelError;
use telemetron::control::ControlError;
use telemetron::error::{CodeInfo, FlowFailure, codes};
use telemetron::protocol::{NetError, WireError};
use telemetron::ranger::RangerError;
use telemetron::relay::StreamError;
use telemetron::storage::{StorageError, WriteError};
use telemetron::telem::{DataType, SeriesError, TimeRange, TimeStamp};

/// One instance of every variant, with the code it must have.
fn every_variant() -> Vec<(Error, &'static str)> {
    let p = PathBuf::from("/x");
    let s = || "r".to_string();
    vec![
        (ChannelError::KeyNotFound { key: 1 }.into(), "channel.not_found"),
        (ChannelError::NameNotFound { name: "a".into() }.into(), "channel.not_found"),
        (ChannelError::NameTaken { name: "a".into(), existing: 1 }.into(), "channel.name_taken"),
        (ChannelError::InvalidName { name: "".into(), reason: s() }.into(), "channel.invalid"),
        (ChannelError::InvalidDefinition { name: "a".into(), reason: s() }.into(), "channel.invalid"),
        (ChannelError::IndexNotTimestamp { name: "a".into(), data_type: DataType::F64 }.into(), "channel.invalid_index"),
        (ChannelError::NotAnIndex { name: "a".into(), index: "b".into() }.into(), "channel.invalid_index"),
        (ChannelError::IndexInUse { name: "a".into(), dependents: vec!["d".into()] }.into(), "channel.index_in_use"),
        (ChannelError::Busy { name: "a".into() }.into(), "channel.busy"),
        (ChannelError::Elsewhere { name: "a".into(), key: 2 << 24 | 1 }.into(), "channel.elsewhere"),
        (RangerError::NotFound { key: uuid::Uuid::nil() }.into(), "range.not_found"),
        (RangerError::Elsewhere { key: uuid::Uuid::nil(), node: 2 }.into(), "range.elsewhere"),
        (RangerError::Invalid { name: "a".into(), reason: s() }.into(), "range.invalid"),
        (StorageError::Io { path: p.clone(), kind: std::io::ErrorKind::Other, reason: s() }.into(), "storage.io"),
        (StorageError::Corrupt { segment: 1, offset: 2, reason: s() }.into(), "storage.corrupt"),
        (StorageError::SegmentFailed { segment: 1 }.into(), "storage.segment_failed"),
        (WriteError::NotInWriter { channel: 1 }.into(), "write.not_in_writer"),
        (WriteError::TypeMismatch { channel: "a".into(), expected: DataType::F64, actual: DataType::F32 }.into(), "write.type_mismatch"),
        (WriteError::LengthMismatch { channel: "a".into(), index: "b".into(), expected: 1, actual: 2 }.into(), "write.length_mismatch"),
        (WriteError::IndexMissing { index: "a".into(), data: vec!["b".into()] }.into(), "write.index_missing"),
        (
            WriteError::NotMonotonic { index: "a".into(), position: 0, previous: TimeStamp(1), value: TimeStamp(0) }.into(),
            "write.not_monotonic",
        ),
        (WriteError::BeforeStart { index: "a".into(), start: TimeStamp(1), value: TimeStamp(0) }.into(), "write.before_start"),
        (WriteError::Overlap { index: "a".into(), value: TimeStamp(1), next_start: TimeStamp(1) }.into(), "write.overlap"),
        (
            WriteError::OverlapsCommitted { channel: "a".into(), start: TimeStamp(1), existing: TimeRange::from_nanos(0, 9) }.into(),
            "write.overlaps_committed",
        ),
        (WriteError::ChannelBusy { channel: "a".into() }.into(), "write.channel_busy"),
        (WriteError::TooLarge { samples: 1, limit: 0 }.into(), "write.too_large"),
        (WriteError::InvalidConfig { reason: s() }.into(), "write.invalid_config"),
        (ControlError::Unauthorized { channels: vec!["valve".into()] }.into(), "control.unauthorized"),
        (ControlError::UnknownChannel { channel: 3 }.into(), "control.unknown_channel"),
        (ControlError::Lost { sequence: "s".into(), channels: vec!["valve".into()] }.into(), "control.lost"),
        (StreamError::Lagged { dropped: 4 }.into(), "stream.lagged"),
        (StreamError::Disconnected { dropped: 5 }.into(), "stream.disconnected"),
        (StreamError::Closed.into(), "stream.closed"),
        (SeriesError::RaggedBuffer { len: 3, data_type: DataType::F64, density: 8 }.into(), "series.invalid"),
        (SeriesError::TypeMismatch { actual: DataType::F64, requested: DataType::I8 }.into(), "series.invalid"),
        (SeriesError::BadOffsets { reason: s() }.into(), "series.invalid"),
        (SeriesError::InvalidValue { index: 1, data_type: DataType::Json, reason: s() }.into(), "series.invalid"),
        (SeriesError::OutOfBounds { start: 1, end: 9, len: 2 }.into(), "series.invalid"),
        (Error::Storage(StorageError::AlreadyOpen { path: p.clone(), holder: Some(7) }), "engine.already_open"),
        (Error::Storage(StorageError::NotADataDirectory { path: p.clone(), found: vec!["f".into()] }), "engine.not_a_data_directory"),
        (Error::Storage(StorageError::UnsupportedFormat { path: p, found: 2, supported: 1 }), "engine.unsupported_format"),
        (StorageError::Metadata { reason: s() }.into(), "engine.metadata"),
        (StorageError::Closed { what: "the engine".into() }.into(), "engine.closed"),
        (StorageError::DataDirectory { reason: s() }.into(), "invalid_argument"),
        (Error::Closed { what: "the writer".into() }, "engine.closed"),
        (Error::InvalidArgument { reason: s() }, "invalid_argument"),
        (NetError::InvalidUrl { url: "u".into(), reason: s() }.into(), "net.invalid_url"),
        (NetError::Connect { url: "u".into(), reason: s() }.into(), "net.connect"),
        (NetError::ConnectionLost { reason: s() }.into(), "net.connection_lost"),
        (NetError::Timeout { what: "w".into(), millis: 1 }.into(), "net.timeout"),
        (NetError::VersionMismatch { node: 1, client: 2 }.into(), "protocol.version_mismatch"),
        (NetError::Protocol { reason: s() }.into(), "protocol.violation"),
        (NetError::TooLarge { size: 2, limit: 1 }.into(), "protocol.too_large"),
        (NetError::AuthRequired.into(), "auth.required"),
        (NetError::InvalidCredentials.into(), "auth.invalid_credentials"),
        (NetError::Forbidden { reason: "r".into() }.into(), "auth.forbidden"),
        (NetError::Tls { reason: s() }.into(), "net.tls"),
        (NetError::ServerShutdown.into(), "server.shutdown"),
        (NetError::Busy { limit: 3 }.into(), "server.busy"),
        (NetError::KeepAliveTimeout { millis: 9 }.into(), "net.keepalive_timeout"),
        (NetError::NodeUnavailable { node: "daq-2".into(), reason: s() }.into(), "node.unavailable"),
        (NetError::Coordination { reason: s() }.into(), "cluster.coordination"),
        (NetError::Server { reason: s() }.into(), "server.internal"),
        (FlowFailure::Config { message: s() }.into(), "flow.config"),
        (FlowFailure::Component { message: s() }.into(), "flow.component"),
        (FlowFailure::Io { message: s() }.into(), "flow.io"),
        (FlowFailure::NotFound { name: s() }.into(), "flow.not_found"),
        (FlowFailure::NameTaken { name: s() }.into(), "flow.name_taken"),
    ]
}

#[test]
fn every_variant_has_its_stable_code_in_the_table() {
    let table: BTreeSet<&str> = codes().map(|c| c.code).collect();
    for (e, code) in every_variant() {
        assert_eq!(e.code(), code, "{e:?}");
        assert!(table.contains(code), "{code} ({e:?}) is not in telemetron::error::codes()");
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn nested_storage_errors_become_the_umbrella_variant_of_their_code() {
    let e: Error = StorageError::Closed { what: "the engine".into() }.into();
    assert!(matches!(e, Error::Closed { ref what } if what == "the engine"), "{e:?}");
    let e: Error = StorageError::DataDirectory { reason: "r".into() }.into();
    assert!(matches!(e, Error::InvalidArgument { .. }), "{e:?}");
    assert_eq!(e.to_string(), "invalid argument: r");
    // Subsystems that read the catalog carry its errors; the umbrella unwraps them.
    let e: Error = ChannelError::Storage(StorageError::Closed { what: "the engine".into() }).into();
    assert!(matches!(e, Error::Closed { .. }), "{e:?}");
    let e: Error = RangerError::Storage(StorageError::Metadata { reason: "r".into() }).into();
    assert!(matches!(e, Error::Storage(StorageError::Metadata { .. })), "{e:?}");
    let e: Error = RangerError::Storage(StorageError::Closed { what: "the engine".into() }).into();
    assert_eq!(e.code(), "engine.closed");
    assert!(matches!(e, Error::Closed { .. }), "{e:?}");
}

#[test]
fn every_table_entry_is_produced_by_a_variant() {
    let produced: BTreeSet<&str> = every_variant().iter().map(|(e, _)| e.code()).collect();
    let mut seen = BTreeSet::new();
    for c in codes() {
        assert!(seen.insert(c.code), "{} is listed twice", c.code);
        assert!(produced.contains(c.code), "{} is in the table but no variant produces it", c.code);
        assert_eq!(Some(c.family), c.code.split('.').next(), "{}", c.code);
        assert!(!c.summary.is_empty() && !c.summary.ends_with('.'), "{}: summary {:?}", c.code, c.summary);
    }
}

#[test]
fn every_variant_survives_the_wire() {
    for (e, code) in every_variant() {
        let json = serde_json::to_string(&WireError::from(&e)).unwrap();
        let back: Error = serde_json::from_str::<WireError>(&json).unwrap().into();
        assert!(!matches!(back, Error::Remote { .. }), "{e:?} was not rebuilt from {json}");
        assert_eq!(back.code(), code);
        assert_eq!(format!("{back:?}"), format!("{e:?}"), "{json}");
        assert_eq!(back.to_string(), e.to_string());
    }
}

#[test]
fn a_code_this_build_does_not_know_stays_a_message() {
    let w = WireError { code: "future.thing".into(), message: "do this".into(), detail: serde_json::Value::Null };
    let e: Error = w.into();
    assert!(matches!(e, Error::Remote { code: "remote", .. }));
    assert_eq!(e.to_string(), "do this");
}

/// `head`, one `row` per code, `tail`.
fn render(head: &str, row: fn(&CodeInfo) -> String, tail: &str) -> String {
    let rows: String = codes().map(row).collect();
    format!("{head}{rows}{tail}")
}

fn render_python() -> String {
    render(
        "\"\"\"Every error code of the Rust core: ``(code, family, summary)``.\n\nGenerated by core/tests/error_codes.rs from ``telemetron::error::codes()``; do not edit.\nRegenerate with ``TELEMETRON_UPDATE_CODES=1 cargo test -p telemetron --test error_codes``.\n\"\"\"\n\nfrom typing import Tuple\n\nCODES: Tuple[Tuple[str, str, str], ...] = (\n",
        |c| format!("    ({:?}, {:?}, {:?}),\n", c.code, c.family, c.summary),
        ")\n",
    )
}

fn render_js() -> String {
    render(
        "'use strict'\n// Every error code of the Rust core: { code, family, summary }.\n// Generated by core/tests/error_codes.rs from `telemetron::error::codes()`; do not edit.\n// Regenerate with `TELEMETRON_UPDATE_CODES=1 cargo test -p telemetron --test error_codes`.\n\nconst CODES = Object.freeze([\n",
        |c| format!("  Object.freeze({{ code: {:?}, family: {:?}, summary: {:?} }}),\n", c.code, c.family, c.summary),
        "])\n\nmodule.exports = { CODES }\n",
    )
}

/// Compare `path` with `want`; rewrite it when `TELEMETRON_UPDATE_CODES=1`.
fn check_generated(path: &Path, want: &str) {
    if std::env::var("TELEMETRON_UPDATE_CODES").as_deref() == Ok("1") {
        std::fs::write(path, want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        have == want,
        "{} is out of date with telemetron::error::codes(); run `TELEMETRON_UPDATE_CODES=1 cargo test -p telemetron --test error_codes` and commit it",
        path.display()
    );
}

#[test]
fn sdk_code_tables_are_generated_from_the_core() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    check_generated(&root.join("bindings-python/python/telemetron/_codes.py"), &render_python());
    check_generated(&root.join("lib/codes.js"), &render_js());
}
