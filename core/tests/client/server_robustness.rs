//! The node under bad input and failure: garbage on every stream and route gets a clear
//! error while other clients carry on; oversized messages are refused; a client that
//! vanishes or stops answering loses control within the control timeout; a graceful
//! shutdown keeps what was committed (and commits open writers).

use crate::backends;

use std::time::{Duration, Instant};

use backends::{Backend, raw, test_options};
use telemetron::channel::{ChannelKey, NewChannel};
use telemetron::framer::WriterConfig;
use telemetron::protocol::{CloseCode, codec};
use telemetron::relay::StreamerConfig;
use telemetron::server::{ServerConfig, serve};
use telemetron::telem::{DataType, Frame, Series, TimeRange, TimeStamp};
use telemetron::{Client, ConnectOptions, Engine};

fn loopback() -> ServerConfig {
    ServerConfig { listen: "127.0.0.1:0".parse().unwrap(), ..ServerConfig::default() }
}

async fn valve(c: &Client) -> (ChannelKey, ChannelKey) {
    let ch = c.create_channels(vec![NewChannel::index("vt"), NewChannel::data("valve", DataType::U8, "vt")], false).await.unwrap();
    (ch[0].key, ch[1].key)
}

fn cmd(t: ChannelKey, v: ChannelKey, ts: i64, val: u8) -> Frame {
    Frame::new().with(t, Series::timestamps(vec![ts])).with(v, Series::from_vec(vec![val]))
}

/// Wait until `f` holds, at most `limit`.
async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "condition not reached within {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

