//! The client API on both backends: each scenario runs once on an embedded engine and
//! once against a node served in-process on loopback, with the same assertions, so
//! behaviour and error codes cannot drift apart.

use crate::backends;

use std::collections::BTreeMap;
use std::time::Duration;

use backends::{Backend, SECOND, code};
use telemetron::channel::{ChannelKey, Compression, NewChannel};
use telemetron::framer::{IterSpan, IteratorConfig, WriterConfig, WriterMode};
use telemetron::ranger::{NewRange, RangeQuery};
use telemetron::relay::{StreamError, StreamerConfig};
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};
use telemetron::{Client, Error};

/// An index `t` and an f64 data channel `p` on it.
async fn index_and_data(c: &Client, prefix: &str) -> (ChannelKey, ChannelKey) {
    let t = format!("{prefix}_t");
    let ch =
        c.create_channels(vec![NewChannel::index(&t), NewChannel::data(format!("{prefix}_p"), DataType::F64, &t)], false).await.unwrap();
    (ch[0].key, ch[1].key)
}

fn samples(t: ChannelKey, p: ChannelKey, ts: &[i64]) -> Frame {
    Frame::new()
        .with(t, Series::timestamps(ts.to_vec()))
        .with(p, Series::from_vec(ts.iter().map(|&x| x as f64 * 0.5).collect::<Vec<f64>>()))
}

async fn channels_crud(b: &Backend) {
    let c = &b.client;
    let (t, p) = index_and_data(c, "crud").await;
    assert_eq!(c.channel(p).await.unwrap().name, "crud_p");
    assert_eq!(c.channel("crud_t").await.unwrap().key, t);
    let v = c.create_channels(vec![NewChannel::virtual_("crud_v", DataType::U8)], false).await.unwrap();
    assert!(v[0].is_virtual());
    let found = c.search_channels("CRUD").await.unwrap();
    assert_eq!(found.len(), 3, "{found:?}");
    assert_eq!(c.rename_channel(p, "crud_pressure").await.unwrap().name, "crud_pressure");
    assert_eq!(code(c.channel("crud_p").await), "channel.not_found");
    // How compaction stores it can change after creation; a choice that does not fit the
    // channel (an index stays raw) is refused.
    assert_eq!(c.set_channel_compression(p, Compression::Zstd).await.unwrap().compression, Compression::Zstd);
    assert_eq!(c.channel(p).await.unwrap().compression, Compression::Zstd);
    assert_eq!(code(c.set_channel_compression(t, Compression::Lz4).await), "channel.invalid");
    assert_eq!(c.channel(t).await.unwrap().compression, Compression::Default);
    assert_eq!(code(c.set_channel_compression(99_999, Compression::Lz4).await), "channel.not_found");
    assert_eq!(code(c.channel(99_999).await), "channel.not_found");
    assert_eq!(code(c.create_channels(vec![NewChannel::index("crud_t")], false).await), "channel.name_taken");
    assert_eq!(code(c.create_channels(vec![NewChannel::index("")], false).await), "channel.invalid");
    assert_eq!(code(c.create_channels(vec![NewChannel::data("x", DataType::F32, "crud_pressure")], false).await), "channel.invalid_index");
    let again = c.create_channels(vec![NewChannel::index("crud_t")], true).await.unwrap();
    assert_eq!(again[0].key, t);
    assert_eq!(code(c.delete_channels(&[t]).await), "channel.index_in_use");
    // The typed error survives the wire, not just its code.
    match c.channel(12_345).await {
        Err(Error::Channel(telemetron::channel::ChannelError::KeyNotFound { key })) => assert_eq!(key, 12_345),
        other => panic!("{other:?}"),
    }
    c.delete_channels(&[p, t]).await.unwrap();
    assert_eq!(code(c.channel(t).await), "channel.not_found");
    let control = c.control_channel().await.unwrap();
    assert_eq!(code(c.delete_channels(&[control]).await), "invalid_argument");
    // Placement names a cluster node: refused outside a cluster, and for a node it lacks.
    assert_eq!(code(c.create_channels_on("daq-9", vec![NewChannel::index("crud_placed")], false).await), "invalid_argument");
    assert_eq!(code(c.channel("crud_placed").await), "channel.not_found", "{}: nothing was created", b.name());
}

async fn ranges_and_metadata(b: &Backend) {
    let c = &b.client;
    let mut meta = BTreeMap::new();
    meta.insert("operator".to_string(), "ada".to_string());
    let r = c
        .create_range(NewRange {
            name: "hotfire 12".into(),
            time_range: TimeRange::from_nanos(10, 20),
            labels: vec!["hotfire".into()],
            color: None,
            meta_data: meta,
            parent: None,
        })
        .await
        .unwrap();
    assert_eq!(c.range(r.key).await.unwrap(), r);
    assert_eq!(c.search_ranges("hotfire", None).await.unwrap().len(), 1);
    assert_eq!(c.search_ranges("hotfire", Some(TimeRange::from_nanos(30, 40))).await.unwrap().len(), 0);
    assert_eq!(c.rename_range(r.key, "hotfire 13").await.unwrap().name, "hotfire 13");
    assert_eq!(c.range_meta(r.key).await.unwrap()["operator"], "ada");
    let mut more = BTreeMap::new();
    more.insert("stand".to_string(), "B".to_string());
    c.set_range_meta(r.key, more).await.unwrap();
    c.delete_range_meta(r.key, &["operator".to_string()]).await.unwrap();
    let m = c.range_meta(r.key).await.unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m["stand"], "B");
    assert_eq!(code(c.create_range(NewRange { name: String::new(), ..NewRange::default() }).await), "range.invalid");
    c.delete_ranges(&[r.key]).await.unwrap();
    assert_eq!(code(c.range(r.key).await), "range.not_found");
}

