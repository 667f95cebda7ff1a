//! Shared helpers for the integration tests: engines over temporary directories, channel
//! groups, deterministic sample generators for every data type, and segment-file parsing
//! for the corruption tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use telemetron::channel::{Channel, ChannelKey, NewChannel};
use telemetron::storage::{Durability, StorageOptions};
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};
use telemetron::{Engine, Options};

/// Options for tests: no fsync (the page cache is shared in-process, so reopening sees
/// every commit), and a background reclaimer, compactor and checkpointer that never run on
/// their own, so tests that call `Engine::reclaim` or `Engine::compact` see deterministic
/// results.
pub fn test_options() -> Options {
    Options {
        storage: StorageOptions {
            durability: Durability::None,
            reclaim_interval: Duration::from_secs(3600),
            compaction_interval: None,
            checkpoint_interval: None,
            ..StorageOptions::default()
        },
        ..Options::default()
    }
}

/// Test options with a custom segment size.
pub fn options_with_segment_size(segment_size: u64) -> Options {
    let mut o = test_options();
    o.storage.segment_size = segment_size;
    o
}

/// Open an engine over `dir` with [`test_options`].
pub fn open(dir: &Path) -> Engine {
    Engine::open_with(dir, test_options()).expect("open engine")
}

/// Close and drop an engine, then open the directory again.
pub fn reopen(engine: Engine) -> Engine {
    let dir = engine.dir().to_path_buf();
    engine.close().expect("close engine");
    drop(engine);
    open(&dir)
}

/// Close and drop an engine, then open the directory again with `options`.
pub fn reopen_with(engine: Engine, options: Options) -> Engine {
    let dir = engine.dir().to_path_buf();
    engine.close().expect("close engine");
    drop(engine);
    Engine::open_with(&dir, options).expect("reopen engine")
}

/// An index channel and data channels bound to it.
#[derive(Debug, Clone)]
pub struct Group {
    pub index: Channel,
    pub data: Vec<Channel>,
}

impl Group {
    pub fn idx(&self) -> ChannelKey {
        self.index.key
    }

    pub fn keys(&self) -> Vec<ChannelKey> {
        self.data.iter().map(|c| c.key).collect()
    }

    /// Every key, index first.
    pub fn all_keys(&self) -> Vec<ChannelKey> {
        std::iter::once(self.index.key).chain(self.data.iter().map(|c| c.key)).collect()
    }
}

/// Create `<prefix>_time` and one data channel per type (`<prefix>_<i>_<type>`) in one batch.
pub fn create_group(engine: &Engine, prefix: &str, types: &[DataType]) -> Group {
    let index_name = format!("{prefix}_time");
    let mut batch = vec![NewChannel::index(index_name.clone())];
    for (i, dt) in types.iter().enumerate() {
        batch.push(NewChannel::data(format!("{prefix}_{i}_{dt}"), *dt, index_name.clone()));
    }
    let mut chans = engine.create_channels(batch).expect("create channels");
    let index = chans.remove(0);
    Group { index, data: chans }
}

