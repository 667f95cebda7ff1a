"""OpenTelemetry into a node, with clients nobody here wrote: the Python
``opentelemetry-sdk`` and its OTLP exporters (gRPC and HTTP/protobuf) send metrics, logs
and traces to a ``telemetron serve`` node running an ``otlp_receiver`` flow; metric values
land in channels and read back exactly through the SDK, logs and traces land in Parquet
files (docs/observability.md §8)."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import gzip
import json
import urllib.error
import urllib.request

import grpc as grpc_lib
import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import Server, free_port
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import telemetron as tn

FLOW = """flow: otlp-in
nodes:
  otlp: {{type: otlp_receiver, grpc: '127.0.0.1:{grpc}', http: '127.0.0.1:{http}', to: [route]}}
  route: {{type: type_router, to: {{metrics: [store], logs: [logs], traces: [spans]}}}}
  store: {{type: channels_exporter, prefix: otel/}}
  logs: {{type: parquet_exporter, dir: '{dir}/logs', roll: 50ms}}
  spans: {{type: parquet_exporter, dir: '{dir}/spans', roll: 50ms}}
"""


def wait_listening(port: int, server: Server) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the OTLP receiver did not listen on {port}: {server.logs()}") from None
            time.sleep(0.05)


@pytest.fixture
def otlp_node(tmp_path: Path):
    """A node whose flow stores OTLP metrics under ``otel/`` and logs and spans in Parquet."""
    grpc, http = free_port(), free_port()
    flow = tmp_path / "otlp.yaml"
    flow.write_text(FLOW.format(grpc=grpc, http=http, dir=tmp_path / "out"))
    server = Server(tmp_path / "data", ("--flow", str(flow)))
    try:
        wait_listening(grpc, server)
        wait_listening(http, server)
        yield server, grpc, http, tmp_path / "out"
    finally:
        server.stop()


def values(client: tn.Client, name: str) -> list[float]:
    return np.asarray(client.read(None, [name])[name]).tolist()


@pytest.mark.parametrize("protocol", ["grpc", "http", "grpc-gzip", "http-gzip", "http-deflate"])
def test_sdk_metrics_land_in_channels_exactly(otlp_node, protocol: str) -> None:
    server, grpc, http, _ = otlp_node
    if protocol == "grpc":
        exporter = GrpcMetricExporter(endpoint=f"127.0.0.1:{grpc}", insecure=True)
    elif protocol == "grpc-gzip":
        exporter = GrpcMetricExporter(endpoint=f"127.0.0.1:{grpc}", insecure=True, compression=grpc_lib.Compression.Gzip)
    elif protocol == "http":
        exporter = HttpMetricExporter(endpoint=f"http://127.0.0.1:{http}/v1/metrics")
    else:
        kind = HttpCompression.Gzip if protocol == "http-gzip" else HttpCompression.Deflate
        exporter = HttpMetricExporter(endpoint=f"http://127.0.0.1:{http}/v1/metrics", compression=kind)
    # Exported only when flushed: each flush is one export request, one stored point.
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(resource=Resource.create({"service.name": f"seq-{protocol}"}), metric_readers=[reader])
    meter = provider.get_meter("test-sequence")
    cycles = meter.create_counter("valve.cycles", unit="1")
    level = meter.create_gauge("tank.level", unit="m")
    step = meter.create_histogram("step.duration", unit="s")
    adds, levels, steps = [3, 5, 9], [0.25, 1.5, 1.125], [0.004, 0.2, 7.5]
    for a, lv, st in zip(adds, levels, steps):
        cycles.add(a, {"valve": "v1"})
        level.set(lv, {"tank": "t1"})
        step.record(st)
        assert provider.force_flush(10_000), server.logs()

    svc = f"service.name=seq-{protocol}"
    with tn.connect(server.url) as client:
        # A monotonic counter arrives cumulative: the running totals, exactly.
        assert values(client, f"otel/valve.cycles{{{svc},valve=v1}}") == [3.0, 8.0, 17.0]
        assert values(client, f"otel/tank.level{{{svc},tank=t1}}") == levels
        assert values(client, f"otel/step.duration:count{{{svc}}}") == [1.0, 2.0, 3.0]
        assert values(client, f"otel/step.duration:sum{{{svc}}}") == pytest.approx(np.cumsum(steps).tolist(), abs=0)
        # The SDK's default bounds (0, 5, 10, 25, ...): 0.004 and 0.2 are at or below 5,
        # 7.5 at or below 10; each bucket row counts what is at or below its bound.
        assert values(client, f"otel/step.duration:bucket{{le=0,{svc}}}")[-1] == 0.0
        assert values(client, f"otel/step.duration:bucket{{le=5,{svc}}}") == [1.0, 2.0, 2.0]
        assert values(client, f"otel/step.duration:bucket{{le=10,{svc}}}")[-1] == 3.0
        assert values(client, f"otel/step.duration:bucket{{le=+Inf,{svc}}}")[-1] == 3.0
        index = client.channels.retrieve(f"otel/valve.cycles{{{svc},valve=v1}}:time")
        assert index.is_index
    # Shutting down exports once more: the totals again, at a later time.
    provider.shutdown()
    with tn.connect(server.url) as client:
        assert values(client, f"otel/valve.cycles{{{svc},valve=v1}}") == [3.0, 8.0, 17.0, 17.0]


@pytest.mark.filterwarnings("ignore:.*LoggingHandler.*:DeprecationWarning")
def test_sdk_logs_and_spans_reach_the_flow(otlp_node) -> None:
    server, grpc, http, out = otlp_node
    resource = Resource.create({"service.name": "seq"})

    logs = LoggerProvider(resource=resource)
    logs.add_log_record_processor(SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"127.0.0.1:{grpc}", insecure=True)))
    log = logging.getLogger("otlp-test")
    log.propagate = False
    handler = LoggingHandler(logger_provider=logs)
    log.addHandler(handler)
    log.warning("valve v1 slow to open: %d ms", 87)
    logs.shutdown()
    log.removeHandler(handler)

    traces = TracerProvider(resource=resource)
    traces.add_span_processor(SimpleSpanProcessor(GrpcSpanExporter(endpoint=f"127.0.0.1:{grpc}", insecure=True)))
    traces.add_span_processor(SimpleSpanProcessor(HttpSpanExporter(endpoint=f"http://127.0.0.1:{http}/v1/traces")))
    tracer = traces.get_tracer("test-sequence")
    with tracer.start_as_current_span("sequence") as parent, tracer.start_as_current_span("open valve") as child:
        child.set_attribute("valve", "v1")
    traces.shutdown()

    def table(sub: str):
        files = sorted((out / sub).glob("*.parquet"))
        assert files, f"no {sub} file: {server.logs()}"
        return pq.read_table(files).to_pylist()

    rows = table("logs")
    assert [r["body"] for r in rows] == ["valve v1 slow to open: 87 ms"]
    assert rows[0]["severity_text"] in ("WARN", "WARNING") and rows[0]["severity_number"] == 13
    assert '"service.name":"seq"' in rows[0]["attributes"]

    spans = table("spans")
    # Each span came twice, once per protocol.
    assert sorted(s["name"] for s in spans) == ["open valve", "open valve", "sequence", "sequence"]
    ctx_parent, ctx_child = parent.get_span_context(), child.get_span_context()
    for s in spans:
        assert int.from_bytes(s["trace_id"], "big") == ctx_parent.trace_id
        if s["name"] == "open valve":
            assert int.from_bytes(s["span_id"], "big") == ctx_child.span_id
            assert int.from_bytes(s["parent_span_id"], "big") == ctx_parent.span_id
            assert '"valve":"v1"' in s["attributes"]
        else:
            assert s["parent_span_id"] == bytes(8)


def post(url: str, body: bytes, content_type: str, encoding: str | None = None) -> tuple[int, str, bytes]:
    headers = {"Content-Type": content_type}
    if encoding:
        headers["Content-Encoding"] = encoding
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


# OTLP/HTTP JSON as the specification writes it (opentelemetry-proto's examples): camelCase
# fields, 64-bit integers as strings, integer enums, hex trace and span ids.
METRICS_JSON = {
    "resourceMetrics": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-rig"}}]},
            "scopeMetrics": [
                {
                    "scope": {"name": "bench"},
                    "metrics": [
                        {
                            "name": "pump.rpm",
                            "unit": "1/min",
                            "gauge": {
                                "dataPoints": [
                                    {"timeUnixNano": "1700000000000000000", "asDouble": 1450.5, "attributes": [{"key": "pump", "value": {"stringValue": "p1"}}]}
                                ]
                            },
                        },
                        {
                            # Zero values left out, as protobuf JSON encoders do: scale 0, flags,
                            # attributes, exemplars, the zero threshold.
                            "name": "step.exp",
                            "exponentialHistogram": {
                                "aggregationTemporality": 2,
                                "dataPoints": [
                                    {"timeUnixNano": "1700000000000000000", "count": "100", "sum": 150000.0, "zeroCount": "10", "positive": {"offset": 10, "bucketCounts": ["90"]}}
                                ],
                            },
                        },
                        {
                            "name": "valve.cycles",
                            "sum": {
                                "aggregationTemporality": 2,
                                "isMonotonic": True,
                                "dataPoints": [{"startTimeUnixNano": "1699999999000000000", "timeUnixNano": "1700000000000000000", "asInt": "42"}],
                            },
                        },
                    ],
                }
            ],
        }
    ]
}


def test_http_takes_otlp_json_and_compressed_bodies_and_refuses_what_it_cannot_read(otlp_node) -> None:
    server, _, http, out = otlp_node
    url = f"http://127.0.0.1:{http}/v1/metrics"
    body = json.dumps(METRICS_JSON).encode()
    status, ctype, answer = post(url, body, "application/json")
    assert (status, ctype) == (200, "application/json"), answer
    assert isinstance(json.loads(answer), dict), "a JSON request is answered in JSON"
    # The same request again, gzip-compressed, one point later.
    later = json.loads(body)
    gauge = later["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["gauge"]["dataPoints"][0]
    gauge.update(timeUnixNano="1700000001000000000", asDouble=1460.25)
    status, _, answer = post(url, gzip.compress(json.dumps(later).encode()), "application/json", "gzip")
    assert status == 200, answer
    with tn.connect(server.url) as client:
        assert values(client, "otel/pump.rpm{pump=p1,service.name=json-rig}") == [1450.5, 1460.25]
        assert values(client, "otel/valve.cycles{service.name=json-rig}") == [42.0]
        assert values(client, "otel/step.exp:count{service.name=json-rig}") == [100.0]
        # Scale 0: 90 observations in (1024, 2048]; the 50th of 100 is 40/90 into it.
        assert values(client, "otel/step.exp{quantile=0.5,service.name=json-rig}") == [1024 + 1024 * 40 / 90]

    # A log record with a hex trace id, as JSON.
    trace_id, span_id = "5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174"
    logs = {
        "resourceLogs": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-rig"}}]},
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": "1700000000000000000",
                                "severityNumber": 13,
                                "severityText": "WARN",
                                "body": {"stringValue": "pump p1 cavitating"},
                                "traceId": trace_id,
                                "spanId": span_id,
                            }
                        ]
                    }
                ],
            }
        ]
    }
    status, _, answer = post(f"http://127.0.0.1:{http}/v1/logs", json.dumps(logs).encode(), "application/json; charset=utf-8")
    assert status == 200, answer
    deadline = time.monotonic() + 10
    while not list((out / "logs").glob("*.parquet")):
        assert time.monotonic() < deadline, server.logs()
        time.sleep(0.05)
    rows = pq.read_table(sorted((out / "logs").glob("*.parquet"))).to_pylist()
    assert [r["body"] for r in rows] == ["pump p1 cavitating"]
    assert trace_id in rows[0]["attributes"] and span_id in rows[0]["attributes"], rows[0]["attributes"]

    # What it cannot read is refused with what to send instead, and nothing is stored.
    status, _, answer = post(url, b"<xml/>", "application/xml")
    assert status == 415 and b"application/json" in answer
    status, _, answer = post(url, body, "application/json", "br")
    assert status == 415 and b"gzip" in answer
    status, _, answer = post(url, b"not gzip at all", "application/json", "gzip")
    assert status == 400 and b"not valid gzip" in answer
    status, _, answer = post(url, b'{"resourceMetrics": 7}', "application/json")
    assert status == 400 and b"not an OTLP JSON message" in answer
    # A small body that expands beyond the request limit (16 MiB) is refused, not inflated.
    bomb = gzip.compress(b" " * (17 << 20))
    assert len(bomb) < 100_000
    status, _, answer = post(url, bomb, "application/json", "gzip")
    assert status == 413, answer
    with tn.connect(server.url) as client:
        assert values(client, "otel/pump.rpm{pump=p1,service.name=json-rig}") == [1450.5, 1460.25]


def test_exponential_histograms_arrive_as_count_sum_range_and_quantiles(otlp_node) -> None:
    from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View

    server, grpc, _, _ = otlp_node
    reader = PeriodicExportingMetricReader(GrpcMetricExporter(endpoint=f"127.0.0.1:{grpc}", insecure=True), export_interval_millis=3_600_000)
    provider = MeterProvider(
        resource=Resource.create({"service.name": "exp"}),
        metric_readers=[reader],
        views=[View(instrument_name="step.latency", aggregation=ExponentialBucketHistogramAggregation())],
    )
    latency = provider.get_meter("test-sequence").create_histogram("step.latency", unit="ms")
    observed = np.arange(1.0, 1001.0)  # 1 ms ... 1000 ms
    for v in observed:
        latency.record(float(v))
    assert provider.force_flush(10_000), server.logs()
    provider.shutdown()
    with tn.connect(server.url) as client:
        assert values(client, "otel/step.latency:count{service.name=exp}")[0] == 1000.0
        assert values(client, "otel/step.latency:sum{service.name=exp}")[0] == observed.sum()
        assert values(client, "otel/step.latency:min{service.name=exp}")[0] == 1.0
        assert values(client, "otel/step.latency:max{service.name=exp}")[0] == 1000.0
        for q in (0.5, 0.9, 0.99):
            got = values(client, f"otel/step.latency{{quantile={q},service.name=exp}}")[0]
            exact = float(np.quantile(observed, q))
            # Exact to a bucket's width: at the SDK's scale for this range, a few percent.
            assert abs(got - exact) / exact < 0.05, (q, got, exact)
