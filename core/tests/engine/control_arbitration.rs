//! Control arbitration with real writers: the four rules of RFC 14, unauthorized reports
//! and errors, index authority following data channels, the RFC 14 §5.1 domain problem,
//! transfers on the control channel, and back-fill regions. Races are in control_races.rs.

use crate::common;
use crate::control_support;

use common::{open, reopen};
use control_support::*;
use serde_json::Value;
use std::time::Duration;
use telemetron::Engine;
use telemetron::channel::{Concurrency, NewChannel};
use telemetron::framer::{WriteReport, Writer};
use telemetron::relay::StreamerConfig;
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};

#[test]
fn higher_authority_blocks_lower_and_takes_control_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let v = valve(&engine, "valve", Concurrency::Exclusive);
    let mut a = writer(&engine, v, 0, 10, "A");
    assert!(a.has_control(v.cmd) && a.has_control(v.idx));
    assert_written(&put(&mut a, v, 100, 1));

    // Rule 1: a lower authority is blocked.
    let mut low = writer(&engine, v, 0, 5, "low");
    assert!(!low.has_control(v.cmd) && !low.has_control(v.idx));
    assert_blocked(&put(&mut low, v, 110, 666), v);
    assert_written(&put(&mut a, v, 120, 2));
    assert_eq!(holder(&engine, v.cmd), who("A"));

    // Rule 2: a higher authority takes control on open.
    let mut h = writer(&engine, v, 0, 200, "H");
    assert!(h.has_control(v.cmd) && !a.has_control(v.cmd) && !low.has_control(v.cmd));
    assert_eq!(holder(&engine, v.cmd), who("H"));
    assert_eq!(holder(&engine, v.idx), who("H"));
    assert_blocked(&put(&mut a, v, 130, 667), v);
    assert_written(&put(&mut h, v, 140, 3));
    assert_blocked(&put(&mut low, v, 150, 668), v);
    h.close().unwrap();
    // Back to A (next highest), never to `low`.
    assert_written(&put(&mut a, v, 160, 4));
    assert_blocked(&put(&mut low, v, 170, 669), v);
    a.close().unwrap();
    assert_written(&put(&mut low, v, 180, 5));
    low.close().unwrap();
    assert_eq!(stored(&engine, v), (vec![100, 120, 140, 160, 180], vec![1, 2, 3, 4, 5]));
    assert!(engine.control_states(&[]).is_empty(), "every gate released");
}

#[test]
fn release_passes_to_the_next_highest_and_ties_to_the_earliest_opened() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let v = valve(&engine, "valve", Concurrency::Exclusive);
    let mut ws: Vec<(String, Writer)> = Vec::new();
    for (name, auth) in [("e1", 4), ("top", 9), ("mid", 6), ("e2", 4), ("e3", 4)] {
        ws.push((name.to_string(), writer(&engine, v, 0, auth, name)));
    }
    let mut t = 0;
    let mut expect_order = Vec::new();
    // Close the holder each round; control must go top, mid, e1, e2, e3.
    for want in ["top", "mid", "e1", "e2", "e3"] {
        assert_eq!(holder(&engine, v.cmd).as_deref(), Some(want));
        assert_eq!(holder(&engine, v.idx).as_deref(), Some(want));
        for (name, w) in &mut ws {
            t += 10;
            let r = put(w, v, t, t as u32);
            if name == want {
                assert_written(&r);
                expect_order.push(t);
            } else {
                assert_blocked(&r, v);
            }
        }
        let i = ws.iter().position(|(n, _)| n == want).unwrap();
        ws.remove(i).1.close().unwrap();
    }
    assert!(engine.control_states(&[v.cmd, v.idx]).is_empty());
    assert_eq!(stored(&engine, v).0, expect_order);
}