/// A deterministic sample for `id` of every data type, as a one-sample series when
/// concatenated by [`gen_series`]. Different ids give different values for most types.
pub fn gen_series(dt: DataType, ids: &[u64]) -> Series {
    match dt {
        DataType::U8 => Series::from_vec(ids.iter().map(|&i| (i.wrapping_mul(37) % 256) as u8).collect::<Vec<_>>()),
        DataType::U16 => Series::from_vec(ids.iter().map(|&i| (i.wrapping_mul(7919) % 65536) as u16).collect::<Vec<_>>()),
        DataType::U32 => Series::from_vec(ids.iter().map(|&i| (i as u32).wrapping_mul(2_654_435_761)).collect::<Vec<_>>()),
        DataType::U64 => Series::from_vec(ids.iter().map(|&i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect::<Vec<_>>()),
        DataType::I8 => Series::from_vec(ids.iter().map(|&i| (i % 256) as u8 as i8).collect::<Vec<_>>()),
        DataType::I16 => Series::from_vec(ids.iter().map(|&i| (i as i16).wrapping_mul(-31)).collect::<Vec<_>>()),
        DataType::I32 => Series::from_vec(ids.iter().map(|&i| (i as i32).wrapping_mul(-100_003)).collect::<Vec<_>>()),
        DataType::I64 => Series::from_vec(ids.iter().map(|&i| (i as i64).wrapping_mul(-1_000_000_007)).collect::<Vec<_>>()),
        DataType::F32 => Series::from_vec(ids.iter().map(|&i| i as f32 * 0.5 - 17.25).collect::<Vec<_>>()),
        DataType::F64 => Series::from_vec(ids.iter().map(|&i| i as f64 * 1.125 - 1e9).collect::<Vec<_>>()),
        DataType::Bool => Series::bools(&ids.iter().map(|&i| i % 3 == 0).collect::<Vec<_>>()),
        DataType::Timestamp => Series::timestamps(ids.iter().map(|&i| (i as i64) * 13 - 1_000).collect()),
        DataType::Uuid => {
            Series::uuids(&ids.iter().map(|&i| uuid::Uuid::from_u128(u128::from(i) * 0x0123_4567_89ab_cdef + 1)).collect::<Vec<_>>())
        }
        DataType::String => Series::strings(&ids.iter().map(|&i| gen_string(i)).collect::<Vec<_>>()),
        DataType::Json => {
            Series::json(&ids.iter().map(|&i| format!(r#"{{"id":{i},"tag":"{}","v":[{}]}}"#, gen_string(i), i % 10)).collect::<Vec<_>>())
                .expect("valid json")
        }
        DataType::Bytes => Series::byte_values(
            &ids.iter().map(|&i| (0..(i % 9)).map(|k| (i as u8).wrapping_add(k as u8)).collect::<Vec<u8>>()).collect::<Vec<_>>(),
        ),
    }
}

fn gen_string(i: u64) -> String {
    match i % 5 {
        0 => String::new(),
        1 => format!("s{i}"),
        2 => format!("välue-{i}-ü"),
        3 => "x".repeat((i % 40) as usize),
        _ => format!("line {i} with spaces"),
    }
}

/// Every sample rendered as a string, exact (floats by bit pattern), for readable diffs.
pub fn render(s: &Series) -> Vec<String> {
    let n = s.len();
    match s.data_type() {
        DataType::U8 => s.as_slice::<u8>().unwrap().iter().map(|v| format!("{v}")).collect(),
        DataType::U16 => s.as_slice::<u16>().unwrap().iter().map(|v| format!("{v}")).collect(),
        DataType::U32 => s.as_slice::<u32>().unwrap().iter().map(|v| format!("{v}")).collect(),
        DataType::U64 => s.as_slice::<u64>().unwrap().iter().map(|v| format!("{v}")).collect(),
        DataType::I8 => s.as_slice::<i8>().unwrap().iter().map(|v| format!("{v}")).collect(),
        DataType::I16 => s.as_slice::<i16>().unwrap().iter().map(|v| format!("{v}")).collect(),
        DataType::I32 => s.as_slice::<i32>().unwrap().iter().map(|v| format!("{v}")).collect(),
        DataType::I64 | DataType::Timestamp => s.as_slice::<i64>().unwrap().iter().map(|v| format!("{v}")).collect(),
        DataType::F32 => s.as_slice::<f32>().unwrap().iter().map(|v| format!("{v}/{:08x}", v.to_bits())).collect(),
        DataType::F64 => s.as_slice::<f64>().unwrap().iter().map(|v| format!("{v}/{:016x}", v.to_bits())).collect(),
        DataType::Bool => s.as_slice::<u8>().unwrap().iter().map(|v| format!("bool:{v}")).collect(),
        DataType::Uuid => s.data().chunks(16).take(n).map(|c| uuid::Uuid::from_slice(c).unwrap().to_string()).collect(),
        DataType::String | DataType::Json => (0..n).map(|i| s.value_str(i).expect("utf-8 value").to_string()).collect(),
        DataType::Bytes => (0..n).map(|i| format!("{:02x?}", s.value_bytes(i).expect("value"))).collect(),
    }
}

/// Read `range` of `key` and concatenate it into one series (an empty series of `dt` if
/// nothing was read).
pub fn read_one(engine: &Engine, range: TimeRange, key: ChannelKey, dt: DataType) -> Series {
    let f = engine.read(range, &[key]).expect("read");
    f.concat(key).expect("concat").unwrap_or_else(|| Series::empty_of(dt))
}

/// Assert that `got` holds exactly `expected` (same type, same samples).
#[track_caller]
pub fn assert_series_eq(got: &Series, expected: &Series) {
    assert_eq!(got.data_type(), expected.data_type(), "data type");
    assert_eq!(render(got), render(expected), "samples");
    assert_eq!(got, expected, "Series::eq");
}

/// Timestamps of `key` (an index) read over `range`.
pub fn read_ts(engine: &Engine, range: TimeRange, index: ChannelKey) -> Vec<i64> {
    read_one(engine, range, index, DataType::Timestamp).as_timestamps().unwrap().to_vec()
}

/// A frame with index timestamps `ts` and, for each data channel, the samples of `ids`.
pub fn group_frame(g: &Group, ts: &[i64], ids: &[u64]) -> Frame {
    assert_eq!(ts.len(), ids.len());
    let mut f = Frame::new().with(g.idx(), Series::timestamps(ts.to_vec()));
    for c in &g.data {
        f.push(c.key, gen_series(c.data_type, ids));
    }
    f
}

/// `n` timestamps starting at `start`, `step` apart.
pub fn ts_range(start: i64, n: usize, step: i64) -> Vec<i64> {
    (0..n as i64).map(|i| start + i * step).collect()
}

/// Remove the index checkpoint a clean close wrote, so the next open walks every record
/// header, as after a crash in a directory never closed cleanly.
pub fn drop_checkpoint(dir: &Path) {
    std::fs::remove_file(dir.join("segments/index.ckpt")).expect("a clean close writes segments/index.ckpt");
}

/// Segment files of a data directory, sorted by name.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("segments"))
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "seg")).collect())
        .unwrap_or_default();
    v.sort();
    v
}

