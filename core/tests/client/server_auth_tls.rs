//! The node's front door: authentication (tokens, logins, refusal to run open on a
//! non-loopback address), TLS with a self-signed certificate, and the versioned
//! handshake that refuses incompatible peers.

use crate::backends;

use std::time::Duration;

use backends::{Backend, raw, test_options};
use telemetron::channel::NewChannel;
use telemetron::framer::WriterConfig;
use telemetron::relay::StreamerConfig;
use telemetron::server::{AuthConfig, ServerConfig, serve};
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};
use telemetron::{ConnectOptions, Credentials, Engine};

fn loopback() -> ServerConfig {
    ServerConfig { listen: "127.0.0.1:0".parse().unwrap(), ..ServerConfig::default() }
}

fn with_token(token: &str) -> ConnectOptions {
    ConnectOptions { credentials: Credentials::Token { token: token.into() }, ..ConnectOptions::default() }
}

fn code<T>(r: telemetron::Result<T>) -> &'static str {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.code(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_and_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), test_options()).unwrap();
    let auth = AuthConfig { tokens: vec!["s3cret".into()], users: vec![("ops".into(), "hunter2".into())], ..AuthConfig::default() };
    let server = serve(engine, ServerConfig { auth, ..loopback() }).await.unwrap();
    let url = server.url();
    assert_eq!(code(telemetron::connect(&url, ConnectOptions::default()).await), "auth.required");
    assert_eq!(code(telemetron::connect(&url, with_token("wrong")).await), "auth.invalid_credentials");
    let bad_pw =
        ConnectOptions { credentials: Credentials::Password { username: "ops".into(), password: "nope".into() }, ..Default::default() };
    assert_eq!(code(telemetron::connect(&url, bad_pw).await), "auth.invalid_credentials");
    let c = telemetron::connect(&url, with_token("s3cret")).await.unwrap();
    let ch = c.create_channels(vec![NewChannel::virtual_("v", DataType::U8)], false).await.unwrap();
    let pw =
        ConnectOptions { credentials: Credentials::Password { username: "ops".into(), password: "hunter2".into() }, ..Default::default() };
    let c2 = telemetron::connect(&url, pw).await.unwrap();
    // Streams are authenticated too.
    let mut s = c2.open_streamer(StreamerConfig::new(vec![ch[0].key])).await.unwrap();
    let mut w = c.open_writer(WriterConfig::new(TimeStamp(0), vec![ch[0].key])).await.unwrap();
    w.write(&Frame::new().with(ch[0].key, Series::from_vec(vec![3u8]))).await.unwrap();
    assert!(s.next_timeout(Duration::from_secs(5)).await.unwrap().is_some());
    // A raw request without the header is refused with the reason.
    let (status, body) =
        raw::post(server.local_addr(), "/api/v1/channels/search", &[("telemetron-protocol", "1")], b"{\"term\":\"\"}").await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("auth.required"), "{body}");
    w.close().await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_sessions_are_refused_and_password_clients_log_in_again() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), test_options()).unwrap();
    let idle = Duration::from_millis(300);
    let auth = AuthConfig { users: vec![("ops".into(), "hunter2".into())], session_idle: idle, ..AuthConfig::default() };
    let server = serve(engine, ServerConfig { auth, ..loopback() }).await.unwrap();
    let pw =
        ConnectOptions { credentials: Credentials::Password { username: "ops".into(), password: "hunter2".into() }, ..Default::default() };
    let c = telemetron::connect(&server.url(), pw).await.unwrap();
    let ch = c.create_channels(vec![NewChannel::virtual_("v", DataType::U8)], false).await.unwrap();
    // A session token taken by hand stops working once unused for `idle`.
    let (status, body) = raw::post(
        server.local_addr(),
        "/api/v1/auth/login",
        &[("telemetron-protocol", "1"), ("content-type", "application/json")],
        br#"{"username":"ops","password":"hunter2"}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token: String = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"].as_str().unwrap().to_string();
    let bearer = format!("Bearer {token}");
    let search = |addr| {
        let bearer = bearer.clone();
        async move {
            raw::post(addr, "/api/v1/channels/search", &[("telemetron-protocol", "1"), ("authorization", &bearer)], b"{\"term\":\"\"}")
                .await
        }
    };
    assert_eq!(search(server.local_addr()).await.0, 200);
    tokio::time::sleep(idle * 2).await;
    let (status, body) = search(server.local_addr()).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("auth.invalid_credentials"), "{body}");
    // The client's own session expired too; it logs in again for unary calls and streams.
    assert_eq!(c.search_channels("v").await.unwrap().len(), 1);
    tokio::time::sleep(idle * 2).await;
    let mut s = c.open_streamer(StreamerConfig::new(vec![ch[0].key])).await.unwrap();
    tokio::time::sleep(idle * 2).await;
    let mut w = c.open_writer(WriterConfig::new(TimeStamp(0), vec![ch[0].key])).await.unwrap();
    w.write(&Frame::new().with(ch[0].key, Series::from_vec(vec![7u8]))).await.unwrap();
    assert!(s.next_timeout(Duration::from_secs(5)).await.unwrap().is_some(), "an open stream outlives its session");
    w.close().await.unwrap();
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_address_needs_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let open = || Engine::open_with(dir.path(), test_options()).unwrap();
    let public = ServerConfig { listen: "0.0.0.0:0".parse().unwrap(), ..ServerConfig::default() };
    let e = open();
    let err = serve(e.clone(), public.clone()).await.unwrap_err();
    assert_eq!(err.code(), "invalid_argument");
    assert!(err.to_string().contains("--token"), "{err}");
    e.close().unwrap();
    let s = serve(open(), ServerConfig { auth: AuthConfig { tokens: vec!["t".into()], ..AuthConfig::default() }, ..public.clone() })
        .await
        .unwrap();
    s.shutdown().await.unwrap();
    let s = serve(open(), ServerConfig { allow_unauthenticated: true, ..public }).await.unwrap();
    s.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_self_signed_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).unwrap();
    let data = dir.path().join("data");
    let engine = Engine::open_with(&data, test_options()).unwrap();
    let server = serve(engine, ServerConfig { tls: Some((cert_path.clone(), key_path.clone())), ..loopback() }).await.unwrap();
    assert!(server.url().starts_with("https://"));
    let url = format!("https://localhost:{}", server.local_addr().port());
    let opts = ConnectOptions { ca_cert: Some(cert_path.clone()), ..ConnectOptions::default() };
    let c = telemetron::connect(&url, opts).await.unwrap();
    let ch = c.create_channels(vec![NewChannel::index("t"), NewChannel::data("x", DataType::F32, "t")], false).await.unwrap();
    let mut s = c.open_streamer(StreamerConfig::new(vec![ch[1].key])).await.unwrap();
    let mut w = c.open_writer(WriterConfig::new(TimeStamp(0), vec![ch[1].key])).await.unwrap();
    w.write(&Frame::new().with(ch[0].key, Series::timestamps(vec![1, 2])).with(ch[1].key, Series::from_vec(vec![1.5f32, 2.5])))
        .await
        .unwrap();
    assert_eq!(s.next_timeout(Duration::from_secs(5)).await.unwrap().unwrap().samples(ch[1].key), 2);
    w.close().await.unwrap();
    assert_eq!(c.read(TimeRange::MAX, &[ch[1].key]).await.unwrap().samples(ch[1].key), 2);
    // Without trusting the certificate the handshake fails with a TLS error.
    assert_eq!(code(telemetron::connect(&url, ConnectOptions::default()).await), "net.tls");
    // Plain HTTP to a TLS port fails cleanly.
    let plain = format!("http://127.0.0.1:{}", server.local_addr().port());
    assert!(telemetron::connect(&plain, ConnectOptions { timeout: Duration::from_secs(2), ..Default::default() }).await.is_err());
    // Unusable key files are refused at start with the file named.
    let e2 = Engine::open_with(dir.path().join("d2"), test_options()).unwrap();
    let err = serve(e2, ServerConfig { tls: Some((cert_path.clone(), cert_path.clone())), ..loopback() }).await.unwrap_err();
    assert!(err.to_string().contains("cert.pem"), "{err}");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incompatible_protocol_versions_are_refused() {
    let b = Backend::remote().await;
    let addr = b.server.as_ref().unwrap().local_addr();
    let (status, body) = raw::post(addr, "/api/v1/channels/search", &[("telemetron-protocol", "2")], b"{\"term\":\"\"}").await;
    assert_eq!(status, 400);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["code"], "protocol.version_mismatch");
    assert!(v["message"].as_str().unwrap().contains("node speaks version 1, the client speaks version 2"), "{body}");
    let (status, body) = raw::post(addr, "/api/v1/channels/search", &[], b"{\"term\":\"\"}").await;
    assert_eq!(status, 400);
    assert!(body.contains("telemetron-protocol"), "{body}");
    // A client meeting a node of another version refuses it at connect.
    let fake = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake_addr = fake.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = fake.accept().await {
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let body = r#"{"protocol":9,"version":"9.0.0","auth_required":false}"#;
            let resp = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}", body.len());
            let _ = s.write_all(resp.as_bytes()).await;
        }
    });
    let err = telemetron::connect(&format!("http://{fake_addr}"), ConnectOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), "protocol.version_mismatch");
    assert!(err.to_string().contains("node speaks version 9"), "{err}");
}
