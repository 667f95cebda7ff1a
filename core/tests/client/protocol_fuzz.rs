//! Stable-toolchain fuzzing of the wire protocol's entry points (the cargo-fuzz targets in
//! `fuzz/` need nightly): random and mutated bytes into the frame decoder and every JSON
//! parser, then the same garbage at a live node, which must keep serving.
//!
//! `TELEMETRON_FUZZ_ITERS` scales the loops (default 20,000 per target; the figures in
//! docs/protocol.md come from longer runs).

use crate::backends;

use std::time::Duration;

use bytes::Bytes;
use proptest::prelude::*;
use telemetron::channel::NewChannel;
use telemetron::protocol::{codec, parse_every_message};
use telemetron::telem::{Alignment, DataType, Frame, Series, TimeRange};

fn iters() -> u64 {
    std::env::var("TELEMETRON_FUZZ_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000)
}

/// xorshift64*: deterministic, seedable, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn seed_frames() -> Vec<Vec<u8>> {
    let f = Frame::new()
        .with(1, Series::timestamps(vec![1, 2, 3]).with_time_range(TimeRange::from_nanos(1, 4)).with_alignment(Alignment::new(2, 7)))
        .with(2, Series::from_vec(vec![1.5f64, -2.0, 3.25]))
        .with(3, Series::strings(&["a", "", "ccc"]))
        .with(4, Series::json(&["{\"x\":1}"]).unwrap())
        .with(5, Series::bools(&[true, false]))
        .with(6, Series::uuids(&[uuid::Uuid::nil()]))
        .with(7, Series::byte_values(&[vec![0u8, 255], vec![]]));
    vec![codec::encode(&f), codec::encode(&Frame::new()), codec::encode(&Frame::new().with(9, Series::from_vec(vec![7u8; 33])))]
}

/// Mutate `buf`: flip, overwrite, insert, delete, truncate, or splice in an extreme value.
fn mutate(rng: &mut Rng, mut buf: Vec<u8>) -> Vec<u8> {
    for _ in 0..1 + rng.below(4) {
        let n = buf.len();
        match rng.below(7) {
            0 if n > 0 => buf[rng.below(n)] ^= 1 << rng.below(8),
            1 if n > 0 => buf[rng.below(n)] = rng.next() as u8,
            2 => buf.insert(rng.below(n + 1), rng.next() as u8),
            3 if n > 0 => drop(buf.remove(rng.below(n))),
            4 => buf.truncate(rng.below(n + 1)),
            5 if n >= 8 => {
                let at = rng.below(n - 7);
                let v = [0u64, u64::MAX, u32::MAX as u64, 1 << 40, rng.next()][rng.below(5)];
                buf[at..at + 8].copy_from_slice(&v.to_le_bytes());
            }
            _ => buf.extend((0..rng.below(16)).map(|_| rng.next() as u8)),
        }
    }
    buf
}

fn decode_checked(data: Vec<u8>) {
    if let Ok(frame) = codec::decode(Bytes::from(data)) {
        // Whatever is accepted round-trips.
        let again = codec::decode(Bytes::from(codec::encode(&frame))).expect("re-encoded frame decodes");
        assert_eq!(again, frame);
    }
}

#[test]
fn frame_decoder_survives_mutated_frames() {
    let seeds = seed_frames();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..iters() * 5 {
        let seed = seeds[(i as usize) % seeds.len()].clone();
        decode_checked(mutate(&mut rng, seed));
    }
}

const JSON_SEEDS: &[&str] = &[
    r#"{"type":"open","config":{"start":0,"channels":[1,2],"authorities":[200],"mode":"stream","durability":"commit"}}"#,
    r#"{"type":"set_authorities","id":3,"changes":[[1,255],[2,0]]}"#,
    r#"{"type":"commit","id":18446744073709551615}"#,
    r#"{"type":"open","config":{"channels":[4],"capacity":0,"lag_policy":"disconnect","decimate":4294967295,"throttle_hz":1e308}}"#,
    r#"{"type":"next","span":{"by":"time","value":-9223372036854775808}}"#,
    r#"{"type":"open","config":{"bounds":{"start":5,"end":1},"channels":[1],"chunk_size":0}}"#,
    r#"{"channels":[{"name":"x","data_type":"f64","index":"t","virtual":true,"is_index":true}],"retrieve_if_name_exists":true}"#,
    r#"{"refs":[1,"name",4294967295]}"#,
    r#"{"range":{"name":"r","time_range":{"start":0,"end":1},"meta_data":{"k":"v"}}}"#,
    r#"{"code":"write.not_monotonic","message":"m","detail":{"e":"write","v":"not_monotonic","index":"t","position":1,"previous":5,"value":4}}"#,
    r#"{"code":"engine.closed","message":"m","detail":{"e":"closed","what":"the writer"}}"#,
    r#"{"code":"channel.invalid","message":"m","detail":{"e":"channel","v":"invalid_name","name":"","reason":"names cannot be empty"}}"#,
    r#"{"type":"write_error","seq":1,"error":{"code":"net.tls","message":"x","detail":{"e":"net","kind":"tls","reason":"r"}}}"#,
];