/// Child ranges, labels and structured search, for analysis across runs.
async fn child_ranges_labels_and_queries(b: &Backend) {
    let c = &b.client;
    let run = |name: &str, start: i64, stand: &str, parent: Option<uuid::Uuid>| NewRange {
        name: name.into(),
        time_range: TimeRange::from_nanos(start, start + 100),
        labels: vec!["hotfire".into()],
        meta_data: [("stand".to_string(), stand.to_string())].into(),
        parent,
        ..NewRange::default()
    };
    let a = c.create_range(run("run a", 0, "B", None)).await.unwrap();
    let b2 = c.create_range(run("run b", 1_000, "C", None)).await.unwrap();
    let ign = c
        .create_range(NewRange { labels: vec!["hotfire".into(), "Ignition".into()], ..run("ignition", 10, "B", Some(a.key)) })
        .await
        .unwrap();
    let vo = c.create_range(run("valve open", 20, "B", Some(a.key))).await.unwrap();
    let deep = c.create_range(run("first pulse", 21, "B", Some(vo.key))).await.unwrap();
    assert_eq!(ign.parent, Some(a.key));
    assert_eq!(c.range(ign.key).await.unwrap().parent, Some(a.key));
    // Children are the direct ones, by start time.
    let kids: Vec<_> = c.range_children(a.key).await.unwrap().into_iter().map(|r| r.key).collect();
    assert_eq!(kids, vec![ign.key, vo.key]);
    assert!(c.range_children(b2.key).await.unwrap().is_empty());
    assert_eq!(code(c.range_children(uuid::Uuid::from_u128(7)).await), "range.not_found");
    // A parent that does not exist is refused, and nothing is created.
    let before = c.search_ranges("", None).await.unwrap().len();
    assert_eq!(code(c.create_range(run("orphan", 0, "B", Some(uuid::Uuid::from_u128(7)))).await), "range.invalid");
    assert_eq!(c.search_ranges("", None).await.unwrap().len(), before);
    // Exact metadata, labels (all required, any case) and parent combine.
    let names = |rs: Vec<telemetron::ranger::Range>| rs.into_iter().map(|r| r.name).collect::<Vec<_>>();
    assert_eq!(names(c.query_ranges(&RangeQuery::default().meta("stand", "C")).await.unwrap()), vec!["run b"]);
    assert!(c.query_ranges(&RangeQuery::default().meta("stand", "c")).await.unwrap().is_empty(), "metadata values match exactly");
    assert_eq!(names(c.query_ranges(&RangeQuery::default().label("ignition").label("HOTFIRE")).await.unwrap()), vec!["ignition"]);
    assert_eq!(names(c.query_ranges(&RangeQuery::term("pulse").parent(vo.key)).await.unwrap()), vec!["first pulse"]);
    assert!(c.query_ranges(&RangeQuery::term("pulse").parent(a.key)).await.unwrap().is_empty(), "parent means direct parent");
    let q = RangeQuery::default().meta("stand", "B").overlapping(TimeRange::from_nanos(15, 25));
    assert_eq!(names(c.query_ranges(&q).await.unwrap()), vec!["run a", "ignition", "valve open", "first pulse"]);
    // Labels can be replaced after the fact; an empty label is refused.
    let relabelled = c.set_range_labels(b2.key, vec!["cold flow".into(), "anomaly".into()]).await.unwrap();
    assert_eq!(relabelled.labels, vec!["cold flow", "anomaly"]);
    assert_eq!(c.range(b2.key).await.unwrap().labels, vec!["cold flow", "anomaly"]);
    assert_eq!(names(c.query_ranges(&RangeQuery::default().label("anomaly")).await.unwrap()), vec!["run b"]);
    assert_eq!(code(c.set_range_labels(b2.key, vec![" ".into()]).await), "range.invalid");
    assert_eq!(code(c.set_range_labels(uuid::Uuid::from_u128(7), vec![]).await), "range.not_found");
    // Deleting a run deletes everything below it, and its metadata.
    c.delete_ranges(&[a.key]).await.unwrap();
    for k in [a.key, ign.key, vo.key, deep.key] {
        assert_eq!(code(c.range(k).await), "range.not_found");
        assert!(c.range_meta(k).await.unwrap().is_empty());
    }
    assert_eq!(names(c.search_ranges("", None).await.unwrap()), vec!["run b"]);
    c.delete_ranges(&[b2.key]).await.unwrap();
}

fn series_of(dt: DataType, n: usize) -> Series {
    let ints = |m: i64| (0..n as i64).map(move |i| i * m - 3);
    match dt {
        DataType::U8 => Series::from_vec(ints(1).map(|x| x as u8).collect::<Vec<u8>>()),
        DataType::U16 => Series::from_vec(ints(7).map(|x| x as u16).collect::<Vec<u16>>()),
        DataType::U32 => Series::from_vec(ints(11).map(|x| x as u32).collect::<Vec<u32>>()),
        DataType::U64 => Series::from_vec(ints(13).map(|x| x as u64).collect::<Vec<u64>>()),
        DataType::I8 => Series::from_vec(ints(1).map(|x| x as i8).collect::<Vec<i8>>()),
        DataType::I16 => Series::from_vec(ints(-5).map(|x| x as i16).collect::<Vec<i16>>()),
        DataType::I32 => Series::from_vec(ints(-9).map(|x| x as i32).collect::<Vec<i32>>()),
        DataType::I64 => Series::from_vec(ints(-1_000_001).collect::<Vec<i64>>()),
        DataType::F32 => Series::from_vec(ints(1).map(|x| x as f32 / 3.0).collect::<Vec<f32>>()),
        DataType::F64 => Series::from_vec(ints(1).map(|x| x as f64 / 7.0).collect::<Vec<f64>>()),
        DataType::Bool => Series::bools(&(0..n).map(|i| i % 3 == 0).collect::<Vec<_>>()),
        DataType::Timestamp => Series::timestamps(ints(17).collect()),
        DataType::Uuid => Series::uuids(&(0..n).map(|i| uuid::Uuid::from_u128(i as u128 * 77)).collect::<Vec<_>>()),
        DataType::String => Series::strings(&(0..n).map(|i| "é".repeat(i % 4)).collect::<Vec<_>>()),
        DataType::Json => Series::json(&(0..n).map(|i| format!("{{\"i\":{i}}}")).collect::<Vec<_>>()).unwrap(),
        DataType::Bytes => Series::byte_values(&(0..n).map(|i| vec![i as u8; i % 5]).collect::<Vec<_>>()),
    }
}

