"""Cluster mode from Python: placement, and the SDK used through a gateway node whose
channels live on another node (a real etcd and two ``telemetron serve --cluster``
processes; etcd comes from ``scripts/ensure-deps.sh``)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import telemetron as tn
from conftest import Etcd, Server, stamps


def test_placement_outside_a_cluster_is_refused(client):
    with pytest.raises(tn.InvalidArgument) as e:
        client.channels.create(name="placed", is_index=True, place="daq-2")
    assert "cluster" in str(e.value)
    with pytest.raises(tn.ChannelNotFound):
        client.channels.retrieve("placed")


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple]:
    """etcd, a node ``store`` and a gateway node placing its channels on ``store``."""
    etcd = Etcd(tmp_path / "etcd")
    nodes = []
    try:
        for name, extra in [("store", ()), ("gateway", ("--place", "store"))]:
            nodes.append(Server(tmp_path / name, ("--cluster", etcd.url, "--name", name, "--lease-ttl", "2", *extra)))
        yield etcd, nodes[0], nodes[1]
    finally:
        for n in nodes:
            n.stop()
        etcd.stop()


def test_a_client_of_a_gateway_works_on_channels_stored_on_another_node(cluster):
    _, store, gateway = cluster
    gw = tn.connect(gateway.url)
    st = tn.connect(store.url)
    _time, pressure = gw.channels.create([tn.NewChannel("time", is_index=True), tn.NewChannel("pressure", "f64", index="time")])
    valve = gw.channels.create(name="valve_cmd", data_type="u8", virtual=True)
    # Stored on `store`: the node named by the key's top byte, and what `store` retrieves.
    assert st.channels.retrieve("pressure") == pressure
    local = gw.channels.create(name="gw_time", is_index=True, place="gateway")
    assert local.key >> 24 != pressure.key >> 24

    # Writes through the gateway are stored on `store`; reads through either node agree.
    t0 = int(tn.TimeStamp.now())
    values = np.linspace(0.0, 1.0, 100)
    gw.write(t0, {"time": stamps(t0, 100), "pressure": values})
    np.testing.assert_array_equal(gw.read((t0, t0 + 10**12), ["pressure"])["pressure"], values)
    np.testing.assert_array_equal(st.read((t0, t0 + 10**12), ["pressure"])["pressure"], values)

    # A streamer on the gateway receives what a writer on `store` writes.
    t1 = t0 + 10**11
    with gw.open_streamer(["pressure"], timeout=5) as s:
        with st.open_writer(t1, ["pressure"]) as w:
            w.write({"time": stamps(t1, 3), "pressure": [1.0, 2.0, 3.0]})
        frame = s.read()
    assert frame is not None
    np.testing.assert_array_equal(frame["pressure"], [1.0, 2.0, 3.0])

    # Control is arbitrated on `store` for writers on both nodes.
    low = gw.open_writer(t1 + 10**11, ["valve_cmd"], authority=100, name="sequence")
    assert low.write({"valve_cmd": 1}, confirm=True)
    high = st.open_writer(t1 + 10**11, ["valve_cmd"], authority=200, name="operator")
    assert not low.write({"valve_cmd": 0}, confirm=True)
    assert low.unauthorized == ["valve_cmd"]
    assert not low.has_control(valve)
    high.close()
    low.close()

    # The node that stores the channel goes: the gateway says so by name.
    st.close()
    store.stop()
    with pytest.raises(tn.NodeUnavailable) as e:
        gw.read((t0, t0 + 10**12), ["pressure"])
    assert "store" in str(e.value)
    gw.close()
