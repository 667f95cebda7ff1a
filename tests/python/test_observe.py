"""Instrumentation through the SDK (``client.observe``) on both backends, and a node's
``GET /metrics`` read by Prometheus's own text parser (``prometheus_client``), with its
self-telemetry channels read back through the SDK."""

import time
import urllib.request

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

import telemetron as tn
from conftest import Server


def write_samples(client: tn.Client, name: str, n: int) -> None:
    client.channels.create(name=f"{name}_t", is_index=True, retrieve_if_name_exists=True)
    client.channels.create(name=name, data_type="float64", index=f"{name}_t", retrieve_if_name_exists=True)
    start = time.time_ns()
    ts = start + np.arange(n, dtype=np.int64) * 1_000
    client.write(start, {f"{name}_t": ts, name: np.linspace(0.0, 1.0, n)})


def test_levels_and_metrics_on_every_backend(client, backend):
    levels = client.observe.levels()
    assert levels == tn.Levels(logs="basic", metrics="basic")
    before = client.observe.metrics()["_telemetron/storage/samples"]
    write_samples(client, "pressure", 1_000)
    after = client.observe.metrics()
    if backend == "cluster":
        # The metrics are the connected node's own: the gateway stores nothing (its
        # channels live on the other node, which counts these samples).
        assert after["_telemetron/storage/samples"] == before
        assert after["_telemetron/storage/commits"] == 0
    else:
        assert after["_telemetron/storage/samples"] - before >= 2_000  # samples and timestamps
        assert after["_telemetron/storage/commits"] >= 1
        assert after["_telemetron/control/transfers"] >= 1

    assert client.observe.set_levels(metrics="off").metrics == "off"
    assert client.observe.metrics() == {}
    with pytest.raises(tn.InvalidArgument, match="off, basic or detailed"):
        client.observe.set_levels(metrics="loud")
    assert client.observe.levels().metrics == "off", "a refused change changes nothing"
    assert client.observe.set_levels(metrics="basic") == tn.Levels(logs="basic", metrics="basic")
    assert client.observe.set_levels(traces="basic").traces == "basic"
    assert client.observe.set_levels(traces="off") == tn.Levels(logs="basic", metrics="basic", traces="off")
    assert client.observe.metrics()["_telemetron/storage/samples"] >= after["_telemetron/storage/samples"]


def scrape(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = r.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def test_prometheus_text_parses_and_moves_and_self_telemetry_reads_back(tmp_path):
    server = Server(tmp_path / "data", extra=("--self-telemetry", "100ms", "--name", "rig-7"))
    try:
        first = scrape(server.url)
        key = ("telemetron_storage_samples_total", (("key", "storage"),))
        info = (("service_instance_id", "rig-7"), ("service_name", "telemetron"), ("service_version", tn.__version__))
        assert ("target_info", info) in first
        with tn.connect(server.url) as c:
            write_samples(c, "thrust", 5_000)
            second = scrape(server.url)
            assert second[key] - first[key] >= 10_000
            writes = [
                v
                for (name, labels), v in second.items()
                if name == "telemetron_server_request_duration_seconds_count" and ("route", "/api/v1/frames/write") in labels
            ]
            assert sum(writes) >= 1, "the write request is timed"
            # The node's own channels carry the same counter; wait for the next write.
            deadline = time.monotonic() + 10
            while True:
                frame = c.read(None, "_telemetron/storage/samples")
                values = frame["_telemetron/storage/samples"]
                if len(values) and values[-1] >= second[key]:
                    break
                assert time.monotonic() < deadline, f"self-telemetry never reached {second[key]}: {values[-5:]}"
                time.sleep(0.1)
            assert np.all(np.diff(values) >= 0), "a counter never goes down"
            assert len(frame["_telemetron/time"]) == len(values), "each value has its timestamp"
    finally:
        server.stop()


def test_a_node_summarizes_its_history_and_a_finished_run_is_summarized_afterwards(tmp_path):
    server = Server(tmp_path / "data", extra=("--self-telemetry", "100ms"))
    try:
        with tn.connect(server.url) as c:
            write_samples(c, "thrust", 5_000)
            deadline = time.monotonic() + 10
            while True:
                s = c.observe.summary("10m")
                if "_telemetron/storage/samples" in s and (s["_telemetron/storage/samples"].increase or 0) >= 10_000:
                    break
                assert time.monotonic() < deadline, f"the history never showed the write: {s.series.get('_telemetron/storage/samples')}"
                time.sleep(0.1)
            assert s.end - s.start == 600 * 10**9
            stored = s["_telemetron/storage/samples"]
            assert stored.kind == "counter" and stored.rate > 0 and stored.points >= 2
            assert stored.min is None, "a counter has no range"
            assert isinstance(stored.last_time, tn.TimeStamp)
            sync = s["_telemetron/storage/sync.duration"]
            assert (sync.kind, sync.unit) == ("histogram", "s")
            streamers = s["_telemetron/relay/streamers"]
            assert streamers.kind == "gauge" and streamers.min <= streamers.mean <= streamers.max
            df = s.to_pandas()
            assert df.loc["_telemetron/storage/samples", "increase"] == stored.increase
            assert df.loc["_telemetron/relay/streamers", "kind"] == "gauge"
            # Windows as timedelta or seconds; a filter; an end before the history.
            import datetime

            assert set(c.observe.summary(datetime.timedelta(minutes=10), filter="storage/commits").series) == {"_telemetron/storage/commits"}
            assert len(c.observe.summary(600.0)) == len(s)
            # Tiny and huge windows are durations too (no exponent notation reaches the core).
            assert isinstance(c.observe.summary(datetime.timedelta(microseconds=10)), tn.Summary)
            assert len(c.observe.summary(1e-5)) <= len(s)
            assert len(c.observe.summary(datetime.timedelta(days=36500))) == len(s)
            assert len(c.observe.summary("1s", end="2001-01-01T00:00:00Z")) == 0
            with pytest.raises(tn.InvalidArgument, match="is not a window"):
                c.observe.summary("soon")
            with pytest.raises(TypeError, match="a window is"):
                c.observe.summary([1])  # type: ignore[arg-type]
            with pytest.raises(KeyError, match="no series"):
                s["_telemetron/nothing"]
    finally:
        server.stop()
    # The node is gone; its data directory still answers, opened in this process.
    with tn.open(tmp_path / "data") as e:
        after = e.observe.summary("1h")
        assert after["_telemetron/storage/samples"].increase >= 10_000
        assert after["_telemetron/storage/samples"].kind == "counter"


def test_an_engine_without_self_telemetry_says_how_to_get_a_summary(tmp_path):
    with tn.open(tmp_path / "empty") as e:
        with pytest.raises(tn.InvalidArgument, match="--self-telemetry"):
            e.observe.summary()