async fn write_and_read_every_data_type(b: &Backend) {
    let c = &b.client;
    let mut defs = vec![NewChannel::index("types_t")];
    for dt in DataType::ALL {
        defs.push(NewChannel::data(format!("types_{dt}"), dt, "types_t"));
    }
    let ch = c.create_channels(defs, false).await.unwrap();
    let t = ch[0].key;
    let keys: Vec<ChannelKey> = ch.iter().map(|c| c.key).collect();
    let n = 50;
    let mut w = c.open_writer(WriterConfig::new(TimeStamp(1_000), keys[1..].to_vec()).auto_commit(false)).await.unwrap();
    let mut expected: Vec<Frame> = Vec::new();
    for chunk in 0..3i64 {
        let mut f = Frame::new().with(t, Series::timestamps((0..n as i64).map(|i| 1_000 + chunk * 1_000 + i).collect()));
        for (i, dt) in DataType::ALL.iter().enumerate() {
            f.push(keys[i + 1], series_of(*dt, n));
        }
        assert!(w.write(&f).await.unwrap().all_written());
        expected.push(f);
    }
    assert_eq!(w.commit().await.unwrap(), TimeStamp(1_000 + 2_000 + n as i64));
    w.close().await.unwrap();
    let back = c.read(TimeRange::MAX, &keys).await.unwrap();
    for (i, &k) in keys.iter().enumerate() {
        let got = back.concat(k).unwrap().unwrap();
        let want = Series::concat(&expected.iter().map(|f| f.get(k).next().unwrap().clone()).collect::<Vec<_>>()).unwrap();
        assert_eq!(got, want, "channel {i} differs on {}", b.name());
    }
    assert_eq!(c.time_range(t).await.unwrap(), Some(TimeRange::from_nanos(1_000, 3_000 + n as i64)));
    // One-shot writes and their errors.
    let (t2, p2) = index_and_data(c, "oneshot").await;
    assert_eq!(c.write(TimeStamp(5), samples(t2, p2, &[5, 6, 7])).await.unwrap(), TimeStamp(8));
    assert_eq!(c.read(TimeRange::from_nanos(6, 100), &[p2]).await.unwrap().samples(p2), 2);
    assert_eq!(code(c.write(TimeStamp(6), samples(t2, p2, &[6])).await), "write.overlaps_committed");
    assert_eq!(code(c.read(TimeRange::from_nanos(5, 1), &[p2]).await), "invalid_argument");
    assert_eq!(code(c.read(TimeRange::MAX, &[77_777]).await), "channel.not_found");
}

async fn iterator_walks_chunks(b: &Backend) {
    let c = &b.client;
    let (t, p) = index_and_data(c, "iter").await;
    c.write(TimeStamp(0), samples(t, p, &(0..10).collect::<Vec<_>>())).await.unwrap();
    let mut it = c.open_iterator(IteratorConfig { chunk_size: 4, ..IteratorConfig::new(TimeRange::MAX, vec![p]) }).await.unwrap();
    assert!(it.seek_first().await.unwrap());
    let mut seen = Vec::new();
    while it.next(IterSpan::Auto).await.unwrap() {
        let v = it.take_value();
        seen.extend_from_slice(v.concat(p).unwrap().unwrap().as_slice::<f64>().unwrap());
    }
    assert_eq!(seen.len(), 10);
    assert!(it.value().is_empty());
    assert!(it.seek_ge(TimeStamp(5)).await.unwrap());
    assert!(it.next(IterSpan::Samples(2)).await.unwrap());
    assert_eq!(it.value().concat(p).unwrap().unwrap().as_slice::<f64>().unwrap(), &[2.5, 3.0]);
    assert!(it.seek_le(TimeStamp(4)).await.unwrap());
    assert!(it.prev(IterSpan::Time(telemetron::telem::TimeSpan(3))).await.unwrap());
    assert_eq!(it.value().samples(p), 3);
    assert!(!it.seek_ge(TimeStamp(100)).await.unwrap());
    assert!(it.seek_last().await.unwrap());
    assert!(!it.next(IterSpan::Auto).await.unwrap());
    assert_eq!(code(c.open_iterator(IteratorConfig::new(TimeRange::MAX, vec![424_242])).await), "channel.not_found");
}

