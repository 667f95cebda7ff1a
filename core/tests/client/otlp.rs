//! OpenTelemetry in and out of flows: `otlp_receiver` (gRPC and HTTP/protobuf) into
//! channels of a real engine, and `otlp_exporter` sending to it over both protocols, on
//! loopback. (Clients written by others, the Python OpenTelemetry SDK and the official
//! protobuf classes, are in tests/python/test_otlp.py.)

use std::time::Duration;

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric::Data, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use telemetron::flow::{self, BuildEnv, FlowConfig, FlowHandle};
use telemetron::telem::TimeRange;
use telemetron::{Client, Engine};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn start(yaml: &str, client: &Client) -> FlowHandle {
    flow::compile(FlowConfig::parse(yaml).unwrap(), &BuildEnv::with_client(client.clone())).unwrap().start().unwrap()
}

/// Wait until the receiver listens on `port`.
async fn listening(port: u16) {
    for _ in 0..500 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("nothing listens on {port}");
}

/// A flow that stores what OTLP senders send into channels under `otel/`.
fn receiving(client: &Client) -> (FlowHandle, u16, u16) {
    let (grpc, http) = (free_port(), free_port());
    let yaml = format!(
        "flow: otlp-in\nnodes:\n  otlp: {{type: otlp_receiver, grpc: '127.0.0.1:{grpc}', http: '127.0.0.1:{http}', signals: [metrics], to: [store]}}\n  store: {{type: channels_exporter, prefix: otel/}}\n"
    );
    (start(&yaml, client), grpc, http)
}

async fn values(client: &Client, name: &str) -> Vec<f64> {
    let ch = client.channels(&[name.into()]).await.unwrap_or_else(|e| panic!("channel {name}: {e}"));
    let frame = client.read(TimeRange::MAX, &[ch[0].key]).await.unwrap();
    frame.concat(ch[0].key).unwrap().map(|s| s.as_slice::<f64>().unwrap().to_vec()).unwrap_or_default()
}

fn kv(k: &str, v: &str) -> KeyValue {
    KeyValue { key: k.into(), value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }), ..Default::default() }
}

