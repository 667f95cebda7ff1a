//! Data across nodes: reads fanned out, streamers fed by peer taps, writers and iterators
//! relayed to the leaseholder, a writer split per node.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_fan_out_and_streamers_receive_every_nodes_frames_through_peer_taps() {
    let cl = cluster();
    let (c1, c2, c3) = (client(&cl.nodes[0]).await, client(&cl.nodes[1]).await, client(&cl.nodes[2]).await);
    let (t2, v2) = sensor(&c2, "b").await;
    let (t3, v3) = sensor(&c3, "c").await;
    let (_, v1) = sensor(&c1, "a").await;
    eventually(10, "mirrors on daq-1", || async { (c1.channel(v2).await.is_ok() && c1.channel(v3).await.is_ok()).then_some(()) }).await;

    // A streamer on daq-1 of channels stored on daq-2 and daq-3.
    let mut s = c1.open_streamer(StreamerConfig::new(vec![v2, v3])).await.unwrap();
    // The peer taps open asynchronously: write until the first frame of each arrives.
    let (mut got2, mut got3) = (Vec::new(), Vec::new());
    let mut start = 1_000_000;
    let deadline = Instant::now() + Duration::from_secs(15);
    while got2.is_empty() || got3.is_empty() {
        assert!(Instant::now() < deadline, "frames of daq-2 ({}) and daq-3 ({}) did not both arrive", got2.len(), got3.len());
        c2.write(TimeStamp(start), samples(t2, v2, start, 10)).await.unwrap();
        c3.write(TimeStamp(start), samples(t3, v3, start, 10)).await.unwrap();
        start += 100_000;
        while let Some(f) = s.next_timeout(Duration::from_millis(100)).await.unwrap() {
            got2.extend(values(&f, v2));
            got3.extend(values(&f, v3));
            assert!(f.unique_keys().iter().all(|k| [v2, v3].contains(k)), "only the asked channels arrive");
        }
    }

    // Dynamic delta: drop daq-3's channel, add daq-1's own; daq-3's frames stop coming.
    s.update_channels(vec![v2, v1]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    while s.next_timeout(Duration::from_millis(50)).await.unwrap().is_some() {}
    let t1 = c1.channel("a_time").await.unwrap().key;
    c3.write(TimeStamp(start), samples(t3, v3, start, 5)).await.unwrap();
    c2.write(TimeStamp(start), samples(t2, v2, start, 5)).await.unwrap();
    c1.write(TimeStamp(start), samples(t1, v1, start, 5)).await.unwrap();
    let (mut n1, mut n2) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while (n1 < 5 || n2 < 5) && Instant::now() < deadline {
        if let Some(f) = s.next_timeout(Duration::from_millis(200)).await.unwrap() {
            assert!(f.get(v3).next().is_none(), "a channel dropped from the streamer still arrived");
            n1 += values(&f, v1).len();
            n2 += values(&f, v2).len();
        }
    }
    assert_eq!((n1, n2), (5, 5));
    s.close().await;

    // A read through daq-1 of all three nodes' channels returns each node's samples.
    let f = c1.read(TimeRange::MAX, &[v1, v2, v3]).await.unwrap();
    let direct = c2.read(TimeRange::MAX, &[v2]).await.unwrap();
    assert_eq!(values(&f, v2), values(&direct, v2));
    assert_eq!(values(&f, v3), values(&c3.read(TimeRange::MAX, &[v3]).await.unwrap(), v3));
    assert_eq!(values(&f, v1).len(), 5);
    assert_eq!(c1.time_range(v2).await.unwrap(), c2.time_range(v2).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_and_iterators_of_another_nodes_channels_run_at_their_leaseholder() {
    let cl = cluster();
    let (c1, c2, c3) = (client(&cl.nodes[0]).await, client(&cl.nodes[1]).await, client(&cl.nodes[2]).await);
    let (t2, v2) = sensor(&c2, "pump").await;
    let (t3, v3) = sensor(&c3, "valve").await;
    eventually(10, "mirrors on daq-1", || async { (c1.channel(v2).await.is_ok() && c1.channel(v3).await.is_ok()).then_some(()) }).await;

    // A one-shot write and a writer stream through daq-1 are stored on daq-2.
    c1.write(TimeStamp(1_000), samples(t2, v2, 1_000, 3)).await.unwrap();
    let mut w = c1.open_writer(telemetron::framer::WriterConfig::new(TimeStamp(100_000), vec![t2, v2])).await.unwrap();
    for i in 0..4 {
        let at = 100_000 + i * 10_000;
        assert!(w.write(&samples(t2, v2, at, 2)).await.unwrap().unauthorized.is_empty());
    }
    let end = w.close().await.unwrap();
    assert_eq!(end, TimeStamp(131_001));
    let on_owner = c2.read(TimeRange::MAX, &[v2]).await.unwrap();
    assert_eq!(values(&on_owner, v2).len(), 3 + 8);

    // An iterator through daq-3 walks daq-2's data.
    let mut it = c3.open_iterator(telemetron::framer::IteratorConfig::new(TimeRange::MAX, vec![v2])).await.unwrap();
    assert!(it.seek_first().await.unwrap());
    let mut walked = Vec::new();
    while it.next(telemetron::framer::IterSpan::Samples(4)).await.unwrap() {
        walked.extend(values(it.value(), v2));
    }
    assert_eq!(walked, values(&on_owner, v2));

    // An iterator of channels on two nodes walks both, positioned by its first channel's
    // index as on one node: through a node storing neither, and through the lead's node.
    c3.write(TimeStamp(1_500), samples(t3, v3, 1_500, 20)).await.unwrap();
    c3.write(TimeStamp(500_000), samples(t3, v3, 500_000, 2)).await.unwrap();
    let whole = c1.read(TimeRange::MAX, &[v2, v3]).await.unwrap();
    let (all2, all3) = (values(&whole, v2), values(&whole, v3));
    assert_eq!((all2.len(), all3.len()), (11, 22));
    for c in [&c1, &c2] {
        let config = telemetron::framer::IteratorConfig::new(TimeRange::MAX, vec![v2, v3]);
        let mut it = c.open_iterator(config.clone()).await.unwrap();
        assert!(it.seek_first().await.unwrap());
        let (mut got2, mut got3, mut steps) = (Vec::new(), Vec::new(), 0);
        while it.next(telemetron::framer::IterSpan::Samples(4)).await.unwrap() {
            got2.extend(values(it.value(), v2));
            got3.extend(values(it.value(), v3));
            steps += 1;
        }
        // 11 samples of the lead by 4: three views, the last reaching the bounds' end.
        assert_eq!((got2.as_slice(), got3.as_slice(), steps), (all2.as_slice(), all3.as_slice(), 3));
        // Backwards by time, from the end: the same samples, each once.
        assert!(it.seek_last().await.unwrap());
        let mut back3 = Vec::new();
        while it.prev(telemetron::framer::IterSpan::Time(telemetron::telem::TimeSpan(50_000))).await.unwrap() {
            let mut part = values(it.value(), v3);
            part.extend(back3);
            back3 = part;
        }
        // seek_last moves just past the lead's last sample (131 µs), so daq-3's samples after it
        // are not walked backwards, as on one node.
        assert_eq!(back3, all3[..20].to_vec());
        // seek_ge lands on the lead's next sample, then the view covers both nodes.
        assert!(it.seek_ge(TimeStamp(2_500)).await.unwrap());
        assert!(it.next(telemetron::framer::IterSpan::Samples(1)).await.unwrap());
        assert_eq!(values(it.value(), v2), vec![1_002.0]);
        assert_eq!(values(it.value(), v3), (2..20).map(|i| 1_500.0 + f64::from(i)).collect::<Vec<_>>());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_of_channels_on_several_nodes_is_split_and_committed_per_node() {
    let mut cl = cluster();
    let (c1, c2, c3) = (client(&cl.nodes[0]).await, client(&cl.nodes[1]).await, client(&cl.nodes[2]).await);
    let (t1, v1) = sensor(&c1, "a").await;
    let (t2, v2) = sensor(&c2, "b").await;
    let (t3, v3) = sensor(&c3, "c").await;
    eventually(10, "mirrors on daq-1", || async { (c1.channel(v2).await.is_ok() && c1.channel(v3).await.is_ok()).then_some(()) }).await;
    // Data already on daq-2 where the writer will later write: that node refuses the overlap.
    c2.write(TimeStamp(5_000_000), samples(t2, v2, 5_000_000, 3)).await.unwrap();

    // One writer through daq-1 of its own channel and of daq-2's and daq-3's, at 100.
    let config = telemetron::framer::WriterConfig {
        authorities: vec![100],
        auto_commit: false,
        ..telemetron::framer::WriterConfig::new(TimeStamp(1_000_000), vec![v1, v2, v3])
    };
    let mut w = c1.open_writer(config).await.unwrap();
    for k in [t1, v1, t2, v2, t3, v3] {
        assert!(w.has_control(k), "the writer controls {k} on its leaseholder");
    }
    let all = |at: i64, n: usize| {
        let mut f = samples(t1, v1, at, n);
        f.extend(samples(t2, v2, at, n));
        f.extend(samples(t3, v3, at, n));
        f
    };
    assert!(w.write(&all(1_000_000, 4)).await.unwrap().unauthorized.is_empty());
    // A frame of one node's channels goes to that node only.
    assert!(w.write(&samples(t3, v3, 2_000_000, 2)).await.unwrap().unauthorized.is_empty());
    let end = w.commit().await.unwrap();
    assert_eq!(end, TimeStamp(2_001_001), "the commit's end is the latest of the nodes'");
    for (c, v, n) in [(&c1, v1, 4), (&c2, v2, 3 + 4), (&c3, v3, 4 + 2)] {
        assert_eq!(values(&c.read(TimeRange::MAX, &[v]).await.unwrap(), v).len(), n, "each node stores its own share");
    }

    // An operator on daq-3 takes daq-3's channel: the spanning writer is told, keeps the
    // others, and its next frame is written without daq-3's share.
    let op_config =
        |a: u8| telemetron::framer::WriterConfig { authorities: vec![a], ..telemetron::framer::WriterConfig::new(TimeStamp(0), vec![v3]) };
    let op = c3.open_writer(op_config(200)).await.unwrap();
    eventually(10, "the authority notice", || async { (!w.has_control(v3)).then_some(()) }).await;
    assert!(w.has_control(v1) && w.has_control(v2));
    let report = w.write_confirmed(&all(3_000_000, 2)).await.unwrap();
    let mut lost = report.unauthorized.clone();
    lost.sort_unstable();
    assert_eq!(lost, {
        let mut l = vec![t3, v3];
        l.sort_unstable();
        l
    });
    op.close().await.unwrap();
    eventually(10, "control back", || async { w.has_control(v3).then_some(()) }).await;

    // A frame one node refuses (daq-2 already holds that time) is reported under the
    // client's write number on the next call; the other nodes' shares were written.
    w.write(&all(5_000_000, 2)).await.unwrap();
    let err = w.commit().await.unwrap_err();
    assert!(err.to_string().contains("b_time"), "the node's own error, naming its channel: {err}");
    let end = w.commit().await.unwrap();
    assert!(end >= TimeStamp(5_001_000), "{end:?}");
    assert_eq!(values(&c1.read(TimeRange::new(TimeStamp(5_000_000), TimeStamp(6_000_000)), &[v1]).await.unwrap(), v1).len(), 2);

    // Authorities change per node; a close commits on every node.
    w.set_authorities(&[(v2, 50), (v3, 60)]).await.unwrap();
    let states = c1.control_states(&[v2, v3]).await.unwrap();
    let authority = |k| states.iter().find(|s| s.resource == k).map(|s| s.authority);
    assert_eq!((authority(v2), authority(v3)), (Some(50), Some(60)), "{states:?}");
    assert!(w.write(&all(7_000_000, 1)).await.unwrap().unauthorized.is_empty());
    // daq-2's part of the writer stays below the data it already held at 5 s, so it refuses
    // its share at 7 s. That refusal is still on its way when the writer closes: the close
    // returns it, and the other nodes' shares are committed.
    let err = w.close().await.expect_err("the close reports daq-2's refusal");
    assert_eq!(err.code(), "write.overlap", "{err}");
    assert!(err.to_string().contains("b_time"), "{err}");
    let at_7s = TimeRange::new(TimeStamp(7_000_000), TimeStamp(8_000_000));
    assert_eq!(values(&c3.read(at_7s, &[v3]).await.unwrap(), v3), vec![7_000_000.0]);
    assert_eq!(values(&c1.read(at_7s, &[v1]).await.unwrap(), v1), vec![7_000_000.0]);
    assert!(values(&c2.read(at_7s, &[v2]).await.unwrap(), v2).is_empty());

    // A leaseholder killed under a spanning writer ends it with `node.unavailable`; the
    // other nodes abort their uncommitted parts.
    let config = telemetron::framer::WriterConfig {
        auto_commit: false,
        ..telemetron::framer::WriterConfig::new(TimeStamp(9_000_000), vec![v1, v2, v3])
    };
    let mut w = c1.open_writer(config).await.unwrap();
    w.write(&all(9_000_000, 1)).await.unwrap();
    cl.nodes[2].kill();
    // The end of the stream is reported by the next call after it (no commit is sent, which
    // would commit daq-1's and daq-2's parts: commits are per node).
    let deadline = Instant::now() + Duration::from_secs(10);
    let err = loop {
        assert!(Instant::now() < deadline, "the writer did not end after its leaseholder died");
        match w.write(&samples(t1, v1, 9_500_000, 1)).await {
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            Err(e) => break e,
        }
    };
    assert_eq!(err.code(), "node.unavailable", "{err}");
    assert!(err.to_string().contains("daq-3"), "{err}");
    let after = c1.read(TimeRange::new(TimeStamp(9_000_000), TimeStamp(10_000_000)), &[v1, v2]).await.unwrap();
    assert_eq!((values(&after, v1).len(), values(&after, v2).len()), (0, 0), "nothing uncommitted was kept");
}
