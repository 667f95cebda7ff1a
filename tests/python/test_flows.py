"""``client.flows``: dataflow pipelines deployed, reconfigured and stopped through the
client, on both backends (embedded: they run in this process; remote: on the node)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

import telemetron as tn

ROOT = Path(__file__).resolve().parents[2]

# Frames of an index `time` and 2 f64 channels into the client's own engine, through a
# filter on ch_0 (a sine, so about half the rows pass >= 0).
FRAMES = """
flow: mirror
nodes:
  gen: {type: generator, signal: frames, channels: 2, rows: 10, rate: 500, to: [keep]}
  keep: {type: filter, where: {column: ch_0, op: '>=', value: %s}, to: [store]}
  store: {type: channels_exporter, prefix: "flow_"}
"""


def wait_for(what: str, cond: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_deploy_writes_into_the_clients_engine_and_reconfigures_live(client: tn.Client) -> None:
    flows = client.flows
    assert flows.list() == []
    info = flows.deploy(FRAMES % "0.0")
    assert (info.name, info.state) == ("mirror", "running")
    assert [(n.name, n.type, n.reconfigurable) for n in info.nodes] == [
        ("gen", "generator", True),
        ("keep", "filter", True),
        ("store", "channels_exporter", False),
    ]
    assert "mirror" in flows and isinstance(info.started, tn.TimeStamp)
    wait_for("stored frames", lambda: flows.get("mirror").node("store").acked + flows.get("mirror").node("gen").acked > 20)
    wait_for("the exported channels", lambda: len(client.channels.search("flow_")) == 3)
    # What the flow stored is readable through the same client: only rows that passed.
    stored = client.read_latest(["flow_ch_0"], 50)["flow_ch_0"]
    assert len(stored) > 0 and np.all(stored >= 0.0)

    # Only the filter's threshold changes: applied live, the flow is not restarted.
    r = flows.reconfigure("mirror", FRAMES % "2.0")
    assert (r.applied, r.nodes, r.reason) == ("live", ["keep"], None)
    assert r.flow.started == info.started and "value: 2.0" in r.flow.config
    # No sine reaches 2.0: once applied, nothing more is stored while the filter works on.
    def quiet_window() -> bool:
        before = flows.get("mirror")
        wait_for("50 more messages", lambda: flows.get("mirror").node("keep").received >= before.node("keep").received + 50)
        return flows.get("mirror").node("store").received == before.node("store").received

    wait_for("the new threshold to apply", quiet_window)

    last = flows.stop("mirror", drain=5)
    assert (last.state, last.drained) == ("stopped", True)
    assert last.errors == []
    assert last.node("gen").nacked == 0 and last.node("gen").acked >= last.node("store").received
    assert flows.list() == []


def test_errors_are_typed_and_leave_running_flows_alone(client: tn.Client, tmp_path: Path) -> None:
    flows = client.flows
    path = tmp_path / "pipe.yaml"
    path.write_text("flow: pipe\nnodes:\n  gen: {type: generator, rate: 200, to: [out]}\n  out: {type: discard}\n")
    info = flows.deploy(path)  # a pathlib.Path is read
    with pytest.raises(tn.FlowNameTaken):
        flows.deploy(path)
    with pytest.raises(tn.FlowConfigError, match=r"line 4: node `out`.*dicard") as e:
        flows.reconfigure("pipe", path.read_text().replace("discard", "dicard"))
    assert e.value.code == "flow.config" and isinstance(e.value, ValueError)
    with pytest.raises(tn.FlowConfigError, match="cycle"):
        flows.deploy("flow: c\nnodes:\n  a: {type: generator, to: [b]}\n  b: {type: sample, every: 2, to: [c]}\n  c: {type: sample, every: 2, to: [b]}\n")
    with pytest.raises(tn.FlowNotFound):
        flows.get("nope")
    with pytest.raises(tn.FlowNotFound):
        flows.stop("nope")
    with pytest.raises(tn.InvalidArgument):
        flows.stop("pipe", drain=-1)
    with pytest.raises(TypeError):
        flows.deploy(42)  # type: ignore[arg-type]
    # The flow still runs as deployed.
    now = flows.get("pipe")
    assert now.state == "running" and now.started == info.started
    # A new node restarts it (drained first).
    r = flows.reconfigure("pipe", path.read_text().replace("to: [out]", "to: [thin]}\n  thin: {type: sample, every: 2, to: [out]"))
    assert (r.applied, r.reason) == ("restarted", "nodes were added or removed")
    assert r.flow.node("thin").type == "sample"
    flows.stop("pipe")


def test_close_stops_embedded_flows(backend: str, connect_factory) -> None:
    c = connect_factory()
    c.flows.deploy("flow: bg\nnodes:\n  gen: {type: generator, rate: 100, to: [out]}\n  out: {type: discard}\n")
    c.close()
    # The node's flows outlive a remote client; the embedded engine's died with the client.
    again = connect_factory()
    names = [f.name for f in again.flows.list()]
    assert names == (["bg"] if backend != "embedded" else [])
