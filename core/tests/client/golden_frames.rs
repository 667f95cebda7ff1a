//! Golden frame vectors shared with the browser client (`lib/web/codec.mjs`).
//!
//! This test encodes a set of frames with the Rust codec and checks them against the
//! committed `tests/golden/frames/<name>.bin`, with `manifest.json` describing every
//! sample. `tests/node/web.test.mjs` decodes those files and re-encodes the manifest byte
//! for byte, and writes its own encodings as `web-<name>.bin`, which this test decodes. A
//! change on either side fails one of the two. Regenerate after a deliberate format change
//! with `TELEMETRON_UPDATE_GOLDEN=1 cargo test -p telemetron --test client -- golden_frames` (and
//! `TELEMETRON_UPDATE_GOLDEN=1 node --test tests/node/web.test.mjs`).

use std::path::PathBuf;

use serde_json::{Value, json};
use telemetron::protocol::codec;
use telemetron::telem::{Alignment, Frame, Series, TimeRange};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/golden/frames")
}

/// `(name, frame, manifest entry)`: the frame and what a decoder must find in it.
fn vectors() -> Vec<(&'static str, Frame, Value)> {
    let tr = TimeRange::from_nanos(1_700_000_000_000_000_000, 1_700_000_000_000_000_003);
    let al = Alignment::new(3, 7);
    let stamp = |s: Series| s.with_time_range(tr).with_alignment(al);
    let meta = json!({"timeRange": {"start": tr.start.0.to_string(), "end": tr.end.0.to_string()}, "alignment": al.0.to_string()});
    let entry = |key: u32, dt: &str, data: Value| {
        let mut e = json!({"key": key, "dataType": dt, "data": data});
        e.as_object_mut().expect("object").extend(meta.as_object().expect("object").clone());
        e
    };
    let numbers = Frame::new()
        .with(1, stamp(Series::timestamps(vec![1_700_000_000_000_000_000, 1_700_000_000_000_000_001, 1_700_000_000_000_000_002])))
        .with(2, stamp(Series::from_vec(vec![1.5f64, -2.25, f64::MAX])))
        .with(3, stamp(Series::from_vec(vec![0.5f32, -1.0, 3.0])))
        .with(4, stamp(Series::from_vec(vec![i64::MIN, -1, i64::MAX])))
        .with(5, stamp(Series::from_vec(vec![0u64, 1, u64::MAX])))
        .with(6, stamp(Series::from_vec(vec![-128i8, 0, 127])))
        .with(7, stamp(Series::from_vec(vec![0u16, 513, u16::MAX])))
        .with(8, stamp(Series::from_vec(vec![i32::MIN, 7, i32::MAX])))
        .with(9, stamp(Series::from_vec(vec![0u32, 9, u32::MAX])))
        .with(10, stamp(Series::from_vec(vec![0i16, -300, 300])))
        .with(11, stamp(Series::from_vec(vec![0u8, 200, 255])))
        .with(12, stamp(Series::bools(&[true, false, true])));
    let numbers_m = json!([
        entry(1, "timestamp", json!(["1700000000000000000", "1700000000000000001", "1700000000000000002"])),
        entry(2, "f64", json!([1.5, -2.25, f64::MAX])),
        entry(3, "f32", json!([0.5, -1.0, 3.0])),
        entry(4, "i64", json!([i64::MIN.to_string(), "-1", i64::MAX.to_string()])),
        entry(5, "u64", json!(["0", "1", u64::MAX.to_string()])),
        entry(6, "i8", json!([-128, 0, 127])),
        entry(7, "u16", json!([0, 513, 65535])),
        entry(8, "i32", json!([i32::MIN, 7, i32::MAX])),
        entry(9, "u32", json!([0, 9, u32::MAX])),
        entry(10, "i16", json!([0, -300, 300])),
        entry(11, "u8", json!([0, 200, 255])),
        entry(12, "bool", json!([1, 0, 1])),
    ]);
    let u = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_0011_2233_4455_6677);
    let variable = Frame::new()
        .with(20, stamp(Series::strings(&["valve open", "", "ünïcödé ✓"])))
        .with(21, stamp(Series::json(&[r#"{"a":1}"#, "[1,2,3]", r#""text""#]).expect("valid json")))
        .with(22, stamp(Series::byte_values(&[vec![0u8, 1, 2], vec![], vec![255u8; 9]])))
        .with(23, stamp(Series::uuids(&[u, uuid::Uuid::nil(), u])));
    let variable_m = json!([
        entry(20, "string", json!(["valve open", "", "ünïcödé ✓"])),
        entry(21, "json", json!([{"a": 1}, [1, 2, 3], "text"])),
        entry(22, "bytes", json!([[0, 1, 2], [], [255, 255, 255, 255, 255, 255, 255, 255, 255]])),
        entry(23, "uuid", json!([u.to_string(), uuid::Uuid::nil().to_string(), u.to_string()])),
    ]);
    let empty = Frame::new().with(30, Series::from_vec(Vec::<f64>::new())).with(31, Series::strings::<&str>(&[]));
    let zero = json!({"timeRange": {"start": "0", "end": "0"}, "alignment": "0"});
    let mut e30 = json!({"key": 30, "dataType": "f64", "data": []});
    let mut e31 = json!({"key": 31, "dataType": "string", "data": []});
    for e in [&mut e30, &mut e31] {
        e.as_object_mut().expect("object").extend(zero.as_object().expect("object").clone());
    }
    vec![
        ("numbers", numbers, numbers_m),
        ("variable", variable, variable_m),
        ("empty", empty, json!([e30, e31])),
        ("none", Frame::new(), json!([])),
    ]
}

#[test]
fn golden_frames_match_the_rust_codec() {
    let update = std::env::var_os("TELEMETRON_UPDATE_GOLDEN").is_some();
    let mut manifest = Vec::new();
    for (name, frame, expect) in vectors() {
        let bytes = codec::encode(&frame);
        let path = dir().join(format!("{name}.bin"));
        if update {
            std::fs::create_dir_all(dir()).expect("mkdir");
            std::fs::write(&path, &bytes).expect("write");
        }
        let committed =
            std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; regenerate with TELEMETRON_UPDATE_GOLDEN=1", path.display()));
        assert_eq!(committed, bytes, "{name}: the Rust codec no longer writes the committed vector");
        assert_eq!(codec::decode(bytes::Bytes::from(committed)).expect("decodes"), frame, "{name}");
        manifest.push(json!({"name": name, "series": expect}));
    }
    let text = serde_json::to_string_pretty(&Value::Array(manifest)).expect("json") + "\n";
    let path = dir().join("manifest.json");
    if update {
        std::fs::write(&path, &text).expect("write");
    }
    assert_eq!(
        std::fs::read_to_string(&path).expect("manifest"),
        text,
        "manifest.json is stale; regenerate with TELEMETRON_UPDATE_GOLDEN=1"
    );
}

#[test]
fn frames_written_by_the_web_codec_decode_in_rust() {
    for (name, frame, _) in vectors() {
        let path = dir().join(format!("web-{name}.bin"));
        let bytes = std::fs::read(&path).unwrap_or_else(|e| {
            panic!("{}: {e}; write it with TELEMETRON_UPDATE_GOLDEN=1 node --test tests/node/web.test.mjs", path.display())
        });
        assert_eq!(codec::decode(bytes::Bytes::from(bytes)).expect("the web codec's frame decodes"), frame, "web-{name}");
    }
}