pub const SEGMENT_HEADER_LEN: u64 = 64;
pub const RECORD_HEADER_LEN: u64 = 56;
pub const KIND_CHUNK: u8 = 1;
pub const KIND_COMMIT: u8 = 2;
pub const KIND_SEAL: u8 = 3;

/// A record found in a segment file (format version 2, see `storage/format.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rec {
    /// Offset of the record header.
    pub offset: u64,
    pub kind: u8,
    pub channel: u32,
    pub len: u64,
    pub samples: u32,
    pub domain: u32,
    pub pos: u32,
    /// Bit 0: written by compaction; bit 1: kept raw because compressing did not pay.
    pub flags: u8,
    /// Payload codec tag (0 raw).
    pub codec: u8,
}

impl Rec {
    pub fn payload_offset(&self) -> u64 {
        self.offset + RECORD_HEADER_LEN
    }

    pub fn end(&self) -> u64 {
        self.offset + RECORD_HEADER_LEN + self.len.next_multiple_of(8)
    }
}

/// Walk the records of a segment file (stops at the first header that is not valid).
pub fn parse_segment(bytes: &[u8]) -> Vec<Rec> {
    let mut out = Vec::new();
    let mut off = SEGMENT_HEADER_LEN as usize;
    while off + RECORD_HEADER_LEN as usize <= bytes.len() {
        let h = &bytes[off..off + RECORD_HEADER_LEN as usize];
        let stored = u32::from_le_bytes(h[4..8].try_into().unwrap());
        if crc32c::crc32c(&h[8..]) != stored {
            break;
        }
        let u32_at = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().unwrap());
        let u64_at = |i: usize| u64::from_le_bytes(h[i..i + 8].try_into().unwrap());
        let align = u64_at(32);
        let r = Rec {
            offset: off as u64,
            kind: h[8],
            channel: u32_at(12),
            len: u64_at(16),
            samples: u32_at(24),
            domain: (align >> 32) as u32,
            pos: align as u32,
            flags: h[10],
            codec: h[11],
        };
        if r.end() as usize > bytes.len() {
            break;
        }
        out.push(r);
        off = r.end() as usize;
    }
    out
}

/// Records of every segment file of `dir`, with their file.
pub fn all_records(dir: &Path) -> Vec<(PathBuf, Rec)> {
    let mut out = Vec::new();
    for p in segment_files(dir) {
        let bytes = std::fs::read(&p).unwrap();
        for r in parse_segment(&bytes) {
            out.push((p.clone(), r));
        }
    }
    out
}

/// Write `frame` at `start` with a fresh writer and close it.
pub fn write(engine: &Engine, start: i64, frame: Frame) -> TimeStamp {
    engine.write(TimeStamp(start), frame).expect("write")
}
