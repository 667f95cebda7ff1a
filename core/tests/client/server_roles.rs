//! Users and roles on a real node: viewers read and stream, operators write and command
//! only their channels up to their authority, admins do the rest; every refusal is
//! `auth.forbidden`, nothing refused takes effect, and the old token stays an admin.

use crate::backends;

use std::collections::BTreeMap;
use std::time::Duration;

use backends::test_options;
use telemetron::channel::NewChannel;
use telemetron::framer::WriterConfig;
use telemetron::ranger::NewRange;
use telemetron::relay::StreamerConfig;
use telemetron::server::{AuthConfig, ServerConfig, serve};
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};
use telemetron::users::{NewUser, Role};
use telemetron::{Client, ConnectOptions, Credentials, Engine};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn code<T>(r: telemetron::Result<T>) -> &'static str {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.code(),
    }
}

async fn login(url: &str, user: &str, password: &str) -> telemetron::Result<Client> {
    let credentials = Credentials::Password { username: user.into(), password: password.into() };
    telemetron::connect(url, ConnectOptions { credentials, ..ConnectOptions::default() }).await
}

fn user(name: &str, role: Role, max_authority: Option<u8>, channels: &[&str]) -> NewUser {
    NewUser {
        name: name.into(),
        password: format!("{name}-password"),
        role,
        max_authority,
        channels: channels.iter().map(|c| (*c).to_string()).collect(),
    }
}

