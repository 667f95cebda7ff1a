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

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import Server, free_port
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


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_sdk_metrics_land_in_channels_exactly(otlp_node, protocol: str) -> None:
    server, grpc, http, _ = otlp_node
    if protocol == "grpc":
        exporter = GrpcMetricExporter(endpoint=f"127.0.0.1:{grpc}", insecure=True)
    else:
        exporter = HttpMetricExporter(endpoint=f"http://127.0.0.1:{http}/v1/metrics")
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