async fn writer_validation_errors(b: &Backend) {
    let c = &b.client;
    let (t, p) = index_and_data(c, "val").await;
    let (_t2, q) = index_and_data(c, "val2").await;
    let mut w = c.open_writer(WriterConfig::new(TimeStamp(100), vec![p]).auto_commit(false)).await.unwrap();
    let bad_type = Frame::new().with(t, Series::timestamps(vec![100])).with(p, Series::from_vec(vec![1i32]));
    assert_eq!(code(w.write(&bad_type).await), "write.type_mismatch");
    let bad_len = Frame::new().with(t, Series::timestamps(vec![100, 101])).with(p, Series::from_vec(vec![1.0f64]));
    assert_eq!(code(w.write(&bad_len).await), "write.length_mismatch");
    assert_eq!(code(w.write(&Frame::new().with(p, Series::from_vec(vec![1.0f64]))).await), "write.index_missing");
    assert_eq!(code(w.write(&samples(t, p, &[99])).await), "write.before_start");
    assert_eq!(code(w.write(&samples(t, p, &[101, 101])).await), "write.not_monotonic");
    assert_eq!(code(w.write(&Frame::new().with(q, Series::from_vec(vec![1.0f64]))).await), "write.not_in_writer");
    // The writer is still usable and nothing of the rejected frames was written.
    w.write(&samples(t, p, &[100, 101])).await.unwrap();
    assert_eq!(code(w.write(&samples(t, p, &[101])).await), "write.not_monotonic");
    match w.write(&bad_type).await {
        Err(Error::Write(telemetron::storage::WriteError::TypeMismatch { expected, actual, .. })) => {
            assert_eq!((expected, actual), (DataType::F64, DataType::I32));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(w.close().await.unwrap(), TimeStamp(102));
    assert_eq!(c.read(TimeRange::MAX, &[p]).await.unwrap().samples(p), 2);
    assert_eq!(code(c.open_writer(WriterConfig::new(TimeStamp(100), vec![p])).await), "write.overlaps_committed");
    assert_eq!(code(c.open_writer(WriterConfig::new(TimeStamp(0), vec![])).await), "write.invalid_config");
    assert_eq!(code(c.open_writer(WriterConfig::new(TimeStamp(0), vec![55_555])).await), "channel.not_found");
    let w2 = c.open_writer(WriterConfig::new(TimeStamp(500), vec![p])).await.unwrap();
    assert_eq!(code(c.delete(TimeRange::MAX, &[p]).await), "write.channel_busy");
    assert_eq!(code(c.delete_channels(&[p]).await), "channel.busy");
    w2.abort().await;
    // Writes on a closed writer are refused.
    let mut w3 = c.open_writer(WriterConfig::new(TimeStamp(600), vec![p])).await.unwrap();
    w3.set_authority(10).await.unwrap();
    assert_eq!(code(w3.set_authorities(&[(q, 5)]).await), "control.unknown_channel");
    w3.close().await.unwrap();
}

async fn control_arbitration_and_reports(b: &Backend) {
    let c = &b.client;
    let c2 = b.another().await;
    let (t, p) = index_and_data(c, "valve").await;
    let start = TimeStamp(1_000);
    let mut low = c.open_writer(WriterConfig::new(start, vec![p]).authority(100).name("low")).await.unwrap();
    assert!(low.has_control(p) && low.has_control(t));
    let mut high = c2.open_writer(WriterConfig::new(start, vec![p]).authority(200).name("high")).await.unwrap();
    // One node tells `low` before `high` is opened: no waiting needed (see `told`).
    b.told("low still believes it has control", || !low.has_control(p)).await;
    assert!(high.has_control(p));
    let r = low.write(&samples(t, p, &[1_000])).await.unwrap();
    assert!(!r.all_written());
    let mut unauthorized = r.unauthorized.clone();
    unauthorized.sort();
    assert_eq!(unauthorized, vec![t, p]);
    assert!(high.write(&samples(t, p, &[1_001])).await.unwrap().all_written());
    let holders = c.control_states(&[p]).await.unwrap();
    assert_eq!(holders.len(), 1);
    assert_eq!((holders[0].subject.name.as_str(), holders[0].authority), ("high", 200));
    // Lowering hands control back at once.
    high.set_authority(50).await.unwrap();
    b.told("low did not get control back", || low.has_control(p)).await;
    assert!(!high.has_control(p));
    assert!(!high.write(&samples(t, p, &[1_002])).await.unwrap().all_written());
    assert!(low.write(&samples(t, p, &[1_003])).await.unwrap().all_written());
    low.commit().await.unwrap();
    high.set_authority(255).await.unwrap();
    let strict = c.open_writer(WriterConfig::new(start, vec![p]).authority(10).err_on_unauthorized(true).name("strict")).await;
    assert_eq!(strict.map(|_| ()).map_err(|e| e.code()), Err("control.unauthorized"));
    // Closing the holder passes control on.
    high.close().await.unwrap();
    b.told("control did not pass on when the holder closed", || low.has_control(p)).await;
    low.close().await.unwrap();
    assert!(c.control_states(&[p]).await.unwrap().is_empty());
    let stored = c.read(TimeRange::MAX, &[t]).await.unwrap();
    assert_eq!(stored.concat(t).unwrap().unwrap().as_timestamps().unwrap(), &[1_001, 1_003]);
}

async fn streamer_receives_updates_lags_and_closes(b: &Backend) {
    let c = &b.client;
    let (t, p) = index_and_data(c, "live").await;
    let v = c.create_channels(vec![NewChannel::virtual_("live_cmd", DataType::U32)], false).await.unwrap()[0].key;
    let mut s = c.open_streamer(StreamerConfig::new(vec![p])).await.unwrap();
    let mut w = c.open_writer(WriterConfig::new(TimeStamp(0), vec![p, v])).await.unwrap();
    let f = samples(t, p, &[1, 2, 3]);
    w.write(&f).await.unwrap();
    let got = s.next_timeout(SECOND).await.unwrap().expect("a frame");
    assert_eq!(got.concat(p).unwrap().unwrap(), f.concat(p).unwrap().unwrap());
    assert!(!got.contains(t), "the streamer only asked for p");
    s.update_channels(vec![v]).await.unwrap();
    w.write(&samples(t, p, &[4])).await.unwrap();
    w.write(&Frame::new().with(v, Series::from_vec(vec![7u32]))).await.unwrap();
    let got = s.next_timeout(SECOND).await.unwrap().expect("a frame");
    assert_eq!(got.keys(), &[v]);
    assert_eq!(got.concat(v).unwrap().unwrap().as_slice::<u32>().unwrap(), &[7]);
    assert!(s.try_next().unwrap().is_none());
    s.close().await;
    assert_eq!(code(s.next().await), "stream.closed");
    w.close().await.unwrap();
    assert_eq!(code(c.open_streamer(StreamerConfig::new(vec![31_337])).await), "channel.not_found");

    // Lag: a tiny queue and frames big enough to fill the socket buffers too.
    let big = c.create_channels(vec![NewChannel::virtual_("live_big", DataType::U8)], false).await.unwrap()[0].key;
    let mut cfg = StreamerConfig::new(vec![big]);
    cfg.capacity = 2;
    let mut slow = c.open_streamer(cfg).await.unwrap();
    let mut w = c.open_writer(WriterConfig::new(TimeStamp(0), vec![big]).mode(WriterMode::Stream)).await.unwrap();
    let n = 64u64;
    for i in 0..n {
        w.write(&Frame::new().with(big, Series::from_vec(vec![i as u8; 1 << 20]))).await.unwrap();
    }
    w.commit().await.unwrap();
    let (mut frames, mut dropped, mut last) = (0u64, 0u64, 0u8);
    while frames + dropped < n {
        match s_next(&mut slow).await {
            Ok(f) => {
                frames += 1;
                last = f.concat(big).unwrap().unwrap().as_slice::<u8>().unwrap()[0];
            }
            Err(Error::Stream(StreamError::Lagged { dropped: d })) => dropped += d,
            Err(e) => panic!("{}: {e}", b.name()),
        }
    }
    assert!(dropped > 0, "{}: no lag notice", b.name());
    assert_eq!(frames + dropped, n);
    assert_eq!(last as u64, n - 1, "the newest frame arrives");
    w.close().await.unwrap();
}

/// A streamer that reads nothing while frames are written gets every one of them, in
/// order, once it reads: a node sends a streamer's queued frames in batched socket writes
/// (`server/ws_streamer.rs`), each still a message of its own.
async fn a_streamer_backlog_arrives_whole_and_in_order(b: &Backend) {
    let c = &b.client;
    let (t, p) = index_and_data(c, "backlog").await;
    let mut cfg = StreamerConfig::new(vec![p]);
    cfg.capacity = 4096;
    let mut s = c.open_streamer(cfg).await.unwrap();
    let mut w = c.open_writer(WriterConfig::new(TimeStamp(0), vec![t, p]).mode(WriterMode::Stream)).await.unwrap();
    let n = 2000i64;
    for i in 1..=n {
        w.write(&samples(t, p, &[i])).await.unwrap();
    }
    w.commit().await.unwrap();
    w.close().await.unwrap();
    let mut got: Vec<f64> = Vec::new();
    while got.len() < n as usize {
        let f = match s.next_timeout(SECOND).await {
            Ok(Some(f)) => f,
            other => panic!("{}: {other:?} after {} of {n} samples", b.name(), got.len()),
        };
        assert!(!f.contains(t), "the streamer only asked for p");
        got.extend_from_slice(f.concat(p).unwrap().unwrap().as_slice::<f64>().unwrap());
    }
    let want: Vec<f64> = (1..=n).map(|i| i as f64 * 0.5).collect();
    assert_eq!(got, want, "{}", b.name());
    assert!(s.try_next().unwrap().is_none());
    s.close().await;
}

async fn s_next(s: &mut telemetron::client::ClientStreamer) -> telemetron::Result<Frame> {
    match s.next_timeout(SECOND).await {
        Ok(Some(f)) => Ok(f),
        Ok(None) => panic!("no frame within {SECOND:?}"),
        Err(e) => Err(e),
    }
}

/// Handoffs racing in-flight writes: every write either lands or is reported, never lost
/// silently. A higher-authority writer on another client takes the channels and gives them
/// back, again and again, while the first writes as fast as it can without waiting.
async fn handoffs_racing_writes_are_reported(b: &Backend) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};
    let c = &b.client;
    let (t, p) = index_and_data(c, "race").await;
    let other = b.another().await;
    let mut w = c.open_writer(WriterConfig::new(TimeStamp(1), vec![t, p]).authority(100)).await.unwrap();
    let handoffs = Arc::new(AtomicU64::new(0));
    let done = handoffs.clone();
    let takeovers = tokio::spawn(async move {
        for _ in 0..8 {
            // Starts far after A's data and writes nothing: it only takes control, then gives it back.
            let cfg = WriterConfig::new(TimeStamp(1 << 50), vec![t, p]).authority(200);
            let hi = other.open_writer(cfg).await.unwrap();
            tokio::time::sleep(Duration::from_millis(2)).await;
            hi.close().await.unwrap();
            done.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let (mut n, mut refused, mut dropped, mut in_flight_reports) = (0i64, 0i64, 0i64, 0i64);
    let mut count = |r: &telemetron::framer::WriteReport, refused: &mut i64, dropped: &mut i64| {
        *refused += i64::from(r.unauthorized.contains(&p));
        let d = r.dropped.iter().filter(|d| d.channels.contains(&p)).count() as i64;
        *dropped += d;
        in_flight_reports += d;
    };
    while handoffs.load(Ordering::Relaxed) < 8 && n < 1_000_000 {
        n += 1;
        let r = w.write(&samples(t, p, &[n])).await.unwrap();
        count(&r, &mut refused, &mut dropped);
        tokio::task::yield_now().await;
    }
    takeovers.await.unwrap();
    // confirm() collects what the node dropped after the last write returned.
    let r = w.confirm().await.unwrap();
    assert!(r.unauthorized.is_empty());
    count(&r, &mut refused, &mut dropped);
    assert!(w.confirm().await.unwrap().all_written(), "a second confirm reports nothing twice");
    w.close().await.unwrap();
    let stored = c.read(TimeRange::MAX, &[p]).await.unwrap().samples(p) as i64;
    eprintln!("{}: {n} writes over 8 handoffs: {refused} refused at once, {dropped} dropped in flight, {stored} stored", b.name());
    assert!(stored > 0 && refused + dropped > 0, "the writes did not race the handoffs");
    assert_eq!(stored, n - refused - dropped, "{}: every write not stored must have been reported", b.name());
    if b.name() == "embedded" {
        assert_eq!(in_flight_reports, 0, "embedded writes are gated when made");
    }
}

/// A command written with write_confirmed either took effect or names what did not.
async fn confirmed_writes_say_what_took_effect(b: &Backend) {
    let c = &b.client;
    let (t, p) = index_and_data(c, "confirm").await;
    let mut w = c.open_writer(WriterConfig::new(TimeStamp(1), vec![t, p]).authority(100)).await.unwrap();
    let r = w.write_confirmed(&samples(t, p, &[1])).await.unwrap();
    assert!(r.all_written() && r.not_written().is_empty(), "{r:?}");
    let other = b.another().await;
    let hi = other.open_writer(WriterConfig::new(TimeStamp(1 << 50), vec![t, p]).authority(200)).await.unwrap();
    // Whether the client heard of the handoff before sending (refused) or the node dropped the
    // frame (dropped), the report names both channels and nothing more was stored.
    let r = w.write_confirmed(&samples(t, p, &[2])).await.unwrap();
    let mut lost = r.not_written();
    lost.sort_unstable();
    assert_eq!(
        lost,
        {
            let mut v = vec![t, p];
            v.sort_unstable();
            v
        },
        "{}: {r:?}",
        b.name()
    );
    assert!(!r.all_written());
    hi.close().await.unwrap();
    w.close().await.unwrap();
    assert_eq!(c.read(TimeRange::MAX, &[p]).await.unwrap().samples(p), 1);
}

async fn control_state_channel(b: &Backend) {
    let c = &b.client;
    let (_, p) = index_and_data(c, "cs").await;
    let control = c.control_channel().await.unwrap();
    let mut w = c.open_writer(WriterConfig::new(TimeStamp(0), vec![p]).name("first")).await.unwrap();
    let mut s = c.open_streamer(StreamerConfig::new(vec![control])).await.unwrap();
    let snap = s_next(&mut s).await.unwrap();
    let mut text = snap.concat(control).unwrap().unwrap().value_str(0).unwrap().to_string();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["snapshot"], true);
    if b.name() == "cluster" && !text.contains("first") {
        // Through a gateway, the leaseholder's grant reaches the gateway's control channel
        // on its peer tap and may come just after the snapshot (docs/cluster.md §10).
        let next = s_next(&mut s).await.unwrap();
        text = next.concat(control).unwrap().unwrap().value_str(0).unwrap().to_string();
    }
    assert!(text.contains("first"), "{}: {text}", b.name());
    w.set_authority(1).await.unwrap();
    let w2 = c.open_writer(WriterConfig::new(TimeStamp(0), vec![p]).name("second")).await.unwrap();
    let f = s_next(&mut s).await.unwrap();
    let text = f.concat(control).unwrap().unwrap().value_str(0).unwrap().to_string();
    assert!(text.contains("second") && text.contains("transfers"), "{text}");
    b.told("the first writer still believes it has control", || !w.has_control(p)).await;
    w2.abort().await;
    b.told("control did not come back when the second writer aborted", || w.has_control(p)).await;
    w.abort().await;
}

async fn deletes(b: &Backend) {
    let c = &b.client;
    let (t, p) = index_and_data(c, "del").await;
    c.write(TimeStamp(0), samples(t, p, &(0..100).collect::<Vec<_>>())).await.unwrap();
    c.delete(TimeRange::from_nanos(10, 20), &[p]).await.unwrap();
    assert_eq!(c.read(TimeRange::MAX, &[p]).await.unwrap().samples(p), 90);
    let e1 = c.delete(TimeRange::from_nanos(30, 40), &[t]).await.map_err(|e| e.code());
    assert!(e1.is_err(), "an index range still used by its data channel cannot be deleted");
    c.delete(TimeRange::MAX, &[p]).await.unwrap();
    assert_eq!(c.read(TimeRange::MAX, &[p]).await.unwrap().samples(p), 0);
    c.delete_channels(&[p, t]).await.unwrap();
    assert_eq!(code(c.read(TimeRange::MAX, &[p]).await), "channel.not_found");
    let (t, p) = index_and_data(c, "del2").await;
    let r = c.create_range(NewRange { name: "before close".into(), ..NewRange::default() }).await.unwrap();
    c.control_channel().await.unwrap(); // cached by a remote client
    // After close, every call fails the same way on both backends.
    c.close().await.unwrap();
    let closed = "engine.closed";
    assert_eq!(code(c.create_channels(vec![NewChannel::index("late")], false).await), closed);
    assert_eq!(code(c.channel(p).await), closed);
    assert_eq!(code(c.channels(&[p.into()]).await), closed);
    assert_eq!(code(c.search_channels("").await), closed);
    assert_eq!(code(c.rename_channel(p, "renamed").await), closed);
    assert_eq!(code(c.delete_channels(&[p]).await), closed);
    assert_eq!(code(c.create_range(NewRange { name: "late".into(), ..NewRange::default() }).await), closed);
    assert_eq!(code(c.range(r.key).await), closed);
    assert_eq!(code(c.search_ranges("", None).await), closed);
    assert_eq!(code(c.rename_range(r.key, "renamed").await), closed);
    assert_eq!(code(c.range_meta(r.key).await), closed);
    assert_eq!(code(c.set_range_meta(r.key, BTreeMap::from([("k".to_string(), "v".to_string())])).await), closed);
    assert_eq!(code(c.delete_range_meta(r.key, &["k".to_string()]).await), closed);
    assert_eq!(code(c.delete_ranges(&[r.key]).await), closed);
    assert_eq!(code(c.read(TimeRange::MAX, &[p]).await), closed);
    assert_eq!(code(c.write(TimeStamp(0), samples(t, p, &[1])).await), closed);
    assert_eq!(code(c.delete(TimeRange::MAX, &[p]).await), closed);
    assert_eq!(code(c.time_range(p).await), closed);
    assert_eq!(code(c.open_writer(WriterConfig::new(TimeStamp(0), vec![p])).await), closed);
    assert_eq!(code(c.open_streamer(StreamerConfig::new(vec![t])).await), closed);
    assert_eq!(code(c.open_iterator(IteratorConfig::new(TimeRange::MAX, vec![p])).await), closed);
    assert_eq!(code(c.control_states(&[p]).await), closed);
    assert_eq!(code(c.control_channel().await), closed);
}

/// Large frames (pipelined on the node) stay in order, and an error only the node can see
/// (data stored by someone else) comes back: at once embedded, on the next call remote.
async fn large_frames_and_late_errors(b: &Backend) {
    let c = &b.client;
    let (t, p) = index_and_data(c, "big").await;
    c.write(TimeStamp(1_000_000), samples(t, p, &[1_000_000, 1_000_001])).await.unwrap();
    let mut w = c.open_writer(WriterConfig::new(TimeStamp(0), vec![p]).auto_commit(false)).await.unwrap();
    let n = 40_000i64;
    for chunk in 0..5 {
        let at = chunk * (n + 1);
        let ts: Vec<i64> = (at..at + n).collect();
        assert!(w.write(&samples(t, p, &ts)).await.unwrap().all_written());
        // A small frame between large ones must not overtake them.
        assert!(w.write(&samples(t, p, &[at + n])).await.unwrap().all_written());
    }
    w.commit().await.unwrap();
    let overlap: Vec<i64> = (999_000..1_000_500).collect();
    let first = w.write(&samples(t, p, &overlap)).await;
    let err = match first {
        Err(e) => e,
        Ok(_) => w.commit().await.expect_err("the node reports the overlap on the next call"),
    };
    assert_eq!(err.code(), "write.overlap", "{}: {err}", b.name());
    // The writer carries on after the rejected write.
    w.write(&samples(t, p, &[999_999])).await.unwrap();
    // A refusal still on its way when the writer closes is what the close returns; what
    // was accepted before it is committed.
    match w.write(&samples(t, p, &[1_000_000])).await {
        Err(e) => {
            assert_eq!(e.code(), "write.overlap", "{}: {e}", b.name());
            w.close().await.unwrap();
        }
        Ok(_) => {
            let e = w.close().await.expect_err("the close reports the refusal that arrived with it");
            assert_eq!(e.code(), "write.overlap", "{}: {e}", b.name());
        }
    }
    let back = c.read(TimeRange::from_nanos(0, 1_000_000), &[t]).await.unwrap();
    let ts = back.concat(t).unwrap().unwrap();
    let ts = ts.as_timestamps().unwrap();
    assert!(ts.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(ts.len() as i64, 5 * (n + 1) + 1, "{}", b.name());
}

async fn read_latest_gives_the_last_samples(b: &Backend) {
    let c = &b.client;
    let (t, p) = index_and_data(c, "latest").await;
    let empty = c.read_latest(&[p, t], 1).await.unwrap();
    assert_eq!((empty.samples(p), empty.samples(t)), (0, 0), "{}", b.name());
    c.write(TimeStamp(10), samples(t, p, &[10, 20, 30, 40])).await.unwrap();
    c.write(TimeStamp(50), samples(t, p, &[50])).await.unwrap();
    let last = c.read_latest(&[p], 1).await.unwrap();
    assert_eq!(last.concat(p).unwrap().unwrap().as_slice::<f64>().unwrap(), &[25.0], "{}", b.name());
    // Across the two writes, indexes alongside; n = 0 reads one sample.
    let three = c.read_latest(&[p, t], 3).await.unwrap();
    assert_eq!(three.concat(t).unwrap().unwrap().as_timestamps().unwrap(), &[30, 40, 50], "{}", b.name());
    assert_eq!(three.concat(p).unwrap().unwrap().as_slice::<f64>().unwrap(), &[15.0, 20.0, 25.0]);
    assert_eq!(c.read_latest(&[t], 0).await.unwrap().samples(t), 1);
    let all = c.read_latest(&[t], 1_000).await.unwrap();
    assert_eq!(all.samples(t), 5, "{}", b.name());
    // The iterator's errors: unknown and virtual channels.
    assert_eq!(code(c.read_latest(&[99_999], 1).await), "channel.not_found");
    let v = c.create_channels(vec![NewChannel::virtual_("latest_v", DataType::U8)], false).await.unwrap();
    assert!(c.read_latest(&[v[0].key], 1).await.is_err(), "{}", b.name());
}

async fn index_channels_join_their_data_channels(b: &Backend) {
    let c = &b.client;
    let (t, p) = index_and_data(c, "withidx").await;
    let q = c.create_channels(vec![NewChannel::data("withidx_q", DataType::I32, "withidx_t")], false).await.unwrap()[0].key;
    let (u, r) = index_and_data(c, "withidx2").await;
    let v = c.create_channels(vec![NewChannel::virtual_("withidx_v", DataType::U8)], false).await.unwrap()[0].key;
    let keys = |chans: Vec<telemetron::channel::Channel>| chans.iter().map(|c| c.key).collect::<Vec<_>>();
    let chans = c.channels(&[p.into(), q.into(), r.into(), v.into()]).await.unwrap();
    // Each missing index once, after the channels given, in order of first use.
    assert_eq!(keys(c.with_index_channels(chans).await.unwrap()), [p, q, r, v, t, u], "{}", b.name());
    // An index already present is not added again; an index alone stays alone.
    let chans = c.channels(&[t.into(), p.into()]).await.unwrap();
    assert_eq!(keys(c.with_index_channels(chans).await.unwrap()), [t, p]);
    assert_eq!(keys(c.with_index_channels(Vec::new()).await.unwrap()), Vec::<ChannelKey>::new());
    // A writer opened on the data channel writes the index with it.
    let with = c.with_index_channels(c.channels(&[p.into()]).await.unwrap()).await.unwrap();
    let mut w = c.open_writer(WriterConfig::new(TimeStamp(1), vec![p])).await.unwrap();
    assert!(w.write(&samples(with[1].key, with[0].key, &[1, 2])).await.unwrap().all_written());
    w.close().await.unwrap();
    assert_eq!(c.read(TimeRange::MAX, &[t]).await.unwrap().samples(t), 2, "{}", b.name());
}

/// A remote client that asks for compression (`ConnectOptions::compress`) reads, iterates
/// and streams exactly what a plain one does, and the node sends it fewer bytes: a read
/// answered with and without the header, byte counts compared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_asks_for_compression_gets_the_same_samples_in_fewer_bytes() {
    compression_scenario(Backend::remote().await).await;
}

/// The same through a cluster gateway: the read fans out to the leaseholder and the
/// iterator is relayed to it, and both still come back compressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_asks_for_compression_gets_fewer_bytes_through_a_gateway() {
    compression_scenario(Backend::cluster().await).await;
}

async fn compression_scenario(b: Backend) {
    let server = b.server.as_ref().unwrap();
    // Each client through a proxy that counts what the node sends it.
    let (via_plain, plain_bytes) = backends::counting_proxy(server.local_addr()).await;
    let (via_packed, packed_bytes) = backends::counting_proxy(server.local_addr()).await;
    let plain_client = telemetron::connect(&format!("http://{via_plain}"), telemetron::ConnectOptions::default()).await.unwrap();
    let packed = telemetron::connect(&format!("http://{via_packed}"), telemetron::ConnectOptions { compress: true, ..Default::default() })
        .await
        .unwrap();
    let (t, p) = index_and_data(&b.client, "wire").await;
    let n = 50_000usize;
    let ts: Vec<i64> = (0..n as i64).map(|i| 1_000 + i * 1_000).collect();
    // A pressure through a 16-bit ADC: what Pcodec shrinks by far.
    let adc: Vec<f64> = (0..n).map(|i| ((i as f64 * 0.001).sin() * 20_000.0 + 32_768.0).round() * (100.0 / 65_535.0)).collect();
    let frame = Frame::new().with(t, Series::timestamps(ts.clone())).with(p, Series::from_vec(adc.clone()));
    b.client.write(TimeStamp(1_000), frame.clone()).await.unwrap();

    let count = |c: &std::sync::atomic::AtomicU64| c.load(std::sync::atomic::Ordering::Relaxed);
    let (p0, c0) = (count(&plain_bytes), count(&packed_bytes));
    let plain = plain_client.read(TimeRange::MAX, &[t, p]).await.unwrap();
    let got = packed.read(TimeRange::MAX, &[t, p]).await.unwrap();
    // The option is what made the difference: the same read, a tenth of the bytes or less.
    let (sent_plain, sent_packed) = (count(&plain_bytes) - p0, count(&packed_bytes) - c0);
    assert!(sent_plain >= (n * 16) as u64, "the plain read sent {sent_plain} bytes");
    assert!(sent_packed * 10 < sent_plain, "the compressed read sent {sent_packed} bytes, the plain one {sent_plain}");
    assert_eq!(got.concat(p).unwrap().unwrap().as_slice::<f64>().unwrap(), &adc[..]);
    assert_eq!(got.concat(t).unwrap().unwrap().as_timestamps().unwrap(), &ts[..]);
    for k in [t, p] {
        let (a, b) = (plain.get(k).next().unwrap(), got.get(k).next().unwrap());
        assert_eq!((a.time_range(), a.alignment()), (b.time_range(), b.alignment()), "alignment and range survive");
    }

    // The same read by hand: the node compresses only when asked.
    let addr = server.local_addr();
    let body = serde_json::json!({"range": {"start": 0, "end": i64::MAX}, "keys": [t, p]}).to_string();
    let (s1, raw) = backends::raw::post_bytes(addr, "/api/v1/frames/read", &[("telemetron-protocol", "1")], body.as_bytes()).await;
    let (s2, small) = backends::raw::post_bytes(
        addr,
        "/api/v1/frames/read",
        &[("telemetron-protocol", "1"), ("telemetron-compress", "1")],
        body.as_bytes(),
    )
    .await;
    assert_eq!((s1, s2), (200, 200));
    assert_eq!(raw.len(), n * 16 + 16 + 2 * 48, "raw: the samples and the headers");
    assert!(small.len() * 10 < raw.len(), "compressed: {} bytes for {}", small.len(), raw.len());
    assert!(telemetron::protocol::codec::decode(bytes::Bytes::from(small.clone())).is_err(), "a plain decoder refuses it");
    assert_eq!(telemetron::protocol::codec::decode_compressed(bytes::Bytes::from(small)).unwrap(), plain);

    // Iterator steps decode the same, in a tenth of the bytes.
    let iterate = |c: telemetron::Client| async move {
        let mut it = c.open_iterator(IteratorConfig { chunk_size: 20_000, ..IteratorConfig::new(TimeRange::MAX, vec![p]) }).await.unwrap();
        assert!(it.seek_first().await.unwrap());
        let mut seen = Vec::new();
        while it.next(IterSpan::Auto).await.unwrap() {
            seen.extend_from_slice(it.take_value().concat(p).unwrap().unwrap().as_slice::<f64>().unwrap());
        }
        seen
    };
    let (p0, c0) = (count(&plain_bytes), count(&packed_bytes));
    assert_eq!(iterate(plain_client.clone()).await, adc);
    assert_eq!(iterate(packed.clone()).await, adc);
    let (sent_plain, sent_packed) = (count(&plain_bytes) - p0, count(&packed_bytes) - c0);
    assert!(sent_plain >= (n * 8) as u64, "the plain iterator sent {sent_plain} bytes");
    assert!(sent_packed * 10 < sent_plain, "the compressed iterator sent {sent_packed} bytes, the plain one {sent_plain}");

    // Streamed frames decode the same.
    let mut s = packed.open_streamer(StreamerConfig::new(vec![t, p])).await.unwrap();
    let later = Frame::new()
        .with(t, Series::timestamps(ts.iter().map(|x| x + n as i64 * 1_000).collect()))
        .with(p, Series::from_vec(adc.iter().rev().copied().collect::<Vec<f64>>()));
    b.client.write(TimeStamp(ts[n - 1] + 1_000), later.clone()).await.unwrap();
    let live = s_next(&mut s).await.unwrap();
    assert_eq!(live.concat(p).unwrap(), later.concat(p).unwrap());
    assert_eq!(live.concat(t).unwrap(), later.concat(t).unwrap());
    s.close().await;
}

on_both!(
    large_frames_and_late_errors,
    channels_crud,
    ranges_and_metadata,
    child_ranges_labels_and_queries,
    write_and_read_every_data_type,
    iterator_walks_chunks,
    writer_validation_errors,
    control_arbitration_and_reports,
    streamer_receives_updates_lags_and_closes,
    a_streamer_backlog_arrives_whole_and_in_order,
    control_state_channel,
    handoffs_racing_writes_are_reported,
    confirmed_writes_say_what_took_effect,
    deletes,
    read_latest_gives_the_last_samples,
    index_channels_join_their_data_channels,
);