fn range(name: &str) -> NewRange {
    NewRange {
        name: name.into(),
        time_range: TimeRange::from_nanos(0, 10),
        labels: vec![],
        color: None,
        meta_data: BTreeMap::new(),
        parent: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced_on_every_request_and_stream() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), test_options()).unwrap();
    engine.users().add(user("vic", Role::Viewer, None, &[])).unwrap();
    engine.users().add(user("olga", Role::Operator, Some(100), &["valve_*"])).unwrap();
    engine.users().add(user("ada", Role::Admin, None, &[])).unwrap();
    let chans = engine
        .create_channels(vec![
            NewChannel::index("t"),
            NewChannel::data("press", DataType::F64, "t"),
            NewChannel::virtual_("valve_cmd", DataType::U8),
            NewChannel::virtual_("pump_cmd", DataType::U8),
        ])
        .unwrap();
    let (t, press, valve, pump) = (chans[0].key, chans[1].key, chans[2].key, chans[3].key);
    engine
        .write(TimeStamp(1), Frame::new().with(t, Series::timestamps(vec![1, 2])).with(press, Series::from_vec(vec![1.0f64, 2.0])))
        .unwrap();
    let auth = AuthConfig { tokens: vec!["legacy".into()], ..AuthConfig::default() };
    let server = serve(engine, ServerConfig { listen: "127.0.0.1:0".parse().unwrap(), auth, ..ServerConfig::default() }).await.unwrap();
    let url = server.url();

    // Users in the catalog alone make the node require credentials.
    assert_eq!(code(telemetron::connect(&url, ConnectOptions::default()).await), "auth.required");
    assert_eq!(code(login(&url, "vic", "wrong-password").await), "auth.invalid_credentials");
    assert_eq!(code(login(&url, "nobody", "vic-password").await), "auth.invalid_credentials");

    // A viewer reads, iterates and streams; nothing else.
    let vic = login(&url, "vic", "vic-password").await.unwrap();
    assert_eq!(vic.read(TimeRange::MAX, &[press]).await.unwrap().samples(press), 2);
    let mut s = vic.open_streamer(StreamerConfig::new(vec![valve])).await.unwrap();
    assert_eq!(code(vic.create_channels(vec![NewChannel::index("x")], false).await), "auth.forbidden");
    assert_eq!(code(vic.write(TimeStamp(10), Frame::new().with(valve, Series::from_vec(vec![1u8]))).await), "auth.forbidden");
    assert_eq!(code(vic.open_writer(WriterConfig::new(TimeStamp(10), vec![valve])).await), "auth.forbidden");
    assert_eq!(code(vic.create_range(range("mine")).await), "auth.forbidden");
    let e = vic.delete_channels(&[press]).await.unwrap_err();
    assert!(e.to_string().contains("vic is a viewer") && e.to_string().contains("channels/delete needs admin"), "{e}");

    // An operator commands its channels up to its authority, and marks ranges.
    let olga = login(&url, "olga", "olga-password").await.unwrap();
    let cfg = |a: u8| WriterConfig { authorities: vec![a], ..WriterConfig::new(TimeStamp(10), vec![valve]) };
    assert_eq!(code(olga.open_writer(cfg(101)).await), "auth.forbidden");
    assert_eq!(code(olga.open_writer(WriterConfig::new(TimeStamp(10), vec![pump])).await), "auth.forbidden");
    // No authorities at all means the highest: refused as well.
    let none = WriterConfig { authorities: vec![], ..WriterConfig::new(TimeStamp(10), vec![valve]) };
    assert_eq!(code(olga.open_writer(none).await), "auth.forbidden");
    let mut w = olga.open_writer(cfg(100)).await.unwrap();
    assert!(w.write(&Frame::new().with(valve, Series::from_vec(vec![1u8]))).await.unwrap().all_written());
    let got = s.next_timeout(Duration::from_secs(5)).await.unwrap().expect("the viewer sees the command");
    assert_eq!(got.concat(valve).unwrap().unwrap().as_slice::<u8>().unwrap(), &[1]);
    assert_eq!(code(w.set_authority(200).await), "auth.forbidden");
    w.set_authority(50).await.unwrap();
    w.close().await.unwrap();
    // One-shot writes run at the operator's highest authority: an admin holding the valve
    // at 255 keeps it.
    let ada = login(&url, "ada", "ada-password").await.unwrap();
    let held = ada.open_writer(WriterConfig::new(TimeStamp(20), vec![valve])).await.unwrap();
    assert_eq!(code(olga.write(TimeStamp(30), Frame::new().with(valve, Series::from_vec(vec![0u8]))).await), "control.unauthorized");
    held.close().await.unwrap();
    olga.write(TimeStamp(40), Frame::new().with(valve, Series::from_vec(vec![0u8]))).await.unwrap();
    // A stored channel outside its patterns (its index is written with it, not matched).
    let p50 = Frame::new().with(t, Series::timestamps(vec![50])).with(press, Series::from_vec(vec![5.0f64]));
    assert_eq!(code(olga.write(TimeStamp(50), p50).await), "auth.forbidden");
    let r = olga.create_range(range("olga's run")).await.unwrap();
    olga.rename_range(r.key, "olga's run 2").await.unwrap();
    assert_eq!(code(olga.delete_ranges(&[r.key]).await), "auth.forbidden");
    assert_eq!(code(olga.delete(TimeRange::MAX, &[press]).await), "auth.forbidden");
    assert_eq!(code(olga.create_channels(vec![NewChannel::index("y")], false).await), "auth.forbidden");

    // Nothing refused took effect.
    assert_eq!(ada.read(TimeRange::MAX, &[press]).await.unwrap().samples(press), 2);
    assert_eq!(code(ada.channel("x").await), "channel.not_found");
    ada.delete_ranges(&[r.key]).await.unwrap();

    // Nobody writes the system channels, not even an admin.
    let changes = ada.changes_channel().await.unwrap();
    assert_eq!(code(ada.open_writer(WriterConfig::new(TimeStamp(60), vec![changes])).await), "write.invalid_config");
    assert_eq!(
        code(olga.open_writer(WriterConfig { authorities: vec![1], ..WriterConfig::new(TimeStamp(60), vec![changes]) }).await),
        "auth.forbidden"
    );

    // A page of another site cannot open a stream; the node's own page can.
    let ws = |origin: &str| {
        let mut req = format!("{}/api/v1/stream/streamer?protocol=1", url.replacen("http", "ws", 1)).into_client_request().unwrap();
        req.headers_mut().insert("origin", origin.parse().unwrap());
        tokio_tungstenite::connect_async(req)
    };
    match ws("http://evil.example").await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("a cross-site stream was not refused: {other:?}", other = other.map(|_| ())),
    }
    let host = url.trim_start_matches("http://").to_string();
    match ws(&format!("http://{host}")).await {
        // Same origin: past the origin check, stopped by credentials (none were given).
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 401),
        other => panic!("{other:?}", other = other.map(|_| ())),
    }

    // The configured token is an admin, as before.
    let legacy = telemetron::connect(
        &url,
        ConnectOptions { credentials: Credentials::Token { token: "legacy".into() }, ..ConnectOptions::default() },
    )
    .await
    .unwrap();
    legacy.create_channels(vec![NewChannel::index("by_token")], false).await.unwrap();

    // A user removed (here through the engine the node serves) loses their session.
    server.engine().users().remove("vic").unwrap();
    assert_eq!(code(vic.read(TimeRange::MAX, &[press]).await), "auth.invalid_credentials");
    s.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_cannot_be_both_a_configured_and_a_stored_user() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), test_options()).unwrap();
    engine.users().add(user("ops", Role::Viewer, None, &[])).unwrap();
    let auth = AuthConfig { users: vec![("ops".into(), "admin-password".into())], ..AuthConfig::default() };
    let e = serve(engine, ServerConfig { listen: "127.0.0.1:0".parse().unwrap(), auth, ..ServerConfig::default() }).await.unwrap_err();
    assert_eq!(e.code(), "invalid_argument");
    assert!(e.to_string().contains("both --user and a stored user"), "{e}");
}
