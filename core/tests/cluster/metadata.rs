//! Metadata across the cluster: ranges (stored by the node they were created through, seen,
//! searched and changed through every node) and user accounts (in etcd, logging in on every
//! node).

use std::collections::BTreeMap;

use telemetron::ranger::{NewRange, RangeChange, RangeQuery};
use telemetron::{Change, Credentials};

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranges_created_on_any_node_are_seen_and_changed_through_every_node() {
    let mut cl = cluster();
    let (c1, c2, c3) = (client(&cl.nodes[0]).await, client(&cl.nodes[1]).await, client(&cl.nodes[2]).await);
    let mut heard = c3.watch_changes().await.unwrap();

    let run = c1
        .create_range(NewRange {
            name: "hotfire 12".into(),
            time_range: TimeRange::from_nanos(1_000, 9_000),
            labels: vec!["hotfire".into()],
            meta_data: BTreeMap::from([("stand".to_string(), "A".to_string())]),
            ..NewRange::default()
        })
        .await
        .unwrap();

    // Every node gets, searches and lists it with its metadata.
    for c in [&c2, &c3] {
        let got = eventually(10, "the range on another node", || async { c.range(run.key).await.ok() }).await;
        assert_eq!(got, run);
        assert_eq!(c.range_meta(run.key).await.unwrap().get("stand").map(String::as_str), Some("A"));
        let found = c.query_ranges(&RangeQuery::term("hotfire").meta("stand", "A")).await.unwrap();
        assert_eq!(found.iter().map(|r| r.key).collect::<Vec<_>>(), vec![run.key]);
    }
    // A client of daq-3 hears of it on daq-3's change channel.
    let created = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Change::Range(RangeChange::Created { ranges }) = heard.next().await.unwrap()
                && ranges.iter().any(|r| r.key == run.key)
            {
                return;
            }
        }
    })
    .await;
    assert!(created.is_ok(), "daq-3's change channel did not report daq-1's range");

    // A child created through daq-2 under daq-1's range is stored on daq-2 and listed under
    // its parent everywhere.
    let child = c2
        .create_range(NewRange {
            name: "ignition".into(),
            time_range: TimeRange::from_nanos(2_000, 3_000),
            parent: Some(run.key),
            ..NewRange::default()
        })
        .await
        .unwrap();
    for c in [&c1, &c3] {
        eventually(10, "the child under its parent", || async {
            c.range_children(run.key).await.ok()?.iter().any(|r| r.key == child.key).then_some(())
        })
        .await;
    }

    // Changes through a node that only mirrors the range reach its home; the caller reads
    // its own write at once, the home at once too, every other node soon after.
    assert_eq!(c3.rename_range(run.key, "hotfire 12b").await.unwrap().name, "hotfire 12b");
    assert_eq!(c3.range(run.key).await.unwrap().name, "hotfire 12b");
    assert_eq!(c1.range(run.key).await.unwrap().name, "hotfire 12b");
    c3.set_range_labels(run.key, vec!["hotfire".into(), "nominal".into()]).await.unwrap();
    c3.set_range_meta(run.key, BTreeMap::from([("operator".to_string(), "kim".to_string())])).await.unwrap();
    assert_eq!(c3.range_meta(run.key).await.unwrap().get("operator").map(String::as_str), Some("kim"));
    assert_eq!(c1.range_meta(run.key).await.unwrap().get("operator").map(String::as_str), Some("kim"));
    c2.delete_range_meta(run.key, &["stand".to_string()]).await.unwrap();
    assert!(!c1.range_meta(run.key).await.unwrap().contains_key("stand"));
    for c in [&c2, &c3] {
        eventually(10, "every change on every node", || async {
            let r = c.range(run.key).await.ok()?;
            let meta = c.range_meta(run.key).await.ok()?;
            (r.name == "hotfire 12b"
                && r.labels == ["hotfire", "nominal"]
                && meta.get("operator").map(String::as_str) == Some("kim")
                && !meta.contains_key("stand"))
            .then_some(())
        })
        .await;
    }

    // With its home down, a range stays visible everywhere; changing it is refused with
    // `node.unavailable`, and nothing changes.
    cl.nodes[0].kill();
    let err = eventually(15, "a refusal while daq-1 is down", || async { c2.rename_range(run.key, "lost").await.err() }).await;
    assert_eq!(err.code(), "node.unavailable", "{err}");
    assert_eq!(c3.range(run.key).await.unwrap().name, "hotfire 12b");

    // Restarted once its lease expired, daq-1 serves it again. Deleting it through daq-3 deletes its child on
    // daq-2 as well, on every node and in etcd.
    eventually(15, "daq-1's lease to expire", || async { (status(&cl.etcd)["members"].as_array()?.len() == 2).then_some(()) }).await;
    let etcd = &cl.etcd;
    cl.nodes[0].restart(etcd);
    eventually(20, "the delete after daq-1 rejoined", || async { c3.delete_ranges(&[run.key]).await.ok() }).await;
    let c1 =
        eventually(10, "a client of daq-1", || async { telemetron::connect(&cl.nodes[0].url(), ConnectOptions::default()).await.ok() })
            .await;
    for c in [&c1, &c2, &c3] {
        for key in [run.key, child.key] {
            eventually(10, "the delete on every node", || async { (c.range(key).await.err()?.code() == "range.not_found").then_some(()) })
                .await;
        }
    }
    // etcd holds no record of them: a node joining now mirrors none.
    let late = Node::start(&cl.etcd, cl._dir.path(), "daq-4");
    let c4 = eventually(10, "a client of daq-4", || async { telemetron::connect(&late.url(), ConnectOptions::default()).await.ok() }).await;
    let other =
        c2.create_range(NewRange { name: "after".into(), time_range: TimeRange::from_nanos(0, 1), ..NewRange::default() }).await.unwrap();
    eventually(10, "daq-2's new range on daq-4", || async { c4.range(other.key).await.ok() }).await;
    let all: Vec<_> = c4.query_ranges(&RangeQuery::default()).await.unwrap().iter().map(|r| r.key).collect();
    assert_eq!(all, vec![other.key], "daq-4 mirrors deleted ranges");
}