#[test]
fn lowering_authority_hands_control_on() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let v = valve(&engine, "valve", Concurrency::Exclusive);
    let mut a = writer(&engine, v, 0, 50, "A");
    let mut b = writer(&engine, v, 0, 20, "B");
    assert!(a.has_control(v.cmd) && !b.has_control(v.cmd));
    a.set_authority(10).unwrap();
    assert!(!a.has_control(v.cmd) && b.has_control(v.cmd) && b.has_control(v.idx));
    assert_blocked(&put(&mut a, v, 10, 1), v);
    assert_written(&put(&mut b, v, 20, 2));
    b.set_authority(10).unwrap(); // equal: B keeps it (exclusive, first holder keeps)
    assert!(b.has_control(v.cmd) && !a.has_control(v.cmd));
    b.set_authority(9).unwrap();
    assert!(a.has_control(v.cmd) && a.has_control(v.idx) && !b.has_control(v.cmd));
    assert_written(&put(&mut a, v, 30, 3));
    drop(a); // dropping releases too
    assert!(b.has_control(v.cmd));
    assert_written(&put(&mut b, v, 40, 4));
    b.close().unwrap();
    assert_eq!(stored(&engine, v), (vec![20, 30, 40], vec![2, 3, 4]));
}

#[test]
fn exclusive_keeps_the_first_equal_shared_lets_all_equals_write() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let ex = valve(&engine, "ex", Concurrency::Exclusive);
    let sh = valve(&engine, "sh", Concurrency::Shared);

    let mut a = writer(&engine, ex, 0, 7, "A");
    let mut b = writer(&engine, ex, 0, 7, "B");
    assert_written(&put(&mut a, ex, 1, 1));
    assert_blocked(&put(&mut b, ex, 2, 2), ex);
    assert_written(&put(&mut a, ex, 3, 3));
    a.close().unwrap();
    assert_written(&put(&mut b, ex, 4, 4));
    b.close().unwrap();
    assert_eq!(stored(&engine, ex), (vec![1, 3, 4], vec![1, 3, 4]));

    let mut x = writer(&engine, sh, 0, 7, "X");
    let mut y = writer(&engine, sh, 0, 7, "Y");
    let mut z = writer(&engine, sh, 0, 3, "Z");
    assert!(x.has_control(sh.cmd) && y.has_control(sh.cmd) && !z.has_control(sh.cmd));
    for t in 0..6 {
        let w = if t % 2 == 0 { &mut x } else { &mut y };
        assert_written(&put(w, sh, 10 + t, t as u32));
        assert_blocked(&put(&mut z, sh, 100 + t, 999), sh);
    }
    // A higher writer blocks every equal below it.
    let mut h = writer(&engine, sh, 0, 8, "H");
    assert_blocked(&put(&mut x, sh, 20, 999), sh);
    assert_blocked(&put(&mut y, sh, 21, 999), sh);
    assert_written(&put(&mut h, sh, 22, 22));
    h.close().unwrap();
    assert_written(&put(&mut y, sh, 23, 23));
    assert_written(&put(&mut x, sh, 24, 24));
    for w in [x, y, z] {
        w.close().unwrap();
    }
    assert_eq!(stored(&engine, sh), (vec![10, 11, 12, 13, 14, 15, 22, 23, 24], vec![0, 1, 2, 3, 4, 5, 22, 23, 24]));
}

