"""Ranges: create, retrieve, search, metadata persisted in the engine, reading over a range."""

import numpy as np
import pytest

import telemetron as tn
from conftest import stamps

T0 = 1_700_000_000_000_000_000


def test_create_retrieve_search_delete(client):
    r = client.ranges.create(name="hotfire 12", time_range=(T0, T0 + 10**9), labels=["hotfire"], color="#ff8800", meta_data={"operator": "ada"})
    assert r.time_range == tn.TimeRange(T0, T0 + 10**9) and r.labels == ["hotfire"] and r.color == "#ff8800"
    assert client.ranges.retrieve(r.key) == r
    assert client.ranges.retrieve(name="hotfire 12").key == r.key
    assert [x.key for x in client.ranges.search("HOTFIRE")] == [r.key]
    assert [x.key for x in client.ranges.search("ada")] == [r.key]  # metadata values are searched
    assert client.ranges.search("", overlapping=(T0 + 2 * 10**9, T0 + 3 * 10**9)) == []
    again = client.ranges.create(name="hotfire 12", time_range=(0, 1), retrieve_if_name_exists=True)
    assert again.key == r.key
    r.rename("hotfire 12b")
    assert client.ranges.retrieve(r.key).name == "hotfire 12b"
    client.ranges.delete(r)
    with pytest.raises(tn.RangeNotFound):
        client.ranges.retrieve(r.key)
    with pytest.raises(tn.RangeNotFound):
        client.ranges.retrieve(name="nope")


def test_invalid_range(client):
    with pytest.raises(tn.InvalidRange):
        client.ranges.create(name="", time_range=(0, 1))
    with pytest.raises(tn.InvalidRange):
        client.ranges.create(name="x", time_range=(2, 1))


def test_child_ranges_labels_and_structured_search(client):
    s = 10**9
    a = client.ranges.create(name="run a", time_range=(T0, T0 + 10 * s), labels=["hotfire"], meta_data={"stand": "B"})
    b = client.ranges.create(name="run b", time_range=(T0 + 20 * s, T0 + 30 * s), labels=["hotfire"], meta_data={"stand": "C"})
    assert a.parent is None
    ignition = a.create_child(name="ignition", time_range=(T0 + s, T0 + 2 * s), labels=["ignition"])
    whole = a.create_child(name="whole run")  # defaults to the parent's time range
    pulse = client.ranges.create(name="pulse", time_range=(T0 + s, T0 + s + 1), parent=ignition.key)
    assert ignition.parent == a.key and whole.time_range == a.time_range and pulse.parent == ignition.key
    assert client.ranges.retrieve(ignition.key).parent == a.key
    assert [r.name for r in a.children()] == ["whole run", "ignition"]  # direct children, by start
    assert b.children() == []
    # Filters combine: exact metadata, every label (any case), direct parent, overlap.
    assert [r.name for r in client.ranges.search(meta_data={"stand": "C"})] == ["run b"]
    assert client.ranges.search(meta_data={"stand": "c"}) == []
    assert [r.name for r in client.ranges.search(labels=["HOTFIRE"])] == ["run a", "run b"]
    assert [r.name for r in client.ranges.search("run", parent=a)] == ["whole run"]
    assert client.ranges.search("run", parent=b) == []
    assert [r.name for r in client.ranges.search(labels=["ignition"], overlapping=(T0, T0 + 5 * s))] == ["ignition"]
    # Labels can be replaced; an empty label is refused and changes nothing.
    b.set_labels(["cold flow", "anomaly"])
    assert b.labels == ["cold flow", "anomaly"]
    assert [r.key for r in client.ranges.search(labels=["anomaly"])] == [b.key]
    with pytest.raises(tn.InvalidRange):
        b.set_labels([""])
    assert client.ranges.retrieve(b.key).labels == ["cold flow", "anomaly"]
    # A parent that does not exist is refused.
    with pytest.raises(tn.InvalidRange, match="parent"):
        client.ranges.create(name="orphan", time_range=(T0, T0 + 1), parent="00000000-0000-0000-0000-000000000007")
    # Deleting a run deletes its children and theirs.
    client.ranges.delete(a)
    for r in (a, ignition, whole, pulse):
        with pytest.raises(tn.RangeNotFound):
            client.ranges.retrieve(r.key)
    assert [r.name for r in client.ranges.search()] == ["run b"]


def test_meta_data_is_a_persisted_dict(connect_factory):
    c = connect_factory()
    r = c.ranges.create(name="run", time_range=(T0, T0 + 1), meta_data={"a": "1"})
    md = r.meta_data
    md["b"] = 2
    md.update({"c": "3", "d": "4"})
    del md["d"]
    assert dict(md) == {"a": "1", "b": "2", "c": "3"} and len(md) == 3 and "a" in md
    with pytest.raises(KeyError):
        del md["zzz"]
    c.close()
    c2 = connect_factory()  # a new client on the same engine sees it
    assert dict(c2.ranges.retrieve(r.key).meta_data) == {"a": "1", "b": "2", "c": "3"}


def test_read_channels_over_a_range(stand):
    stand.write(T0, {"time": stamps(T0, 100), "pressure": np.arange(100.0)})
    r = stand.ranges.create(name="middle", time_range=(T0 + 10 * 1_000_000, T0 + 20 * 1_000_000))
    np.testing.assert_array_equal(r["pressure"], np.arange(10.0, 20.0))
    assert r.read(["pressure"]).samples("time") == 10
    df = r.to_pandas("pressure")
    assert len(df) == 10 and df.index.name == "time"
    assert stand.read(r, ["pressure"]).samples("pressure") == 10  # a Range is a time range
