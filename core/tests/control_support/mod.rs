//! Helpers shared by the control integration tests: valves (an index plus a command
//! channel), writers at an authority, and decoding of control-channel messages.
#![allow(dead_code)]

use crate::common::read_ts;
use serde_json::Value;
use telemetron::Engine;
use telemetron::channel::{ChannelKey, Concurrency, NewChannel};
use telemetron::control::{Authority, State, Transfer};
use telemetron::framer::{WriteReport, Writer, WriterConfig};
use telemetron::relay::Streamer;
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};

/// A valve: an index channel and one `u32` command channel on it.
#[derive(Debug, Clone, Copy)]
pub struct Valve {
    pub idx: ChannelKey,
    pub cmd: ChannelKey,
}

pub fn valve(engine: &Engine, name: &str, concurrency: Concurrency) -> Valve {
    let t = format!("{name}_time");
    let chans = engine
        .create_channels(vec![
            NewChannel::index(t.clone()).with_concurrency(concurrency),
            NewChannel::data(name, DataType::U32, t).with_concurrency(concurrency),
        ])
        .unwrap();
    Valve { idx: chans[0].key, cmd: chans[1].key }
}

pub fn cfg(start: i64, keys: Vec<ChannelKey>, authority: Authority, name: &str) -> WriterConfig {
    WriterConfig::new(TimeStamp(start), keys).authority(authority).name(name)
}

/// Open a writer on `v.cmd` (its index is added) at `authority`.
pub fn writer(engine: &Engine, v: Valve, start: i64, authority: Authority, name: &str) -> Writer {
    engine.open_writer(cfg(start, vec![v.cmd], authority, name)).unwrap()
}

pub fn cmd_frame(v: Valve, ts: &[i64], vals: &[u32]) -> Frame {
    Frame::new().with(v.idx, Series::timestamps(ts.to_vec())).with(v.cmd, Series::from_vec(vals.to_vec()))
}

/// Write one sample (timestamp `t`, value `val`).
pub fn put(w: &mut Writer, v: Valve, t: i64, val: u32) -> WriteReport {
    w.write(&cmd_frame(v, &[t], &[val])).unwrap()
}

/// Assert a report says everything was written.
#[track_caller]
pub fn assert_written(r: &WriteReport) {
    assert!(r.all_written(), "expected everything written, got unauthorized {:?}", r.unauthorized);
}

/// Assert a report says both the command and its index were not written.
#[track_caller]
pub fn assert_blocked(r: &WriteReport, v: Valve) {
    let mut u = r.unauthorized.clone();
    u.sort_unstable();
    let mut want = vec![v.idx, v.cmd];
    want.sort_unstable();
    assert_eq!(u, want, "expected idx and cmd unauthorized");
}

/// Stored (timestamps, values) of a valve over everything.
pub fn stored(engine: &Engine, v: Valve) -> (Vec<i64>, Vec<u32>) {
    let ts = read_ts(engine, TimeRange::MAX, v.idx);
    let f = engine.read(TimeRange::MAX, &[v.cmd]).unwrap();
    let vals = f.concat(v.cmd).unwrap().map(|s| s.as_slice::<u32>().unwrap().to_vec()).unwrap_or_default();
    (ts, vals)
}

pub fn holder(engine: &Engine, key: ChannelKey) -> Option<String> {
    let s = engine.control_states(&[key]);
    assert!(s.len() <= 1, "one region expected: {s:?}");
    s.first().map(|s| s.subject.name.clone())
}

/// Control-channel messages queued for `s` (each a JSON object).
pub fn control_msgs(s: &mut Streamer) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(Some(f)) = s.try_recv() {
        for series in f.series() {
            for i in 0..series.len() {
                out.push(serde_json::from_str(series.value_str(i).unwrap()).unwrap());
            }
        }
    }
    out
}

pub fn transfers(msg: &Value) -> Vec<Transfer> {
    serde_json::from_value(msg["transfers"].clone()).unwrap()
}

/// (from name, to name, resource) of a transfer.
pub fn t3(t: &Transfer) -> (Option<String>, Option<String>, ChannelKey) {
    let name = |s: &Option<State>| s.as_ref().map(|s| s.subject.name.clone());
    (name(&t.from), name(&t.to), t.from.as_ref().or(t.to.as_ref()).unwrap().resource)
}

/// All transfers of the queued messages, sorted, skipping snapshots.
pub fn queued_transfers(s: &mut Streamer) -> Vec<(Option<String>, Option<String>, ChannelKey)> {
    let mut out: Vec<_> = control_msgs(s).iter().filter(|m| m.get("snapshot").is_none()).flat_map(transfers).map(|t| t3(&t)).collect();
    out.sort();
    out
}

pub fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

pub fn who(x: &str) -> Option<String> {
    Some(x.to_string())
}