#[test]
fn write_reports_list_unauthorized_channels_and_err_on_unauthorized_fails_whole() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let v = valve(&engine, "valve", Concurrency::Exclusive);
    let light = engine.create_channel(NewChannel::virtual_("light", DataType::U8)).unwrap().key;
    let mut st = engine.open_streamer(StreamerConfig::new(vec![v.cmd, light])).unwrap();

    // A writer of the valve and a virtual channel; a higher writer takes only the valve.
    let mut a = engine.open_writer(cfg(0, vec![v.cmd, light], 10, "A")).unwrap();
    let mut h = writer(&engine, v, 0, 100, "H");
    let f = cmd_frame(v, &[5], &[1]).with(light, Series::from_vec(vec![1u8]));
    let r = a.write(&f).unwrap();
    assert_blocked(&r, v);
    assert!(!r.unauthorized.contains(&light), "the virtual channel is still A's");
    // Only the authorized part was streamed.
    let got = st.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    assert_eq!(got.keys(), &[light]);
    // The holder's write reports nothing.
    assert_eq!(put(&mut h, v, 6, 6), WriteReport::default());
    assert!(st.recv_timeout(Duration::from_secs(10)).unwrap().unwrap().contains(v.cmd));

    // err_on_unauthorized: the write fails and nothing of it is stored or streamed.
    let mut strict = engine.open_writer(cfg(0, vec![v.cmd, light], 150, "strict").err_on_unauthorized(true)).unwrap();
    assert_written(&strict.write(&cmd_frame(v, &[7], &[7]).with(light, Series::from_vec(vec![7u8]))).unwrap());
    st.recv_timeout(Duration::from_secs(10)).unwrap().unwrap();
    let mut top = writer(&engine, v, 0, 250, "top");
    let err = strict.write(&cmd_frame(v, &[8], &[8]).with(light, Series::from_vec(vec![8u8]))).unwrap_err();
    assert_eq!(err.code(), "control.unauthorized", "{err}");
    let msg = err.to_string();
    assert!(msg.contains("valve"), "names the channels: {msg}");
    assert!(matches!(st.try_recv(), Ok(None)), "nothing of the failed write was streamed");
    // A frame of only channels it controls still works.
    assert_written(&strict.write(&Frame::new().with(light, Series::from_vec(vec![9u8]))).unwrap());
    assert_written(&put(&mut top, v, 9, 9));
    // Opening with err_on_unauthorized while blocked fails and leaves control unchanged.
    let err = engine.open_writer(cfg(0, vec![v.cmd], 1, "late").err_on_unauthorized(true)).unwrap_err();
    assert_eq!(err.code(), "control.unauthorized");
    assert_eq!(holder(&engine, v.cmd), who("top"));
    for w in [a, h, strict, top] {
        w.close().unwrap();
    }
    assert_eq!(stored(&engine, v), (vec![6, 7, 9], vec![6, 7, 9]));
    assert!(engine.control_states(&[]).is_empty());
}

#[test]
fn index_authority_follows_the_data_channel() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let v = valve(&engine, "valve_cmd", Concurrency::Exclusive);
    let mut a = writer(&engine, v, 0, 10, "A");
    let mut b = writer(&engine, v, 0, 5, "B");
    assert!(a.channels().iter().any(|c| c.key == v.idx), "index auto-added");
    assert!(a.has_control(v.cmd) && !b.has_control(v.cmd) && !b.has_control(v.idx));

    b.set_authorities(&[(v.cmd, 200)]).unwrap();
    assert!(b.has_control(v.cmd), "B controls valve_cmd");
    assert!(b.has_control(v.idx), "B controls valve_cmd's index too");
    assert!(!a.has_control(v.cmd) && !a.has_control(v.idx));
    let states = engine.control_states(&[v.cmd, v.idx]);
    assert_eq!(states.len(), 2);
    assert!(states.iter().all(|s| s.subject.name == "B" && s.authority == 200), "{states:?}");

    assert_written(&put(&mut b, v, 10, 1));
    assert_blocked(&put(&mut a, v, 20, 2), v);
    assert_written(&put(&mut b, v, 30, 3));

    // The same when the index is listed explicitly at a low authority.
    let mut c = engine.open_writer(cfg(0, vec![v.cmd, v.idx], 1, "C")).unwrap();
    c.set_authorities(&[(v.cmd, 220)]).unwrap();
    assert!(c.has_control(v.cmd) && c.has_control(v.idx) && !b.has_control(v.idx));
    assert_written(&put(&mut c, v, 40, 4));
    // Lowering the data channel lowers the index with it: back to B.
    c.set_authorities(&[(v.cmd, 1)]).unwrap();
    assert!(b.has_control(v.cmd) && b.has_control(v.idx) && !c.has_control(v.idx));
    assert_written(&put(&mut b, v, 50, 5));
    assert_eq!(c.set_authorities(&[(12_345, 1)]).unwrap_err().code(), "control.unknown_channel");
    for w in [a, b, c] {
        w.close().unwrap();
    }
    assert_eq!(stored(&engine, v), (vec![10, 30, 40, 50], vec![1, 3, 4, 5]));
}