fn counter(t: u64, v: i64) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: vec![kv("service.name", "rig"), kv("host.name", "h1")], ..Default::default() }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "valve.cycles".into(),
                    data: Some(Data::Sum(Sum {
                        data_points: vec![NumberDataPoint {
                            attributes: vec![kv("valve", "v1")],
                            time_unix_nano: t,
                            value: Some(number_data_point::Value::AsInt(v)),
                            ..Default::default()
                        }],
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_grpc_points_land_in_channels_once_and_only_after_the_commit() {
    let dir = tempfile::tempdir().unwrap();
    let client = Client::embedded(Engine::open(dir.path()).unwrap());
    let (flow, grpc, _) = receiving(&client);
    let mut sender = loop {
        match MetricsServiceClient::connect(format!("http://127.0.0.1:{grpc}")).await {
            Ok(c) => break c,
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    for (t, v) in [(1_000, 3), (2_000, 5), (3_000, 9)] {
        // The answer comes after the commit: the value is readable as soon as it arrives.
        sender.export(counter(t, v)).await.unwrap();
        let stored = values(&client, "otel/valve.cycles{service.name=rig,valve=v1}").await;
        assert_eq!(stored.last(), Some(&(v as f64)));
    }
    // The same export again (a sender's retry) is stored once.
    sender.export(counter(3_000, 9)).await.unwrap();
    assert_eq!(values(&client, "otel/valve.cycles{service.name=rig,valve=v1}").await, [3.0, 5.0, 9.0]);
    let index = client.channels(&["otel/valve.cycles{service.name=rig,valve=v1}:time".into()]).await.unwrap();
    assert!(index[0].is_index(), "each series has its own index channel");

    // A different value at a stored time is a conflict: refused for good, not stored.
    let e = sender.export(counter(3_000, 10)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e}");
    assert_eq!(values(&client, "otel/valve.cycles{service.name=rig,valve=v1}").await, [3.0, 5.0, 9.0]);

    // Logs are not taken by this receiver (`signals: [metrics]`).
    let mut logs = opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient::connect(format!(
        "http://127.0.0.1:{grpc}"
    ))
    .await
    .unwrap();
    let e = logs.export(opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest::default()).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unimplemented, "{e}");
    let report = flow.shutdown(Duration::from_secs(5)).await;
    assert_eq!(report.node("otlp").unwrap().acked, 4);
    assert_eq!(report.node("otlp").unwrap().nacked, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_exporter_sends_over_grpc_and_http_to_a_receiver_and_values_arrive_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let client = Client::embedded(Engine::open(dir.path()).unwrap());
    let (flow, grpc, http) = receiving(&client);
    listening(grpc).await;
    listening(http).await;
    for (protocol, port, count) in [("grpc", grpc, 5), ("http", http, 7)] {
        let yaml = format!(
            "flow: out-{protocol}\nnodes:\n  gen: {{type: generator, signal: metrics, rows: 8, count: {count}, to: [out]}}\n  out: {{type: otlp_exporter, protocol: {protocol}, endpoint: 'http://127.0.0.1:{port}'}}\n"
        );
        let report = start(&yaml, &client).finish(Duration::from_secs(10)).await;
        assert_eq!(report.node("gen").unwrap().acked, count, "{protocol}: {:?}", report.errors);
        assert_eq!(report.node("out").unwrap().errors, 0, "{protocol}");
    }
    // The generator's rows are `pt_0`..`pt_7`, value sin((seq * rows + i) * 0.01): each
    // channel holds one value per message of each run, exactly as generated.
    let stored = values(&client, "otel/pt_3").await;
    assert_eq!(stored.len(), 12);
    let expected: Vec<f64> = (0..5).chain(0..7).map(|seq: i64| ((seq * 8 + 3) as f64 * 0.01).sin()).collect();
    assert_eq!(stored, expected);
    flow.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_a_retryable_nack_and_bad_options_are_named() {
    let port = free_port();
    let yaml = format!(
        "flow: out\nnodes:\n  gen: {{type: generator, signal: metrics, count: 2, to: [out]}}\n  out: {{type: otlp_exporter, protocol: http, timeout: 1s, endpoint: 'http://127.0.0.1:{port}'}}\n"
    );
    let report = flow::compile(FlowConfig::parse(&yaml).unwrap(), &BuildEnv::default())
        .unwrap()
        .start()
        .unwrap()
        .finish(Duration::from_secs(10))
        .await;
    let gen_ = report.node("gen").unwrap();
    assert_eq!((gen_.acked, gen_.nacked), (0, 2));
    assert!(report.errors.iter().any(|(_, e)| e.contains(&format!("127.0.0.1:{port}"))), "{:?}", report.errors);

    for (options, says) in [
        ("{type: otlp_exporter, endpoint: 'ftp://x'}", "needs http:// or https://"),
        ("{type: otlp_exporter, endpoint: 'https://x:4317', ca: '/no/such/ca.pem'}", "cannot read /no/such/ca.pem"),
        ("{type: otlp_exporter, endpoint: 'http://x:4317', ca: 'ca.pem'}", "`ca` is for https"),
        ("{type: otlp_exporter, endpoint: 'http://x', protocol: udp}", "unknown variant `udp`"),
        ("{type: otlp_receiver, grpc: off, http: off, to: [d]}", "listen nowhere"),
        ("{type: otlp_receiver, grpc: 'localhost', to: [d]}", "not an address"),
        ("{type: otlp_receiver, signals: [frames], to: [d]}", "not one of metrics, logs, traces"),
    ] {
        let yaml = format!("flow: bad\nnodes:\n  n: {options}\n  d: {{type: discard}}\n");
        let e = flow::compile(FlowConfig::parse(&yaml).unwrap(), &BuildEnv::default()).unwrap_err().to_string();
        assert!(e.contains(says), "{options}: {e}");
    }
}