#[test]
fn json_parsers_survive_mutated_messages() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for i in 0..iters() * 2 {
        let seed = JSON_SEEDS[(i as usize) % JSON_SEEDS.len()].as_bytes().to_vec();
        parse_every_message(&mutate(&mut rng, seed));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn frame_decoder_survives_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..1024)) {
        decode_checked(data);
    }

    #[test]
    fn json_parsers_survive_random_text(s in "\\PC{0,200}") {
        parse_every_message(s.as_bytes());
    }

    #[test]
    fn json_parsers_survive_random_values(v in proptest::arbitrary::any::<Vec<(String, i64)>>()) {
        let obj: serde_json::Map<String, serde_json::Value> = v.into_iter().map(|(k, n)| (k, serde_json::json!(n))).collect();
        parse_every_message(serde_json::to_string(&obj).unwrap().as_bytes());
    }
}

/// The same garbage, at a live node: every message gets an error or is ignored, and the
/// node keeps serving a well-behaved client throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_node_survives_garbage() {
    let b = backends::Backend::remote().await;
    let addr = b.server.as_ref().unwrap().local_addr();
    let c = &b.client;
    let ch = c.create_channels(vec![NewChannel::index("ft"), NewChannel::data("fv", DataType::F64, "ft")], false).await.unwrap();
    let mut rng = Rng(7);
    let seeds = seed_frames();
    let rounds = (iters() / 100).max(50);
    for i in 0..rounds {
        let kind = ["writer", "streamer", "iterator"][rng.below(3)];
        let mut ws = backends::raw::open(addr, kind).await;
        if rng.below(2) == 0 {
            // A valid open first, so the garbage reaches an open stream.
            let open = match kind {
                "writer" => format!(r#"{{"type":"open","config":{{"start":{},"channels":[{}]}}}}"#, i * 10, ch[1].key),
                "streamer" => format!(r#"{{"type":"open","config":{{"channels":[{}]}}}}"#, ch[1].key),
                _ => format!(r#"{{"type":"open","config":{{"bounds":{{"start":0,"end":100}},"channels":[{}]}}}}"#, ch[1].key),
            };
            backends::raw::send_text(&mut ws, &open).await;
        }
        for _ in 0..1 + rng.below(4) {
            if rng.below(2) == 0 {
                let seed = JSON_SEEDS[rng.below(JSON_SEEDS.len())].as_bytes().to_vec();
                let text = String::from_utf8_lossy(&mutate(&mut rng, seed)).to_string();
                backends::raw::send_text(&mut ws, &text).await;
            } else {
                let seed = seeds[rng.below(seeds.len())].clone();
                backends::raw::send_binary(&mut ws, mutate(&mut rng, seed)).await;
            }
        }
        drop(ws);
        let seed = JSON_SEEDS[rng.below(JSON_SEEDS.len())].as_bytes().to_vec();
        let body = mutate(&mut rng, seed);
        let path =
            ["/api/v1/channels/create", "/api/v1/frames/read", "/api/v1/ranges/create", "/api/v1/frames/write?start=1"][rng.below(4)];
        let (status, _) = backends::raw::post(addr, path, &[("telemetron-protocol", "1")], &body).await;
        assert!(status == 200 || (400..500).contains(&status), "{path}: status {status}");
        if i % 10 == 0 {
            // Still serving.
            assert_eq!(c.channel("fv").await.unwrap().key, ch[1].key);
        }
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut w = c.open_writer(telemetron::framer::WriterConfig::new(telemetron::telem::TimeStamp(1 << 40), vec![ch[1].key])).await.unwrap();
    let f = Frame::new().with(ch[0].key, Series::timestamps(vec![1 << 40])).with(ch[1].key, Series::from_vec(vec![1.0f64]));
    assert!(w.write(&f).await.unwrap().all_written());
    w.close().await.unwrap();
}
