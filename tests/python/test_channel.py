"""Channels: create (one, many, retrieve_if_name_exists), retrieve, search, rename, delete."""

import numpy as np
import pytest

import telemetron as tn


def test_create_one_and_retrieve(client):
    t = client.channels.create(name="time", is_index=True)
    p = client.channels.create(name="pressure", data_type="float64", index="time")
    assert t.is_index and t.data_type == "timestamp" and t.index == t.key
    assert p.data_type == "f64" and p.index == t.key and not p.is_index and not p.is_virtual
    assert client.channels.retrieve("pressure") == p
    assert client.channels.retrieve(p.key) == p
    assert client.channels.retrieve(["time", p.key]) == [t, p]


def test_create_many_with_numpy_and_python_types(client):
    chans = client.channels.create(
        [
            tn.NewChannel("t", is_index=True),
            {"name": "a", "data_type": np.int16, "index": "t"},
            tn.NewChannel("b", bool, index="t"),
            tn.NewChannel("c", str, virtual=True),
        ]
    )
    assert [c.data_type for c in chans] == ["timestamp", "i16", "bool", "string"]
    assert chans[3].is_virtual and chans[3].index is None and chans[3].concurrency == "exclusive"


def test_compression_is_part_of_the_definition(client):
    t = client.channels.create(name="time", is_index=True)
    assert t.compression == "default"
    p = client.channels.create(name="strain", data_type="f32", index="time", compression="pcodec")
    v = client.channels.create(tn.NewChannel("valve", "u8", index="time", compression="zstd"))
    assert (p.compression, v.compression) == ("pcodec", "zstd")
    assert client.channels.retrieve("strain").compression == "pcodec"
    with pytest.raises(tn.InvalidArgument) as e:
        client.channels.create(name="x", data_type="f64", index="time", compression="gzip")
    assert '"pcodec"' in str(e.value)
    # Pcodec does not take 8-bit samples: refused, saying what does, and nothing created.
    with pytest.raises(tn.InvalidChannel) as e:
        client.channels.create([tn.NewChannel("t2", is_index=True), tn.NewChannel("u", "u8", index="t2", compression="pcodec")])
    assert '"zstd"' in str(e.value) and e.value.code == "channel.invalid"
    with pytest.raises(tn.ChannelNotFound):
        client.channels.retrieve("t2")


def test_compression_changes_after_creation(client):
    client.channels.create([tn.NewChannel("time", is_index=True), tn.NewChannel("strain", "f32", index="time")])
    changed = client.channels.set_compression("strain", "zstd")
    assert isinstance(changed, tn.Channel) and changed.compression == "zstd"
    assert client.channels.retrieve("strain").compression == "zstd"
    with pytest.raises(tn.InvalidArgument) as e:
        client.channels.set_compression("strain", "gzip")
    assert '"lz4"' in str(e.value)
    # An index stays raw: refused, saying why, and nothing changed.
    with pytest.raises(tn.InvalidChannel) as e:
        client.channels.set_compression("time", "lz4")
    assert "index channels stay raw" in str(e.value) and e.value.code == "channel.invalid"
    assert client.channels.retrieve("time").compression == "default"
    with pytest.raises(tn.ChannelNotFound):
        client.channels.set_compression("absent", "off")


def test_retrieve_if_name_exists(client):
    a = client.channels.create(name="time", is_index=True)
    b = client.channels.create(name="time", is_index=True, retrieve_if_name_exists=True)
    assert a == b
    with pytest.raises(tn.ChannelNameTaken) as e:
        client.channels.create(name="time", is_index=True)
    assert e.value.code == "channel.name_taken"
    assert "already exists" in str(e.value)


def test_all_or_nothing(client):
    with pytest.raises(tn.ChannelError):
        client.channels.create([tn.NewChannel("t", is_index=True), tn.NewChannel("x", "f64", index="missing")])
    with pytest.raises(tn.ChannelNotFound):
        client.channels.retrieve("t")


def test_not_found_is_a_lookup_error(client):
    with pytest.raises(LookupError) as e:
        client.channels.retrieve("nope")
    assert isinstance(e.value, tn.ChannelNotFound) and isinstance(e.value, tn.TelemetronError)
    assert e.value.code == "channel.not_found"


def test_invalid_definitions(client):
    with pytest.raises(tn.InvalidArgument):
        client.channels.create(name="x")  # no data type
    with pytest.raises(tn.ChannelError):
        client.channels.create(name="i", data_type="f64", is_index=True)
    with pytest.raises(tn.InvalidArgument):
        client.channels.create(name="x", data_type="float128")


def test_search_rename_delete(client):
    client.channels.create([tn.NewChannel("time", is_index=True), tn.NewChannel("pt_1", "f64", index="time")])
    assert [c.name for c in client.channels.search("PT")] == ["pt_1"]
    r = client.channels.rename("pt_1", "pt_one")
    assert r.name == "pt_one" and client.channels.retrieve(r.key).name == "pt_one"
    with pytest.raises(tn.IndexInUse):
        client.channels.delete("time")
    client.channels.delete(["pt_one", "time"])
    assert client.channels.search("") == []


def test_channel_repr_and_hash(client):
    t = client.channels.create(name="time", is_index=True)
    assert "time" in repr(t) and {t: 1}[client.channels.retrieve("time")] == 1
