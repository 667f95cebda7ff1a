//! Control across nodes: arbitration at the leaseholder, and a node cut off from etcd
//! keeping its control while its lease lasts.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_of_a_channel_is_arbitrated_at_its_leaseholder_for_writers_on_every_node() {
    // RFC 14's handoff with the two writers on different nodes: a sequence on daq-1 holds a
    // valve stored on daq-2 at authority 100; an operator on daq-3 takes it at 200, and the
    // sequence gets it back when the operator lets go.
    let cl = cluster();
    let (c1, c2, c3) = (client(&cl.nodes[0]).await, client(&cl.nodes[1]).await, client(&cl.nodes[2]).await);
    let cmd = c2.create_channels(vec![NewChannel::virtual_("valve_cmd", DataType::U8)], false).await.unwrap()[0].key;
    for c in [&c1, &c3] {
        eventually(10, "the mirror", || async { c.channel(cmd).await.ok() }).await;
    }
    let config = |a: u8, name: &str| telemetron::framer::WriterConfig {
        authorities: vec![a],
        name: name.into(),
        ..telemetron::framer::WriterConfig::new(TimeStamp(0), vec![cmd])
    };
    // Every node's control channel shows the transfers, wherever they are decided.
    let mut watchers = Vec::new();
    for c in [&c1, &c3] {
        watchers.push(c.open_streamer(StreamerConfig::new(vec![c.control_channel().await.unwrap()])).await.unwrap());
    }
    let mut seq = c1.open_writer(config(100, "sequence")).await.unwrap();
    assert!(seq.has_control(cmd));
    let mut op = c3.open_writer(config(200, "operator")).await.unwrap();
    assert!(op.has_control(cmd));
    let one = Frame::new().with(cmd, Series::from_vec(vec![1u8]));
    // The sequence's command is now dropped, and it is told so.
    // (Dropped by daq-2, or refused at once if its notice crossed daq-1 first.)
    let report = seq.write_confirmed(&one).await.unwrap();
    assert_eq!(report.not_written(), vec![cmd]);
    assert!(!seq.has_control(cmd));
    assert!(op.write_confirmed(&one).await.unwrap().unauthorized.is_empty());
    // The leaseholder's control state names the operator, asked of any node.
    for c in [&c1, &c2, &c3] {
        let states = c.control_states(&[cmd]).await.unwrap();
        assert_eq!(states.iter().find(|s| s.resource == cmd).map(|s| s.authority), Some(200), "{states:?}");
    }
    op.close().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(seq.write_confirmed(&one).await.unwrap().unauthorized.is_empty() && seq.has_control(cmd)) {
        assert!(Instant::now() < deadline, "control did not come back to the sequence");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let who = |n: &str| Some(n.to_string());
    for w in &mut watchers {
        let seen = control_transfers_until(w, &[(who("sequence"), who("operator"), cmd), (who("operator"), who("sequence"), cmd)]).await;
        // The first acquisition may have come as part of daq-2's snapshot, as an acquire.
        assert!(seen.contains(&(None, who("sequence"), cmd)), "{seen:?}");
    }
    // A control channel opened now starts with a snapshot that includes daq-2's holder.
    let mut late = c3.open_streamer(StreamerConfig::new(vec![c3.control_channel().await.unwrap()])).await.unwrap();
    let snap = control_messages(&mut late, 1).await;
    assert_eq!(snap[0]["snapshot"], serde_json::Value::Bool(true), "{snap:?}");
    let holders: Vec<&str> = snap[0]["transfers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["to"]["resource"] == cmd)
        .filter_map(|t| t["to"]["subject"]["name"].as_str())
        .collect();
    assert_eq!(holders, vec!["sequence"], "{snap:?}");
    seq.close().await.unwrap();
}

/// Messages of the control channel that `s` streams, until `want` of them arrived or 10 s
/// passed.
async fn control_messages(s: &mut telemetron::client::ClientStreamer, want: usize) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while out.len() < want && Instant::now() < deadline {
        let Some(f) = s.next_timeout(Duration::from_millis(100)).await.unwrap() else { continue };
        for series in f.series() {
            out.extend((0..series.len()).map(|i| serde_json::from_str::<serde_json::Value>(series.value_str(i).unwrap()).unwrap()));
        }
    }
    out
}

type Moved = (Option<String>, Option<String>, ChannelKey);

/// (from, to, channel) subject names of the transfers in control messages, snapshots left out.
fn moves(msgs: &[serde_json::Value]) -> Vec<Moved> {
    let name = |v: &serde_json::Value| v["subject"]["name"].as_str().map(str::to_string);
    msgs.iter()
        .filter(|m| m.get("snapshot").is_none())
        .flat_map(|m| m["transfers"].as_array().unwrap().clone())
        .map(|t| (name(&t["from"]), name(&t["to"]), t["from"]["resource"].as_u64().or(t["to"]["resource"].as_u64()).unwrap() as ChannelKey))
        .collect()
}

