"""A node's own telemetry out over OTLP (``telemetron serve --otlp-endpoint``), received
by servers built here from the official ``opentelemetry-proto`` Python classes (a grpcio
servicer and an HTTP handler), so nothing of Telemetron's decodes what Telemetron sent
(docs/observability.md §9)."""

from __future__ import annotations

import ssl
import threading
import time
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import numpy as np
import pytest
import trustme
from conftest import Server, free_port
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

import telemetron as tn


class Collected:
    """What a collector received, decoded with the official classes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.metrics: list[metrics_service_pb2.ExportMetricsServiceRequest] = []
        self.logs: list[logs_service_pb2.ExportLogsServiceRequest] = []
        self.traces: list[trace_service_pb2.ExportTraceServiceRequest] = []

    def spans(self) -> list:
        with self.lock:
            return [s for req in self.traces for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans]

    def sums(self, name: str) -> list[float]:
        """The data points of sum metric ``name``, across every request, in order."""
        out = []
        with self.lock:
            for req in self.metrics:
                for rm in req.resource_metrics:
                    for sm in rm.scope_metrics:
                        for m in sm.metrics:
                            if m.name == name:
                                assert m.WhichOneof("data") == "sum", m
                                assert m.sum.is_monotonic
                                out += [p.as_double for p in m.sum.data_points]
        return out

    def resources(self) -> list[dict]:
        with self.lock:
            return [{kv.key: kv.value.string_value for kv in rm.resource.attributes} for req in self.metrics for rm in req.resource_metrics]

    def log_bodies(self) -> list[str]:
        with self.lock:
            return [r.body.string_value for req in self.logs for rl in req.resource_logs for sl in rl.scope_logs for r in sl.log_records]


def grpc_collector(port: int, got: Collected, tls: trustme.LeafCert | None = None):
    class Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
        def Export(self, request, context):  # noqa: N802 (the generated name)
            with got.lock:
                got.metrics.append(request)
            return metrics_service_pb2.ExportMetricsServiceResponse()

    class Logs(logs_service_pb2_grpc.LogsServiceServicer):
        def Export(self, request, context):  # noqa: N802
            with got.lock:
                got.logs.append(request)
            return logs_service_pb2.ExportLogsServiceResponse()

    class Traces(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):  # noqa: N802
            with got.lock:
                got.traces.append(request)
            return trace_service_pb2.ExportTraceServiceResponse()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Traces(), server)
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(Metrics(), server)
    logs_service_pb2_grpc.add_LogsServiceServicer_to_server(Logs(), server)
    if tls is None:
        server.add_insecure_port(f"127.0.0.1:{port}")
    else:
        creds = grpc.ssl_server_credentials([(tls.private_key_pem.bytes(), tls.cert_chain_pems[0].bytes())])
        server.add_secure_port(f"127.0.0.1:{port}", creds)
    server.start()
    return server.stop


def http_collector(port: int, got: Collected, tls: trustme.LeafCert | None = None):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            assert self.headers["Content-Type"] == "application/x-protobuf"
            if self.path == "/v1/metrics":
                req, resp = metrics_service_pb2.ExportMetricsServiceRequest(), metrics_service_pb2.ExportMetricsServiceResponse()
                req.ParseFromString(body)
                with got.lock:
                    got.metrics.append(req)
            elif self.path == "/v1/traces":
                req, resp = trace_service_pb2.ExportTraceServiceRequest(), trace_service_pb2.ExportTraceServiceResponse()
                req.ParseFromString(body)
                with got.lock:
                    got.traces.append(req)
            elif self.path == "/v1/logs":
                req, resp = logs_service_pb2.ExportLogsServiceRequest(), logs_service_pb2.ExportLogsServiceResponse()
                req.ParseFromString(body)
                with got.lock:
                    got.logs.append(req)
            else:
                self.send_error(404)
                return
            out = resp.SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    if tls is not None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.configure_cert(ctx)
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(_grace=None) -> None:
        server.shutdown()
        server.server_close()

    return stop


def wait_for(what, check, server: Server, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        v = check()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {server.logs()}")
        time.sleep(0.05)


@pytest.mark.parametrize("protocol", ["grpc", "http", "grpc-tls", "http-tls"])
def test_node_metrics_and_logs_reach_an_otlp_collector(tmp_path, protocol: str) -> None:
    got = Collected()
    port = free_port()
    # With TLS: a collector whose certificate comes from a CA of this test, which the node is
    # told to trust (--otlp-ca).
    ca = trustme.CA() if protocol.endswith("-tls") else None
    leaf = ca.issue_cert("127.0.0.1") if ca else None
    kind = protocol.removesuffix("-tls")
    stop = grpc_collector(port, got, leaf) if kind == "grpc" else http_collector(port, got, leaf)
    args = ["--name", "daq-7", "--otlp-protocol", kind, "--otlp-interval", "100ms"]
    if ca is not None:
        ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
        args += ["--otlp-endpoint", f"https://127.0.0.1:{port}", "--otlp-ca", str(tmp_path / "ca.pem")]
    else:
        args += ["--otlp-endpoint", f"http://127.0.0.1:{port}"]
    server = Server(tmp_path / "data", tuple(args))
    try:
        with tn.connect(server.url) as client:
            client.channels.create([tn.NewChannel("time", is_index=True), tn.NewChannel("p", "f64", index="time")])
            before = wait_for("a first metrics export", lambda: got.sums("telemetron.storage.samples"), server)[-1]
            t = 1_000_000_000 + np.arange(5000, dtype=np.int64) * 1000
            client.write(int(t[0]), {"time": t, "p": np.sin(t / 1e9)})
            # The counter moves by at least the 10,000 samples written (index and data).
            wait_for(
                "the write to show in the exported counter",
                lambda: got.sums("telemetron.storage.samples")[-1] >= before + 10_000,
                server,
            )
        res = got.resources()[-1]
        assert res["service.name"] == "telemetron" and res["service.instance.id"] == "daq-7", res
        # The node's log events go out too: the flow's start is one of them.
        wait_for("log records", lambda: got.log_bodies(), server)
    finally:
        server.stop()
        stop(None)


def test_a_python_write_and_the_nodes_spans_for_it_share_one_trace(tmp_path) -> None:
    """The SDK joins the caller's OpenTelemetry context (``opentelemetry-api``), sends its
    ``traceparent``, and the node's request, engine and storage spans nest under the
    SDK's span for the write, in one trace."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    mine = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(mine))
    # The SDK's spans come from the global tracer provider (set once per process).
    trace.set_tracer_provider(provider)
    assert trace.get_tracer_provider() is provider

    got = Collected()
    port = free_port()
    stop = grpc_collector(port, got)
    server = Server(
        tmp_path / "data",
        ("--trace-level", "basic", "--otlp-endpoint", f"http://127.0.0.1:{port}", "--otlp-interval", "100ms"),
    )
    try:
        with tn.connect(server.url) as client:
            client.channels.create([tn.NewChannel("time", is_index=True), tn.NewChannel("p", "f64", index="time")])
            t = 1_000 + np.arange(100, dtype=np.int64)
            with trace.get_tracer("test-sequence").start_as_current_span("sequence") as seq:
                client.write(int(t[0]), {"time": t, "p": t * 0.5})
            trace_id = seq.get_span_context().trace_id

            def node_spans() -> dict:
                spans = [s for s in got.spans() if int.from_bytes(s.trace_id, "big") == trace_id]
                return {s.name: s for s in spans} if any(s.name == "storage.commit" for s in spans) else {}

            node = wait_for("the node's spans of the write", node_spans, server)

            # A stream joins the trace too: the writer's stream span is a child of the SDK's
            # `telemetron.open_writer`, and its commits are children of the stream.
            t2 = 10_000 + np.arange(10, dtype=np.int64)
            with trace.get_tracer("test-sequence").start_as_current_span("streamed") as streamed:
                with client.open_writer(int(t2[0]), ["p"], auto_commit=False) as w:
                    w.write({"time": t2, "p": t2 * 0.5})
                    w.commit()
            streamed_id = streamed.get_span_context().trace_id

            def stream_spans() -> list:
                spans = [s for s in got.spans() if int.from_bytes(s.trace_id, "big") == streamed_id]
                names = [s.name for s in spans]
                return spans if "telemetron.stream" in names and "storage.commit" in names else []

            in_stream = wait_for("the writer stream's spans", stream_spans, server)
        sdk = {s.name: s for s in mine.get_finished_spans()}
        write = sdk["telemetron.write"]
        assert write.parent.span_id == seq.get_span_context().span_id
        assert write.kind == trace.SpanKind.CLIENT
        # One trace: the SDK's write span -> the node's request -> engine.write -> storage.commit.
        request = [
            s
            for s in got.spans()
            if s.name == "telemetron.request" and any(a.key == "http.route" and a.value.string_value == "/api/v1/frames/write" for a in s.attributes)
        ]
        assert len(request) == 1, [s.name for s in got.spans()]
        request = request[0]
        assert int.from_bytes(request.trace_id, "big") == trace_id
        assert int.from_bytes(request.parent_span_id, "big") == write.context.span_id
        assert node["engine.write"].parent_span_id == request.span_id
        assert node["storage.commit"].parent_span_id == node["engine.write"].span_id
        assert all(s.start_time_unix_nano <= s.end_time_unix_nano for s in node.values())
        opened = [s for s in mine.get_finished_spans() if s.name == "telemetron.open_writer"][-1]
        stream = next(s for s in in_stream if s.name == "telemetron.stream")
        upgrade = next(s for s in in_stream if s.span_id == stream.parent_span_id)
        assert upgrade.name == "telemetron.request" and int.from_bytes(upgrade.parent_span_id, "big") == opened.context.span_id
        commits = [s for s in in_stream if s.name == "storage.commit"]
        assert commits and all(c.parent_span_id == stream.span_id for c in commits)
        # The node names itself in the resource of its spans.
        resources = [{kv.key: kv.value.string_value for kv in rs.resource.attributes} for req in got.traces for rs in req.resource_spans]
        assert resources and all(r["service.name"] == "telemetron" for r in resources)
    finally:
        server.stop()
        stop(None)


def test_a_collector_the_node_does_not_trust_gets_nothing_and_the_flow_says_why(tmp_path) -> None:
    got = Collected()
    port = free_port()
    stop = http_collector(port, got, trustme.CA().issue_cert("127.0.0.1"))
    # No --otlp-ca: the web's roots do not vouch for this test's CA.
    args = ("--otlp-endpoint", f"https://127.0.0.1:{port}", "--otlp-protocol", "http", "--otlp-interval", "100ms")
    server = Server(tmp_path / "data", args)
    try:
        with tn.connect(server.url) as client:

            def refused():
                flow = client.flows.get("node-telemetry")
                return [e for e in flow.errors if "certificate" in e.error.lower()]

            errors = wait_for("the export to be refused for its certificate", refused, server)
            assert "https://127.0.0.1" in errors[0].error, errors
        assert not got.metrics, "nothing reached a collector the node does not trust"
    finally:
        server.stop()
        stop()