/// RFC 14 §5.1: A writes and commits; B takes control, writes, commits, closes; A resumes
/// with later timestamps. Nothing may overlap and every sample must read back in order.
#[test]
fn rfc14_domain_problem_control_handoff_and_back() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let v = valve(&engine, "valve", Concurrency::Exclusive);
    let mut a = engine.open_writer(cfg(1_000, vec![v.cmd], 1, "A").auto_commit(false)).unwrap();
    let mut want_ts = Vec::new();
    let mut want_v = Vec::new();
    let phase = |w: &mut Writer, t0: i64, n: i64, base: u32, ts: &mut Vec<i64>, vals: &mut Vec<u32>| {
        for i in 0..n {
            let t = t0 + i * 10;
            assert_written(&put(w, v, t, base + i as u32));
            ts.push(t);
            vals.push(base + i as u32);
        }
        w.commit().unwrap();
    };
    // 1. A writes and commits.
    phase(&mut a, 1_000, 10, 0, &mut want_ts, &mut want_v);
    // 2. B (authority 2) opens on the same channel, takes control, writes and commits.
    let mut b = engine.open_writer(cfg(1_100, vec![v.cmd], 2, "B").auto_commit(false)).unwrap();
    assert!(b.has_control(v.cmd) && !a.has_control(v.cmd));
    assert_blocked(&put(&mut a, v, 1_095, 999), v);
    phase(&mut b, 1_100, 10, 100, &mut want_ts, &mut want_v);
    // 3. B closes: control goes back to A.
    b.close().unwrap();
    assert!(a.has_control(v.cmd) && a.has_control(v.idx));
    // 4. A resumes with later timestamps and commits: no error, no overlap.
    phase(&mut a, 1_300, 10, 200, &mut want_ts, &mut want_v);
    // Again, with a B that gives up without committing (its samples vanish).
    let mut b2 = engine.open_writer(cfg(1_400, vec![v.cmd], 2, "B2").auto_commit(false)).unwrap();
    assert_written(&put(&mut b2, v, 1_400, 777));
    assert_written(&put(&mut b2, v, 1_410, 778));
    b2.abort();
    assert!(a.has_control(v.cmd));
    phase(&mut a, 1_500, 5, 300, &mut want_ts, &mut want_v);
    // And a B that takes control while A has uncommitted samples.
    assert_written(&put(&mut a, v, 1_600, 400));
    let mut b3 = engine.open_writer(cfg(1_600, vec![v.cmd], 2, "B3").auto_commit(false)).unwrap();
    phase(&mut b3, 1_610, 3, 500, &mut want_ts, &mut want_v);
    b3.close().unwrap();
    a.commit().unwrap();
    want_ts.insert(want_ts.len() - 3, 1_600);
    want_v.insert(want_v.len() - 3, 400);
    phase(&mut a, 1_700, 3, 600, &mut want_ts, &mut want_v);
    let end = a.close().unwrap();
    assert_eq!(end, TimeStamp(1_721));

    let check = |engine: &Engine, want_ts: &[i64], want_v: &[u32]| {
        let (ts, vals) = stored(engine, v);
        assert!(ts.windows(2).all(|w| w[0] < w[1]), "strictly increasing: {ts:?}");
        assert_eq!(ts, want_ts);
        assert_eq!(vals, want_v, "A's early samples, B's, then A's later ones");
        // Sub-ranges line up too.
        let mid = TimeRange::new(TimeStamp(1_050), TimeStamp(1_350));
        let f = engine.read(mid, &[v.cmd]).unwrap();
        let got = f.concat(v.cmd).unwrap().unwrap();
        let want: Vec<u32> = want_ts.iter().zip(want_v).filter(|(t, _)| mid.contains(TimeStamp(**t))).map(|(_, x)| *x).collect();
        assert_eq!(got.as_slice::<u32>().unwrap(), want.as_slice());
        let last = *want_ts.last().unwrap();
        assert_eq!(engine.time_range(v.cmd).unwrap(), Some(TimeRange::new(TimeStamp(1_000), TimeStamp(last + 1))));
    };
    check(&engine, &want_ts, &want_v);
    let engine = reopen(engine);
    check(&engine, &want_ts, &want_v);
    // Writing on after the reopen continues the channel.
    let mut w = writer(&engine, v, 1_721, 1, "after");
    assert_written(&put(&mut w, v, 1_800, 900));
    w.close().unwrap();
    want_ts.push(1_800);
    want_v.push(900);
    check(&engine, &want_ts, &want_v);
}