/// The transfers `s` streams, until `want` of them arrived or 10 s passed.
async fn control_transfers(s: &mut telemetron::client::ClientStreamer, want: usize) -> Vec<Moved> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while out.len() < want && Instant::now() < deadline {
        out.extend(moves(&control_messages(s, 1).await));
    }
    out
}

/// The transfers `s` streams, until every one of `expected` was among them (10 s at most).
async fn control_transfers_until(s: &mut telemetron::client::ClientStreamer, expected: &[Moved]) -> Vec<Moved> {
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !expected.iter().all(|e| out.contains(e)) {
        assert!(Instant::now() < deadline, "transfers {expected:?} not all seen; got {out:?}");
        out.extend(moves(&control_messages(s, 1).await));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_etcd_keeps_control_while_its_lease_lasts_then_fails_safe() {
    let mut cl = cluster();
    let c2 = client(&cl.nodes[1]).await;
    let cmd = c2.create_channels(vec![NewChannel::virtual_("press_cmd", DataType::U8)], false).await.unwrap()[0].key;
    let config = |a: u8, name: &str| telemetron::framer::WriterConfig {
        authorities: vec![a],
        name: name.into(),
        ..telemetron::framer::WriterConfig::new(TimeStamp(0), vec![cmd])
    };
    let mut seq = c2.open_writer(config(100, "sequence")).await.unwrap();
    let one = Frame::new().with(cmd, Series::from_vec(vec![1u8]));
    assert!(seq.write_confirmed(&one).await.unwrap().unauthorized.is_empty());
    // A recording (a stored channel) on the same node: the default fence covers commands.
    let (rt, rv) = sensor(&c2, "chamber").await;
    let mut rec = c2.open_writer(telemetron::framer::WriterConfig::new(TimeStamp(0), vec![rt, rv])).await.unwrap();
    let ctl = c2.control_channel().await.unwrap();
    let mut watch = c2.open_streamer(StreamerConfig::new(vec![ctl])).await.unwrap();

    // Cut off: while the lease surely lasts (TTL 2 s, renewed every 2/3 s), the node keeps
    // arbitrating and the sequence keeps commanding.
    let cut = Instant::now();
    cl.etcd.stop();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(seq.write_confirmed(&one).await.unwrap().unauthorized.is_empty(), "control holds while the lease lasts");
    // Then it fails safe: the sequence is told it lost control, its commands are dropped,
    // and the release is published on the node's control channel.
    eventually(10, "the fence", || async { (!seq.has_control(cmd)).then_some(()) }).await;
    assert!(cut.elapsed() >= Duration::from_secs(1), "fenced after {:?}, before the lease could expire", cut.elapsed());
    assert_eq!(seq.write_confirmed(&one).await.unwrap().unauthorized, vec![cmd]);
    assert!(c2.control_states(&[cmd]).await.unwrap().is_empty());
    assert!(rec.write_confirmed(&samples(rt, rv, 1_000, 5)).await.unwrap().not_written().is_empty(), "recording goes on");
    rec.commit().await.unwrap();
    assert_eq!(values(&c2.read(TimeRange::MAX, &[rv]).await.unwrap(), rv).len(), 5);
    assert_eq!(control_transfers(&mut watch, 1).await, vec![(Some("sequence".to_string()), None, cmd)]);
    // No one takes control while the fence stands.
    let late = c2.open_writer(config(250, "late")).await.unwrap();
    assert!(!late.has_control(cmd));
    late.close().await.unwrap();

    // etcd back: the node rejoins under a new lease. A writer from before the fence does
    // not command again until it asks (sets its authority); then it does.
    cl.etcd.restart();
    eventually(20, "daq-2 to rejoin", || async { (status(&cl.etcd)["members"].as_array().unwrap().len() == 3).then_some(()) }).await;
    eventually(10, "the fence to lift", || async {
        let probe = c2.open_writer(config(1, "probe")).await.ok()?;
        let got = probe.has_control(cmd);
        probe.close().await.ok()?;
        got.then_some(())
    })
    .await;
    assert!(!seq.has_control(cmd), "a writer from before the fence stays out until it asks");
    seq.set_authority(100).await.unwrap();
    assert!(seq.has_control(cmd));
    assert!(seq.write_confirmed(&one).await.unwrap().unauthorized.is_empty());
    seq.close().await.unwrap();
    rec.close().await.unwrap();
}