/// `telemetron users ... --cluster` with the password in the environment; its output.
fn users_cli(etcd: &Etcd, args: &[&str], password: &str) -> std::process::Output {
    Command::new(BIN).arg("users").args(args).args(["--cluster", &etcd.url]).env("TELEMETRON_PASSWORD", password).output().unwrap()
}

async fn login(node: &Node, user: &str, password: &str) -> telemetron::Result<Client> {
    let opts = ConnectOptions {
        credentials: Credentials::Password { username: user.into(), password: password.into() },
        ..ConnectOptions::default()
    };
    telemetron::connect(&node.url(), opts).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_accounts_log_in_on_every_node_and_their_changes_reach_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(&dir.path().join("etcd"));
    // With accounts, nodes require credentials, and reach each other with the token.
    let nodes: Vec<Node> = ["daq-1", "daq-2"].iter().map(|n| Node::start_with(&etcd, dir.path(), n, &["--token", "peer-secret"])).collect();
    let admin = ConnectOptions { credentials: Credentials::Token { token: "peer-secret".into() }, ..ConnectOptions::default() };
    let a1 = telemetron::connect(&nodes[0].url(), admin.clone()).await.unwrap();
    sensor(&a1, "line").await;

    let out = users_cli(&etcd, &["add", "kim", "--role", "operator", "--channels", "line_*", "--max-authority", "100"], "first-password");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Adding the same name again is refused with a message that says what to do.
    let again = users_cli(&etcd, &["add", "kim", "--role", "viewer"], "first-password");
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("remove it first"), "{again:?}");
    let listed = users_cli(&etcd, &["list"], "");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("kim"), "{listed:?}");

    // The account logs in on both nodes, with its role: it reads daq-1's channel through
    // daq-2, and may not create channels.
    for n in &nodes {
        let c = eventually(10, "kim's login", || async { login(n, "kim", "first-password").await.ok() }).await;
        assert!(c.channel("line_value").await.is_ok());
        let err = c.create_channels(vec![NewChannel::virtual_("not_mine", DataType::U8)], false).await.unwrap_err();
        assert!(err.code().starts_with("auth."), "{err}");
    }
    assert!(login(&nodes[1], "kim", "wrong-password").await.is_err());

    // A new password counts on every node at once; the old one no longer does.
    let kim2 = login(&nodes[1], "kim", "first-password").await.unwrap();
    let out = users_cli(&etcd, &["passwd", "kim"], "second-password");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for n in &nodes {
        eventually(10, "the new password", || async { login(n, "kim", "second-password").await.ok() }).await;
        assert!(login(n, "kim", "first-password").await.is_err());
    }

    // Removed, the account's open session ends at its next request, on every node.
    let out = users_cli(&etcd, &["remove", "kim"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = eventually(10, "the session's end", || async { kim2.channel("line_value").await.err() }).await;
    assert!(err.code().starts_with("auth."), "{err}");
    assert!(login(&nodes[0], "kim", "second-password").await.is_err());
    let gone = users_cli(&etcd, &["remove", "kim"], "");
    assert!(!gone.status.success() && String::from_utf8_lossy(&gone.stderr).contains("no user"), "{gone:?}");
}

/// With accounts in the cluster every node requires credentials, peers included: a node
/// started without `--token` cannot reach its peers, and says so in its log at start, with
/// what to do. A node with the token says nothing of the kind.
#[test]
fn a_node_without_a_token_in_a_cluster_with_accounts_says_it_cannot_reach_its_peers() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = Etcd::start(&dir.path().join("etcd"));
    let out = users_cli(&etcd, &["add", "lee", "--role", "viewer"], "lee-password-1");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let warning = "has no --token to reach its peers with: start every node with the same --token";
    let start = |name: &str, extra: &[&str]| {
        let log = dir.path().join(format!("{name}.log"));
        let data = dir.path().join(name);
        let mut args = vec!["--data", data.to_str().unwrap(), "--cluster", &etcd.url, "--name", name, "--lease-ttl", "2"];
        args.extend_from_slice(extra);
        let child = spawn_serve(&format!("127.0.0.1:{}", free_port()), &args, Stdio::from(std::fs::File::create(&log).unwrap()));
        (child, log)
    };
    let read = |log: &Path| std::fs::read_to_string(log).unwrap_or_default();
    let (mut bare, bare_log) = start("daq-1", &[]);
    let (mut tokened, tokened_log) = start("daq-2", &["--token", "peer-secret"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !read(&bare_log).contains(warning) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for c in [&mut bare, &mut tokened] {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert!(read(&bare_log).contains(warning), "daq-1 (no --token) logged:\n{}", read(&bare_log));
    assert!(!read(&tokened_log).contains("no --token"), "daq-2 (--token) logged:\n{}", read(&tokened_log));
}