#[test]
fn every_transfer_is_published_on_the_control_channel() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let v = valve(&engine, "valve", Concurrency::Exclusive);
    let ctl = engine.control_channel();
    assert!(engine.channels().get(ctl).unwrap().is_virtual());
    let mut s = engine.open_streamer(StreamerConfig::new(vec![ctl])).unwrap();
    let first = control_msgs(&mut s);
    assert_eq!(first.len(), 1);
    assert_eq!(first[0]["snapshot"], Value::Bool(true));
    assert!(transfers(&first[0]).is_empty(), "nobody holds anything yet");

    // Acquire.
    let mut a = writer(&engine, v, 0, 10, "A");
    assert_eq!(queued_transfers(&mut s), sorted(vec![(None, who("A"), v.cmd), (None, who("A"), v.idx)]));
    // A lower writer causes no transfer.
    let low = writer(&engine, v, 0, 1, "low");
    assert!(queued_transfers(&mut s).is_empty());
    // Handoff on open.
    let h = writer(&engine, v, 0, 200, "H");
    assert_eq!(queued_transfers(&mut s), sorted(vec![(who("A"), who("H"), v.cmd), (who("A"), who("H"), v.idx)]));
    let st = engine.control_states(&[v.cmd]);
    assert_eq!(st.len(), 1);
    assert_eq!((st[0].subject.name.as_str(), st[0].resource, st[0].authority), ("H", v.cmd, 200));

    // A new streamer of the control channel first receives the current holders.
    let mut late = engine.open_streamer(StreamerConfig::new(vec![ctl])).unwrap();
    let snap = control_msgs(&mut late);
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0]["snapshot"], Value::Bool(true));
    let held: Vec<_> = sorted(transfers(&snap[0]).iter().map(t3).collect());
    assert_eq!(held, sorted(vec![(None, who("H"), v.cmd), (None, who("H"), v.idx)]));
    let auths: Vec<u8> = transfers(&snap[0]).iter().map(|t| t.to.as_ref().unwrap().authority).collect();
    assert_eq!(auths, vec![200, 200]);

    // Handoff on close back to A, seen by both streamers.
    h.close().unwrap();
    let want = sorted(vec![(who("H"), who("A"), v.cmd), (who("H"), who("A"), v.idx)]);
    assert_eq!(queued_transfers(&mut s), want);
    assert_eq!(queued_transfers(&mut late), want);
    assert_eq!(holder(&engine, v.cmd), who("A"));

    // set_authority publishes its transfers.
    a.set_authority(0).unwrap();
    assert_eq!(queued_transfers(&mut s), sorted(vec![(who("A"), who("low"), v.cmd), (who("A"), who("low"), v.idx)]));
    a.set_authority(2).unwrap();
    assert_eq!(queued_transfers(&mut s), sorted(vec![(who("low"), who("A"), v.cmd), (who("low"), who("A"), v.idx)]));
    let st = engine.control_states(&[v.cmd]);
    assert_eq!(st[0].authority, 2);

    // Release: A closes (to `low`), then `low` closes (to nobody).
    a.close().unwrap();
    assert_eq!(queued_transfers(&mut s), sorted(vec![(who("A"), who("low"), v.cmd), (who("A"), who("low"), v.idx)]));
    drop(low);
    assert_eq!(queued_transfers(&mut s), sorted(vec![(who("low"), None, v.cmd), (who("low"), None, v.idx)]));
    assert!(engine.control_states(&[]).is_empty());

    // Adding the control channel to an existing streamer delivers the snapshot first.
    let w = writer(&engine, v, 0, 42, "W");
    let light = engine.create_channel(NewChannel::virtual_("light", DataType::U8)).unwrap().key;
    let mut other = engine.open_streamer(StreamerConfig::new(vec![light])).unwrap();
    other.update_channels(vec![light, ctl]).unwrap();
    let snap = control_msgs(&mut other);
    assert_eq!(snap.len(), 1);
    assert_eq!(snap[0]["snapshot"], Value::Bool(true));
    assert_eq!(sorted(transfers(&snap[0]).iter().map(t3).collect()), sorted(vec![(None, who("W"), v.cmd), (None, who("W"), v.idx)]));
    drop(w);
    assert_eq!(queued_transfers(&mut other), sorted(vec![(who("W"), None, v.cmd), (who("W"), None, v.idx)]));
}

