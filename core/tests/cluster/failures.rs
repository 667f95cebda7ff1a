//! Failures: a killed node, a stopped node, a data directory claimed by another name, etcd
//! restarted under load.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_becomes_unavailable_after_its_ttl_and_serves_again_when_it_rejoins() {
    let mut cl = cluster();
    let (c1, c3) = (client(&cl.nodes[0]).await, client(&cl.nodes[2]).await);
    let (t3, v3) = sensor(&c3, "tank").await;
    c3.write(TimeStamp(1_000), samples(t3, v3, 1_000, 100)).await.unwrap();
    let (_, v1) = sensor(&c1, "local").await;
    eventually(10, "the mirror", || async { c1.channel(v3).await.ok() }).await;
    assert_eq!(values(&c1.read(TimeRange::MAX, &[v3]).await.unwrap(), v3).len(), 100);

    // A writer relayed through daq-1 to daq-3, open when daq-3 dies.
    let mut w = c1.open_writer(telemetron::framer::WriterConfig::new(TimeStamp(1_000_000), vec![t3, v3])).await.unwrap();
    w.write_confirmed(&samples(t3, v3, 1_000_000, 5)).await.unwrap();
    w.commit().await.unwrap();

    cl.nodes[2].kill();
    // The writer learns it: its next write fails naming the node, and control of its
    // channels is gone with the node.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut at = 2_000_000;
    let err = loop {
        at += 1_000;
        if let Err(e) = w.write_confirmed(&samples(t3, v3, at, 1)).await {
            break e;
        }
        assert!(Instant::now() < deadline, "the relayed writer did not fail");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(["node.unavailable", "net.connection_lost"].contains(&err.code()), "{err}");
    // Reads of its channels through daq-1 fail with node.unavailable, naming it: at once
    // (the connection is refused), and after the TTL (2 s, plus etcd's expiry sweep) also
    // because it left the member list.
    eventually(15, "daq-3 to leave the member list", || async {
        (status(&cl.etcd)["members"].as_array().unwrap().len() == 2).then_some(())
    })
    .await;
    let err = eventually(15, "node.unavailable", || async {
        match c1.read(TimeRange::MAX, &[v3]).await {
            Err(e) if e.code() == "node.unavailable" => Some(e),
            _ => None,
        }
    })
    .await;
    assert!(err.to_string().contains("daq-3"), "{err}");
    // Its definitions stay (the channel still exists, its data is on daq-3's disk), and
    // daq-1 keeps serving its own channels.
    assert_eq!(c1.channel(v3).await.unwrap().name, "tank_value");
    c1.read(TimeRange::MAX, &[v1]).await.unwrap();

    // Restarted on the same directory, daq-3 rejoins under the same number and serves its
    // data again through daq-1.
    let etcd = &cl.etcd;
    cl.nodes[2].restart(etcd);
    let back = eventually(15, "daq-3's data through daq-1", || async { c1.read(TimeRange::MAX, &[v3]).await.ok() }).await;
    // Everything committed is there, the relayed writer's commit included.
    let committed: Vec<f64> = (0..100).map(|i| 1_000.0 + f64::from(i)).chain((0..5).map(|i| 1_000_000.0 + f64::from(i))).collect();
    assert_eq!(values(&back, v3), committed);
    assert_eq!(status(&cl.etcd)["nodes"]["daq-3"].as_u64().unwrap() as u32, v3 >> 24);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_node_loses_its_lease_and_gets_it_back_when_continued() {
    let cl = cluster();
    let c1 = client(&cl.nodes[0]).await;
    let c2 = client(&cl.nodes[1]).await;
    let (t2, v2) = sensor(&c2, "line").await;
    c2.write(TimeStamp(1_000), samples(t2, v2, 1_000, 10)).await.unwrap();
    eventually(10, "the mirror", || async { c1.channel(v2).await.ok() }).await;

    // SIGSTOP: the process keeps its sockets open but answers nothing, as a node cut off
    // the network would.
    cl.nodes[1].signal(libc::SIGSTOP);
    // A read sent now waits on a node that answers nothing, until the cluster gives up on
    // it (its lease expires, TTL 2 s): then it ends with node.unavailable, not later.
    let sent = Instant::now();
    let err = tokio::time::timeout(Duration::from_secs(20), c1.read(TimeRange::MAX, &[v2])).await.expect("the read ends").unwrap_err();
    assert_eq!(err.code(), "node.unavailable", "{err}");
    assert!(sent.elapsed() < Duration::from_secs(10), "ended after {:?}", sent.elapsed());
    eventually(15, "daq-2 to leave the member list", || async {
        (status(&cl.etcd)["members"].as_array().unwrap().len() == 2).then_some(())
    })
    .await;
    // Once daq-1 has seen it go (its member watch), reads fail at once.
    eventually(15, "node.unavailable from daq-1", || async {
        match tokio::time::timeout(Duration::from_secs(2), c1.read(TimeRange::MAX, &[v2])).await {
            Ok(Err(e)) if e.code() == "node.unavailable" => Some(()),
            _ => None,
        }
    })
    .await;

    cl.nodes[1].signal(libc::SIGCONT);
    let back = eventually(20, "daq-2 to rejoin", || async { c1.read(TimeRange::MAX, &[v2]).await.ok() }).await;
    assert_eq!(values(&back, v2).len(), 10);
}

#[test]
fn a_data_directory_belongs_to_one_node_name() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(&dir.path().join("etcd"));
    let mut n = Node::start(&etcd, dir.path(), "rig-a");
    // A second process under a live node's name (on another directory) is refused: two
    // processes would hand out the same channel keys.
    let out = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port()), "--cluster", &etcd.url, "--name", "rig-a"])
        .args(["--data", dir.path().join("twin").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already served by another process"), "{err}");
    n.kill();
    let out = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port()), "--cluster", &etcd.url, "--name", "rig-b"])
        .args(["--data", n.dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs to cluster node \"rig-a\""), "{err}");

    // A bad etcd address fails fast with the coordination error, not a hang.
    let started = Instant::now();
    let out = Command::new(BIN)
        .args(["serve", "--listen", &format!("127.0.0.1:{}", free_port()), "--name", "rig-c", "--cluster"])
        .arg(format!("http://127.0.0.1:{}", free_port()))
        .args(["--data", dir.path().join("c").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cluster coordination failed"), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_and_writes_go_on_while_etcd_restarts_and_the_catalog_resumes() {
    let mut cl = cluster();
    let (c1, c2) = (client(&cl.nodes[0]).await, client(&cl.nodes[1]).await);
    let (t2, v2) = sensor(&c2, "feed").await;
    eventually(10, "the mirror", || async { c1.channel(v2).await.ok() }).await;
    let mut s = c1.open_streamer(StreamerConfig::new(vec![v2])).await.unwrap();
    let mut w = c2.open_writer(telemetron::framer::WriterConfig::new(TimeStamp(0), vec![t2, v2])).await.unwrap();
    let mut at = 0;
    // Wait for the peer tap, then restart etcd under load: the stream and the writes do not
    // need etcd, so neither stops.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        at += 10_000;
        w.write(&samples(t2, v2, at, 1)).await.unwrap();
        if s.next_timeout(Duration::from_millis(50)).await.unwrap().is_some() {
            break;
        }
        assert!(Instant::now() < deadline, "the peer tap did not open");
    }
    // Drain what the warm-up delivered, then write for the whole restart from a task while
    // etcd is killed and started again on a blocking thread.
    while s.next_timeout(Duration::from_millis(100)).await.unwrap().is_some() {}
    let writing = tokio::spawn(async move {
        let mut n = 0;
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            at += 10_000;
            w.write(&samples(t2, v2, at, 1)).await.unwrap();
            n += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        w.close().await.unwrap();
        n
    });
    let mut etcd = std::mem::replace(&mut cl.etcd, Etcd::placeholder());
    let restarting = tokio::task::spawn_blocking(move || {
        etcd.restart();
        etcd
    });
    let mut received = 0;
    while !writing.is_finished() {
        if let Some(f) = s.next_timeout(Duration::from_millis(50)).await.unwrap() {
            received += values(&f, v2).len();
        }
    }
    let written = writing.await.unwrap();
    while let Some(f) = s.next_timeout(Duration::from_millis(200)).await.unwrap() {
        received += values(&f, v2).len();
    }
    cl.etcd = restarting.await.unwrap();
    assert_eq!(received, written, "samples written during the etcd restart went missing from the stream");
    // With etcd back, the catalog works again: a new channel on daq-2 reaches daq-1, and
    // every member is still listed.
    let made = eventually(20, "a create after the restart", || async {
        c2.create_channels(vec![NewChannel::virtual_("after_restart", DataType::U8)], false).await.ok()
    })
    .await;
    eventually(20, "the new mirror", || async { c1.channel(made[0].key).await.ok() }).await;
    eventually(20, "three members", || async { (status(&cl.etcd)["members"].as_array().unwrap().len() == 3).then_some(()) }).await;
}