/// Run `op` until the node stops answering `server.busy` (a slot frees a moment after its
/// connection closes), for at most a minute.
async fn when_not_busy<T, F: std::future::Future<Output = telemetron::Result<T>>>(what: &str, mut op: impl FnMut() -> F) -> T {
    let start = Instant::now();
    loop {
        match op().await {
            Ok(x) => return x,
            Err(e) if e.code() == "server.busy" && start.elapsed() < Duration::from_secs(60) => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{what}: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_gets_a_clear_error_and_others_carry_on() {
    let b = Backend::remote().await;
    let addr = b.server.as_ref().unwrap().local_addr();
    let c = &b.client;
    let (t, v) = valve(c).await;
    let mut good = c.open_writer(WriterConfig::new(TimeStamp(0), vec![v])).await.unwrap();
    let mut watcher = c.open_streamer(StreamerConfig::new(vec![v])).await.unwrap();

    // Not JSON on each stream kind: a protocol error names the problem, then the close.
    for kind in ["writer", "streamer", "iterator"] {
        let mut ws = raw::open(addr, kind).await;
        raw::send_text(&mut ws, "{\"type\": \"open\", \"config\": ").await;
        let m = raw::json(&mut ws).await.expect("an error message");
        assert_eq!(m["type"], "closed", "{kind}: {m}");
        assert_eq!(m["error"]["code"], "protocol.violation", "{kind}: {m}");
        assert!(m["error"]["message"].as_str().unwrap().contains("malformed JSON"), "{m}");
        assert!(raw::json(&mut ws).await.is_none(), "{kind}: the stream closes");
    }
    // Wrong types and unknown channels.
    let mut ws = raw::open(addr, "writer").await;
    raw::send_text(&mut ws, r#"{"type":"open","config":{"start":"soon","channels":[1]}}"#).await;
    assert_eq!(raw::json(&mut ws).await.unwrap()["error"]["code"], "protocol.violation");
    let mut ws = raw::open(addr, "streamer").await;
    raw::send_text(&mut ws, r#"{"type":"open","config":{"channels":[987654]}}"#).await;
    assert_eq!(raw::json(&mut ws).await.unwrap()["error"]["code"], "channel.not_found");
    // A frame before open; a second open; an unknown message type.
    let mut ws = raw::open(addr, "writer").await;
    raw::send_binary(&mut ws, vec![1, 2, 3]).await;
    assert_eq!(raw::json(&mut ws).await.unwrap()["error"]["code"], "protocol.violation");

    // Undecodable frames on an open writer are rejected writes: reported, and the writer goes on.
    let (t2, v2) = {
        let ch = c.create_channels(vec![NewChannel::index("rt"), NewChannel::data("rv", DataType::U8, "rt")], false).await.unwrap();
        (ch[0].key, ch[1].key)
    };
    let mut ws = raw::open(addr, "writer").await;
    raw::send_text(&mut ws, &format!(r#"{{"type":"open","config":{{"start":0,"channels":[{v2}]}}}}"#)).await;
    assert_eq!(raw::json(&mut ws).await.unwrap()["type"], "opened");
    raw::send_binary(&mut ws, b"TLMF garbage".to_vec()).await;
    let m = raw::json(&mut ws).await.unwrap();
    assert_eq!((m["type"].as_str(), m["seq"].as_u64()), (Some("write_error"), Some(1)), "{m}");
    assert_eq!(m["error"]["code"], "protocol.violation");
    let mut wrong_type = codec::encode(&Frame::new().with(t2, Series::timestamps(vec![5])).with(v2, Series::from_vec(vec![1.0f64])));
    raw::send_binary(&mut ws, std::mem::take(&mut wrong_type)).await;
    let m = raw::json(&mut ws).await.unwrap();
    assert_eq!((m["seq"].as_u64(), m["error"]["code"].as_str()), (Some(2), Some("write.type_mismatch")), "{m}");
    raw::send_binary(&mut ws, codec::encode(&cmd(t2, v2, 5, 9))).await;
    raw::send_text(&mut ws, r#"{"type":"commit","id":7}"#).await;
    let m = raw::json(&mut ws).await.unwrap();
    assert_eq!((m["type"].as_str(), m["id"].as_u64(), m["end"].as_i64()), (Some("committed"), Some(7), Some(6)), "{m}");
    raw::send_text(&mut ws, r#"{"type":"dance"}"#).await;
    let m = raw::json(&mut ws).await.unwrap();
    assert_eq!((m["type"].as_str(), m["error"]["code"].as_str()), (Some("closed"), Some("protocol.violation")), "{m}");

    // Unary garbage.
    let v1 = [("telemetron-protocol", "1")];
    let (status, body) = raw::post(addr, "/api/v1/channels/create", &v1, b"{\"channels\": [").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("protocol.violation") && body.contains("malformed JSON"), "{body}");
    let (status, body) = raw::post(addr, "/api/v1/channels/create", &v1, br#"{"channels":[{"name":"x","data_type":"float128"}]}"#).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = raw::post(addr, "/api/v1/frames/write?start=0", &v1, b"not a frame").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = raw::post(addr, "/api/v1/nowhere", &v1, b"{}").await;
    assert_eq!(status, 400, "{body}");

    // Through all of that, the good writer and streamer were unaffected; the committed
    // write of the raw writer is there.
    assert!(good.write(&cmd(t, v, 1, 1)).await.unwrap().all_written());
    assert_eq!(watcher.next_timeout(Duration::from_secs(60)).await.unwrap().unwrap().samples(v), 1);
    good.close().await.unwrap();
    assert_eq!(c.read(TimeRange::MAX, &[v2]).await.unwrap().samples(v2), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_are_refused() {
    let b = Backend::remote_with(ServerConfig { max_message_bytes: 1 << 20, ..loopback() }).await;
    let addr = b.server.as_ref().unwrap().local_addr();
    let c = &b.client;
    let big = c.create_channels(vec![NewChannel::virtual_("big", DataType::U8)], false).await.unwrap()[0].key;
    let mut w = c.open_writer(WriterConfig::new(TimeStamp(0), vec![big])).await.unwrap();
    let huge = Frame::new().with(big, Series::from_vec(vec![0u8; 2 << 20]));
    // The client knows the node's limit and refuses before sending; the writer goes on.
    assert_eq!(w.write(&huge).await.unwrap_err().code(), "protocol.too_large");
    w.write(&Frame::new().with(big, Series::from_vec(vec![1u8; 1000]))).await.unwrap();
    w.close().await.unwrap();
    // A raw client that sends it anyway gets `too_large` and the stream closes.
    let mut ws = raw::open(addr, "writer").await;
    raw::send_text(&mut ws, &format!(r#"{{"type":"open","config":{{"start":0,"channels":[{big}]}}}}"#)).await;
    assert_eq!(raw::json(&mut ws).await.unwrap()["type"], "opened");
    raw::send_binary(&mut ws, codec::encode(&huge)).await;
    // The node stops reading mid-message; the error usually arrives before the reset.
    if let Some(m) = raw::json(&mut ws).await {
        assert_eq!(m["error"]["code"], "protocol.too_large", "{m}");
    }
    let (status, body) = raw::post(addr, "/api/v1/channels/search", &[("telemetron-protocol", "1")], &vec![b' '; 2 << 20]).await;
    assert!(status == 413 || body.contains("too_large") || status == 0, "{status} {body}");
    assert_eq!(c.write(TimeStamp(0), huge).await.unwrap_err().code(), "protocol.too_large");
    assert!(c.search_channels("big").await.unwrap().len() == 1, "the node carries on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_client_loses_control_within_the_timeout() {
    // Long enough that a live client's keep-alives (every timeout / 4) are never late on a
    // loaded machine; every wait below is for a condition, bounded generously.
    let timeout = Duration::from_secs(2);
    let b = Backend::remote_with(ServerConfig { control_timeout: timeout, ..loopback() }).await;
    let addr = b.server.as_ref().unwrap().local_addr();
    let c = &b.client;
    let (t, v) = valve(c).await;
    // A raw client takes control at 200, then never says anything again. The node hears
    // its open after `silent_since`, so it cannot time it out before `silent_since + timeout`.
    let mut frozen = raw::open(addr, "writer").await;
    let silent_since = Instant::now();
    raw::send_text(&mut frozen, &format!(r#"{{"type":"open","config":{{"start":0,"channels":[{v}],"authorities":[200]}}}}"#)).await;
    assert_eq!(raw::json(&mut frozen).await.unwrap()["authorized"].as_array().unwrap().len(), 2);
    let mut next = c.open_writer(WriterConfig::new(TimeStamp(0), vec![v]).authority(100)).await.unwrap();
    let held = next.has_control(v);
    // Checked only while the frozen client must still hold control (on a loaded machine
    // opening `next` may itself take longer than the timeout).
    if silent_since.elapsed() < timeout {
        assert!(!held, "a lower authority took control from a live holder");
    }
    eventually(Duration::from_secs(60), || next.has_control(v)).await;
    let waited = silent_since.elapsed();
    assert!(waited >= timeout, "handed over after {waited:?}, before the {timeout:?} timeout");
    assert!(next.write(&cmd(t, v, 10, 1)).await.unwrap().all_written());
    // The frozen client is told why, if it ever reads (its WebSocket layer may first fail
    // to answer the pings that queued up on the closed socket).
    if let Some(m) = raw::json(&mut frozen).await {
        assert_eq!(m["error"]["code"], "net.keepalive_timeout", "{m}");
    }
    // A live but idle client keeps control: its keep-alives flow without any call. Idle for
    // twice the timeout: without them the node would have closed it after one.
    tokio::time::sleep(timeout * 2).await;
    assert!(next.has_control(v), "an idle client with keep-alives lost control");
    assert!(next.write(&cmd(t, v, 11, 1)).await.unwrap().all_written());
    next.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_client_loses_control_at_once() {
    let b = Backend::remote().await;
    let c = &b.client;
    let (t, v) = valve(c).await;
    let other = b.another().await;
    let mut holder = other.open_writer(WriterConfig::new(TimeStamp(0), vec![v]).authority(200).auto_commit(false)).await.unwrap();
    holder.write(&cmd(t, v, 1, 1)).await.unwrap();
    holder.commit().await.unwrap();
    holder.write(&cmd(t, v, 2, 1)).await.unwrap();
    let next = c.open_writer(WriterConfig::new(TimeStamp(0), vec![v]).authority(100)).await.unwrap();
    assert!(!next.has_control(v));
    drop(holder);
    drop(other);
    eventually(Duration::from_secs(60), || next.has_control(v)).await;
    // Like a dropped embedded writer: committed data stays, uncommitted is discarded.
    assert_eq!(c.read(TimeRange::MAX, &[t]).await.unwrap().concat(t).unwrap().unwrap().as_timestamps().unwrap(), &[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_keeps_committed_data() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), test_options()).unwrap();
    let server = serve(engine, loopback()).await.unwrap();
    let c = telemetron::connect(&server.url(), ConnectOptions::default()).await.unwrap();
    let (t, v) = valve(&c).await;
    let mut w = c.open_writer(WriterConfig::new(TimeStamp(0), vec![v]).auto_commit(false)).await.unwrap();
    w.write(&cmd(t, v, 1, 1)).await.unwrap();
    w.commit().await.unwrap();
    let mut s = c.open_streamer(StreamerConfig::new(vec![v])).await.unwrap();
    w.write(&cmd(t, v, 2, 2)).await.unwrap();
    // The second write's live frame shows that it reached the node before the shutdown
    // (the streamer was subscribed before it was sent); it is not committed yet.
    let live = s.next_timeout(Duration::from_secs(60)).await.unwrap().expect("the second write, live");
    assert_eq!(live.get(v).next().unwrap().as_slice::<u8>().unwrap(), &[2]);
    let probe = c.read(TimeRange::MAX, &[t]).await.unwrap();
    assert_eq!(probe.samples(t), 1);
    tokio::time::timeout(Duration::from_secs(15), server.shutdown()).await.expect("shutdown in time").unwrap();
    assert_eq!(s.next_timeout(Duration::from_secs(60)).await.unwrap_err().code(), "server.shutdown");
    assert!(w.write(&cmd(t, v, 3, 3)).await.is_err());
    let engine = Engine::open_with(dir.path(), test_options()).unwrap();
    let back = engine.read(TimeRange::MAX, &[t]).unwrap();
    assert_eq!(back.concat(t).unwrap().unwrap().as_timestamps().unwrap(), &[1, 2], "open writers are committed on shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_over_16_mib_travel_in_fragments_and_arrive_intact() {
    let b = Backend::remote().await;
    let c = &b.client;
    let ch = c.create_channels(vec![NewChannel::index("ft"), NewChannel::data("fv", DataType::F64, "ft")], false).await.unwrap();
    let (t, v) = (ch[0].key, ch[1].key);
    let n = 2_500_000i64; // 40 MB per frame: three 16 MiB fragments
    let mut w = c.open_writer(WriterConfig::new(TimeStamp(0), vec![v])).await.unwrap();
    let f = Frame::new()
        .with(t, Series::timestamps((0..n).collect()))
        .with(v, Series::from_vec((0..n).map(|i| i as f64).collect::<Vec<f64>>()));
    assert!(codec::encoded_len(&f) > 32 << 20);
    w.write(&f).await.unwrap();
    assert_eq!(w.close().await.unwrap(), TimeStamp(n));
    let back = c.read(TimeRange::from_nanos(n - 3, n), &[v]).await.unwrap();
    assert_eq!(back.concat(v).unwrap().unwrap().as_slice::<f64>().unwrap(), &[(n - 3) as f64, (n - 2) as f64, (n - 1) as f64]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_limit_get_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), test_options()).unwrap();
    let server = serve(engine, ServerConfig { max_connections: 3, ..loopback() }).await.unwrap();
    let addr = server.local_addr();
    // Three idle connections take every slot.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // No wait needed: the accept loop takes slots in connection order, so these three hold
    // them before the next connection is looked at.
    let (status, body) = raw::post(addr, "/api/v1/channels/search", &[("telemetron-protocol", "1")], b"{\"term\":\"\"}").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("server.busy") && body.contains("--max-connections"), "{body}");
    let err = telemetron::connect(&server.url(), ConnectOptions::default()).await.unwrap_err();
    assert_eq!(err.code(), "server.busy", "{err}");
    // A slot freed is a slot usable again, and the node kept working throughout.
    held.pop();
    let url = server.url();
    let c = when_not_busy("connect after a slot was freed", || telemetron::connect(&url, ConnectOptions::default())).await;
    assert!(c.search_channels("").await.unwrap().is_empty());
    drop(held);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_count_against_the_connection_limit() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), test_options()).unwrap();
    let server = serve(engine, ServerConfig { max_connections: 3, ..loopback() }).await.unwrap();
    // One pooled HTTP connection for the unary calls, then two streams: three slots.
    let c = telemetron::connect(&server.url(), ConnectOptions::default()).await.unwrap();
    let v = c.create_channels(vec![NewChannel::virtual_("v", DataType::U8)], false).await.unwrap()[0].key;
    let mut s1 = c.open_streamer(StreamerConfig::new(vec![v])).await.unwrap();
    let mut s2 = c.open_streamer(StreamerConfig::new(vec![v])).await.unwrap();
    // The upgraded streams keep their slots while they run (the slot moves with the socket
    // into the upgrade before the open is answered).
    let err = c.open_streamer(StreamerConfig::new(vec![v])).await.unwrap_err();
    assert_eq!(err.code(), "server.busy", "{err}");
    s1.close().await;
    let mut s3 = when_not_busy("open after a stream closed", || c.open_streamer(StreamerConfig::new(vec![v]))).await;
    s2.close().await;
    s3.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_after_the_write_stall_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), test_options()).unwrap();
    let t = engine.create_channel(NewChannel::index("st")).unwrap().key;
    let v = engine.create_channel(NewChannel::data("sv", DataType::F64, "st")).unwrap().key;
    const N: i64 = 500_000;
    for k in 0..4 {
        let ts: Vec<i64> = (k * N..(k + 1) * N).collect();
        let vals: Vec<f64> = ts.iter().map(|&x| x as f64).collect();
        engine.write(TimeStamp(k * N), Frame::new().with(t, Series::timestamps(ts)).with(v, Series::from_vec(vals))).unwrap();
    }
    let reply_bytes = 4 * N as usize * 16;
    // One slot, taken by the stalled connection: while it lives every other connection is
    // told `server.busy`, so a slot served again shows that the node cut it.
    let stall = Duration::from_millis(300);
    let server = serve(engine, ServerConfig { write_stall_timeout: stall, max_connections: 1, ..loopback() }).await.unwrap();
    let addr = server.local_addr();
    // Ask for all 32 MB with a small receive buffer, then read nothing.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(64 << 10).unwrap();
    let mut tcp = sock.connect(addr).await.unwrap();
    let body = format!(r#"{{"range":{{"start":0,"end":{}}},"keys":[{t},{v}]}}"#, i64::MAX);
    let req = format!(
        "POST /api/v1/frames/read HTTP/1.1\r\nhost: x\r\ntelemetron-protocol: 1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(req.as_bytes()).await.unwrap();
    let start = Instant::now();
    loop {
        let (status, body) = raw::post(addr, "/api/v1/channels/search", &[("telemetron-protocol", "1")], b"{\"term\":\"\"}").await;
        if status != 503 {
            assert_eq!(status, 200, "{body}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "the stalled connection still holds its slot after a minute");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The node gave up on it: what arrives is what was buffered before, then the end.
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    let drained = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got += n,
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the connection was not closed");
    assert!(got < reply_bytes, "the whole reply ({got} bytes) arrived: the stalled write was not cut");
    // Other clients were never affected.
    let url = server.url();
    let c = when_not_busy("connect after the stalled connection was cut", || telemetron::connect(&url, ConnectOptions::default())).await;
    let keys = [v];
    assert_eq!(when_not_busy("read", || c.read(TimeRange::MAX, &keys)).await.samples(v), 4 * N as usize);
    server.shutdown().await.unwrap();
}

/// The close code a raw stream ends with, after its `closed` message.
async fn close_code(ws: &mut raw::Ws) -> Option<u16> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    loop {
        match tokio::time::timeout(Duration::from_secs(60), ws.next()).await.expect("the node closes the stream") {
            Some(Ok(Message::Close(c))) => return c.map(|c| u16::from(c.code)),
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_stream_opens_and_ends_alike_with_named_close_codes() {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open_with(dir.path(), test_options()).unwrap();
    let v = engine.create_channel(NewChannel::index("ct")).unwrap().key;
    let server = serve(engine, loopback()).await.unwrap();
    let addr = server.local_addr();
    let open = |kind: &str| match kind {
        "writer" => format!(r#"{{"type":"open","config":{{"start":0,"channels":[{v}]}}}}"#),
        "streamer" => format!(r#"{{"type":"open","config":{{"channels":[{v}]}}}}"#),
        _ => format!(r#"{{"type":"open","config":{{"bounds":{{"start":0,"end":10}},"channels":[{v}]}}}}"#),
    };
    let not_open =
        [("writer", r#"{"type":"commit","id":1}"#), ("streamer", r#"{"type":"close"}"#), ("iterator", r#"{"type":"seek_first"}"#)];
    for (kind, request) in not_open {
        // A first message that is not `open`: refused with 1008.
        let mut ws = raw::open(addr, kind).await;
        raw::send_text(&mut ws, request).await;
        let m = raw::json(&mut ws).await.expect("a closed message");
        assert_eq!((m["type"].as_str(), m["error"]["code"].as_str()), (Some("closed"), Some("protocol.violation")), "{kind}: {m}");
        assert!(m["error"]["message"].as_str().unwrap().contains(&format!("first message on a {kind} stream must be `open`")), "{m}");
        assert_eq!(close_code(&mut ws).await, Some(CloseCode::PolicyViolation.code()), "{kind}");
        // A frame before `open`: the same.
        let mut ws = raw::open(addr, kind).await;
        raw::send_binary(&mut ws, vec![1, 2, 3]).await;
        let m = raw::json(&mut ws).await.expect("a closed message");
        assert!(m["error"]["message"].as_str().unwrap().contains(&format!("before the {kind} was opened")), "{m}");
        assert_eq!(close_code(&mut ws).await, Some(CloseCode::PolicyViolation.code()), "{kind}");
        // Opened, then closed as asked: 1000.
        let mut ws = raw::open(addr, kind).await;
        raw::send_text(&mut ws, &open(kind)).await;
        assert_eq!(raw::json(&mut ws).await.unwrap()["type"], "opened", "{kind}");
        raw::send_text(&mut ws, if kind == "writer" { r#"{"type":"close","commit":true}"# } else { r#"{"type":"close"}"# }).await;
        let m = raw::json(&mut ws).await.expect("a closed message");
        assert_eq!((m["type"].as_str(), m["error"].is_null()), (Some("closed"), true), "{kind}: {m}");
        assert_eq!(close_code(&mut ws).await, Some(CloseCode::Normal.code()), "{kind}");
    }
    // Open streams at shutdown: `server.shutdown`, then 1001.
    let mut open_streams = Vec::new();
    for kind in ["writer", "streamer", "iterator"] {
        let mut ws = raw::open(addr, kind).await;
        raw::send_text(&mut ws, &open(kind)).await;
        assert_eq!(raw::json(&mut ws).await.unwrap()["type"], "opened", "{kind}");
        open_streams.push((kind, ws));
    }
    let shutdown = tokio::spawn(server.shutdown());
    for (kind, mut ws) in open_streams {
        let m = raw::json(&mut ws).await.expect("a closed message");
        assert_eq!(m["error"]["code"], "server.shutdown", "{kind}: {m}");
        assert_eq!(close_code(&mut ws).await, Some(CloseCode::GoingAway.code()), "{kind}");
    }
    tokio::time::timeout(Duration::from_secs(60), shutdown).await.expect("shutdown in time").unwrap().unwrap();
}