#[test]
fn a_bounded_backfill_writer_does_not_contend_with_a_live_one() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let v = valve(&engine, "valve", Concurrency::Exclusive);
    let mut live = writer(&engine, v, 10_000, 200, "live");
    let mut fill = engine.open_writer(cfg(0, vec![v.cmd], 1, "fill").end(TimeStamp(5_000))).unwrap();
    assert!(live.has_control(v.cmd) && live.has_control(v.idx));
    assert!(fill.has_control(v.cmd) && fill.has_control(v.idx), "disjoint regions: both authorized");
    assert_eq!(engine.control_states(&[v.cmd]).len(), 2, "one holder per region");
    for i in 0..5 {
        assert_written(&put(&mut live, v, 10_000 + i * 10, 1_000 + i as u32));
        assert_written(&put(&mut fill, v, i * 10, i as u32));
    }
    // The back-fill writer cannot write past its end.
    assert!(fill.write(&cmd_frame(v, &[5_000], &[9])).is_err());
    // A second live writer does contend with the live one, not with the back-fill.
    let mut live2 = writer(&engine, v, 20_000, 100, "live2");
    assert!(!live2.has_control(v.cmd) && fill.has_control(v.cmd));
    assert_blocked(&put(&mut live2, v, 20_000, 5), v);
    fill.close().unwrap();
    live.close().unwrap();
    live2.close().unwrap();
    let (ts, vals) = stored(&engine, v);
    assert_eq!(ts, vec![0, 10, 20, 30, 40, 10_000, 10_010, 10_020, 10_030, 10_040]);
    assert_eq!(vals, vec![0, 1, 2, 3, 4, 1_000, 1_001, 1_002, 1_003, 1_004]);
}

#[test]
fn virtual_command_channels_are_exclusive_unless_created_shared() {
    // Two sequences at equal authority must never both command the same valve.
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path());
    let cmd = engine.create_channel(NewChannel::virtual_("valve_cmd", DataType::U8)).unwrap();
    assert_eq!(cmd.concurrency, Concurrency::Exclusive);
    let open_seq = |name: &str| {
        let cfg = telemetron::framer::WriterConfig::new(TimeStamp(0), vec![cmd.key]).authority(100).name(name);
        engine.open_writer(cfg).unwrap()
    };
    let mut first = open_seq("sequence 1");
    let mut second = open_seq("sequence 2");
    assert!(first.has_control(cmd.key) && !second.has_control(cmd.key));
    let one = Frame::new().with(cmd.key, Series::from_vec(vec![1u8]));
    assert!(first.write(&one).unwrap().all_written());
    assert_eq!(second.write(&one).unwrap().unauthorized, vec![cmd.key]);
    first.close().unwrap();
    assert!(second.has_control(cmd.key), "released control passes to the waiting equal");
    second.close().unwrap();
    // Shared is an explicit choice, and then equals write side by side.
    let log = engine.create_channel(NewChannel::virtual_("events", DataType::U8).with_concurrency(Concurrency::Shared)).unwrap();
    let cfg = |n: &str| telemetron::framer::WriterConfig::new(TimeStamp(0), vec![log.key]).authority(100).name(n);
    let (a, b) = (engine.open_writer(cfg("a")).unwrap(), engine.open_writer(cfg("b")).unwrap());
    assert!(a.has_control(log.key) && b.has_control(log.key));
    // The engine's own control-state channel stays shared.
    assert_eq!(engine.channels().get(engine.control_channel()).unwrap().concurrency, Concurrency::Shared);
}
