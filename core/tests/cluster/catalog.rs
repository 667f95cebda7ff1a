//! The cluster catalog: channels created on any node, and those a node creates for itself.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_created_on_any_node_are_seen_by_every_node_with_one_owner() {
    let cl = cluster();
    let (c1, c2, c3) = (client(&cl.nodes[0]).await, client(&cl.nodes[1]).await, client(&cl.nodes[2]).await);
    let (time, value) = sensor(&c2, "chamber").await;

    // The key's top byte names the node that stores it: daq-2's number.
    let st = status(&cl.etcd);
    let number = st["nodes"]["daq-2"].as_u64().unwrap() as u32;
    assert_eq!(time >> 24, number);
    assert_eq!(value >> 24, number);
    assert_eq!(st["members"].as_array().unwrap().len(), 3, "{st}");
    let placed: Vec<u64> = st["placement"].as_array().unwrap().iter().map(|p| p["key"].as_u64().unwrap()).collect();
    assert!(placed.contains(&u64::from(value)), "{st}");

    // Every node retrieves, lists and searches it, by name and by key.
    for c in [&c1, &c3] {
        let got = eventually(10, "the mirror", || async { c.channel("chamber_value").await.ok() }).await;
        assert_eq!((got.key, got.data_type), (value, DataType::F64));
        assert!(c.search_channels("chamber").await.unwrap().iter().any(|ch| ch.key == time));
    }

    // Names are unique cluster-wide: another node cannot take it, and nothing is left behind.
    let err = c3.create_channels(vec![NewChannel::index("chamber_time")], false).await.unwrap_err();
    assert_eq!(err.code(), "channel.name_taken", "{err}");
    let err = c1.create_channels(vec![NewChannel::virtual_("chamber_value", DataType::U8)], false).await.unwrap_err();
    assert_eq!(err.code(), "channel.name_taken", "{err}");
    // retrieve_if_name_exists returns the existing channel from any node.
    let again = c1.create_channels(vec![NewChannel::index("chamber_time")], true).await.unwrap();
    assert_eq!(again[0].key, time);

    // A batch larger than one etcd transaction (128 operations) is created whole, and one
    // whose last name is taken leaves nothing behind, on the node or in the cluster.
    let many: Vec<NewChannel> = (0..150).map(|i| NewChannel::virtual_(format!("bulk_{i}"), DataType::U8)).collect();
    assert_eq!(c1.create_channels(many, false).await.unwrap().len(), 150);
    let mut clash: Vec<NewChannel> = (0..150).map(|i| NewChannel::virtual_(format!("clash_{i}"), DataType::U8)).collect();
    clash.push(NewChannel::virtual_("bulk_7", DataType::U8));
    let err = c3.create_channels(clash, false).await.unwrap_err();
    assert_eq!(err.code(), "channel.name_taken", "{err}");
    assert!(c3.search_channels("clash_").await.unwrap().is_empty());
    assert!(status(&cl.etcd)["placement"].as_array().unwrap().iter().all(|p| !p["name"].as_str().unwrap().starts_with("clash_")));
    let bulk: Vec<ChannelKey> = c1.search_channels("bulk_").await.unwrap().iter().map(|c| c.key).collect();
    assert_eq!(bulk.len(), 150);
    c2.delete_channels(&bulk).await.unwrap();
    assert!(status(&cl.etcd)["placement"].as_array().unwrap().iter().all(|p| !p["name"].as_str().unwrap().starts_with("bulk_")));

    // A data channel created on daq-1 against daq-2's index is stored with its index.
    let extra = c1.create_channels(vec![NewChannel::data_with_key("chamber_extra", DataType::F32, time)], false).await.unwrap();
    assert_eq!(extra[0].key >> 24, number);

    // Explicit placement: created through daq-1, stored on daq-3; a data channel goes with
    // its index, so placing it elsewhere is refused; an unknown node is named as such.
    let placed = c1.create_channels_on("daq-3", vec![NewChannel::index("placed_time")], false).await.unwrap();
    assert_eq!(u64::from(placed[0].key >> 24), st["nodes"]["daq-3"].as_u64().unwrap());
    let err =
        c1.create_channels_on("daq-1", vec![NewChannel::data("placed_value", DataType::F64, "placed_time")], false).await.unwrap_err();
    assert_eq!(err.code(), "invalid_argument", "{err}");
    assert!(err.to_string().contains("daq-3"), "{err}");
    let err = c1.create_channels_on("daq-9", vec![NewChannel::index("nowhere")], false).await.unwrap_err();
    assert!(err.code() == "invalid_argument" && err.to_string().contains("daq-9"), "{err}");

    // Renames and deletes through any node reach the owner and every mirror.
    c3.rename_channel(extra[0].key, "chamber_aux").await.unwrap();
    eventually(10, "the rename on daq-1", || async { c1.channel("chamber_aux").await.ok() }).await;
    // So does a change of compression, asked through a node that does not store the channel.
    let zstd = telemetron::channel::Compression::Zstd;
    assert_eq!(c1.set_channel_compression(extra[0].key, zstd).await.unwrap().compression, zstd);
    for c in [&c2, &c3] {
        eventually(10, "the compression on every node", || async {
            (c.channel(extra[0].key).await.ok()?.compression == zstd).then_some(())
        })
        .await;
    }
    let err = c3.set_channel_compression(time, zstd).await.unwrap_err();
    assert_eq!(err.code(), "channel.invalid", "an index stays raw, on any node: {err}");
    c1.delete_channels(&[extra[0].key]).await.unwrap();
    eventually(10, "the delete on daq-3", || async { c3.channel(extra[0].key).await.is_err().then_some(()) }).await;
    assert_eq!(c2.channel(extra[0].key).await.unwrap_err().code(), "channel.not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_a_node_creates_for_itself_are_named_per_node_and_in_the_catalog_at_once() {
    // Self-telemetry and the demo stand create channels on each node's engine, not through
    // a client: the node registers them in etcd as its engine creates them, under its own
    // name.
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(&dir.path().join("etcd"));
    let nodes: Vec<Node> =
        ["daq-1", "daq-2"].iter().map(|n| Node::start_with(&etcd, dir.path(), n, &["--self-telemetry", "100ms", "--demo"])).collect();
    let (c1, c2) = (client(&nodes[0]).await, client(&nodes[1]).await);
    let numbers = status(&etcd)["nodes"].clone();
    for c in [&c1, &c2] {
        for node in ["daq-1", "daq-2"] {
            let name = format!("_telemetron/{node}/storage/commits");
            let ch = eventually(10, &name, || async { c.channel(name.as_str()).await.ok() }).await;
            assert_eq!(u64::from(ch.key >> 24), numbers[node].as_u64().unwrap(), "{name} is stored on {node}");
            // Written by its node, read through either.
            eventually(10, "self-telemetry samples", || async {
                let f = c.read(TimeRange::MAX, &[ch.key]).await.ok()?;
                (!values(&f, ch.key).is_empty()).then_some(())
            })
            .await;
        }
        // Each node runs its own demo stand, on channels named after it.
        for node in ["daq-1", "daq-2"] {
            for plain in ["pressure_1", "valve_cmd"] {
                let name = format!("{node}/{plain}");
                let ch = eventually(10, &name, || async { c.channel(name.as_str()).await.ok() }).await;
                assert_eq!(u64::from(ch.key >> 24), numbers[node].as_u64().unwrap(), "{name} is stored on {node}");
            }
        }
        // Nobody took the single-node names, which both nodes would have wanted.
        for plain in ["_telemetron/storage/commits", "_telemetron/time", "pressure_1", "stand_time"] {
            assert_eq!(c.channel(plain).await.unwrap_err().code(), "channel.not_found", "{plain}");
        }
    }
    let st = status(&etcd);
    let placed: Vec<&str> = st["placement"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert!(placed.contains(&"_telemetron/daq-1/time") && placed.contains(&"_telemetron/daq-2/time"), "{st}");
    // A node's summary reads its own channels and names them as a single node does.
    let req = telemetron::observe::SummaryRequest::parse(Some("10m"), None, None).unwrap();
    let sum = telemetron::observe::Observe::new(&c2).summary(&req).await.unwrap();
    assert_eq!(sum.get("_telemetron/storage/commits").unwrap().kind, telemetron::observe::MetricKind::Counter, "{sum:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joins_a_catalog_larger_than_one_etcd_reply() {
    // gRPC replies stop at 4 MiB: a catalog of ~9 MB is read in pages, at one revision.
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(&dir.path().join("etcd"));
    let first = Node::start(&etcd, dir.path(), "daq-1");
    let c1 = client(&first).await;
    let long = "x".repeat(200);
    for batch in 0..25 {
        let chans: Vec<NewChannel> = (0..1_000).map(|i| NewChannel::virtual_(format!("wide_{batch}_{i}_{long}"), DataType::U8)).collect();
        c1.create_channels(chans, false).await.unwrap();
    }
    let late = Node::start(&etcd, dir.path(), "daq-2");
    let c2 = client(&late).await;
    let last = format!("wide_24_999_{long}");
    let got = eventually(10, "the last channel on the new node", || async { c2.channel(last.as_str()).await.ok() }).await;
    assert_eq!(got.key >> 24, c1.channel(last.as_str()).await.unwrap().key >> 24);
    // `cluster status` reads the same catalog in pages too.
    let counted: u64 = status(&etcd)["channels"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert!(counted >= 25_000, "{counted}");
}
