"""Change capture from Python, on both backends: channel and range changes arrive once, in
order, as Change objects with real Channel and Range values; a second client sees them."""

import threading

import pytest

import telemetron as tn


def test_channel_and_range_changes_arrive_in_order(client, connect_factory, backend):
    with client.watch_changes() as w:
        # Remote: a second client of the same node makes the changes (an embedded engine
        # has one client per directory).
        other = connect_factory() if backend != "embedded" else client
        made = other.channels.create([tn.NewChannel("cw_t", is_index=True), tn.NewChannel("cw_p", "f64", index="cw_t")])
        with pytest.raises(tn.ChannelNameTaken):
            other.channels.create(name="cw_t", is_index=True)
        other.channels.rename("cw_p", "cw_pressure")
        other.channels.set_compression("cw_pressure", "zstd")
        r = other.ranges.create(name="cw run", time_range=(10, 20))
        r.rename("cw run 2")
        r.meta_data["operator"] = "ada"
        other.channels.delete(["cw_pressure", "cw_t"])
        other.ranges.delete(r)

        c = w.read(timeout=5)
        assert c.op == "channel.create" and [ch.name for ch in c.channels] == ["cw_t", "cw_p"]
        assert [ch.key for ch in c.channels] == [ch.key for ch in made]
        c = w.read(timeout=5)
        assert c.op == "channel.rename" and c.channels[0].name == "cw_pressure"
        c = w.read(timeout=5)
        assert c.op == "channel.update" and (c.channels[0].name, c.channels[0].compression) == ("cw_pressure", "zstd")
        c = w.read(timeout=5)
        assert c.op == "range.create" and isinstance(c.ranges[0], tn.Range) and c.ranges[0].key == r.key
        c = w.read(timeout=5)
        assert c.op == "range.update" and c.ranges[0].name == "cw run 2"
        c = w.read(timeout=5)
        assert (c.op, c.key, c.set, c.deleted) == ("range.meta", r.key, {"operator": "ada"}, [])
        c = w.read(timeout=5)
        assert c.op == "channel.delete" and c.keys == [made[1].key, made[0].key]
        c = w.read(timeout=5)
        assert (c.op, c.keys) == ("range.delete", [r.key])
        assert w.read(timeout=0.2) is None  # the refused create was not reported


def test_iterating_blocks_until_a_change_and_close_ends_it(client):
    w = client.watch_changes()
    threading.Timer(0.2, lambda: client.channels.create(name="cw_late", is_index=True)).start()
    change = next(iter(w))
    assert change.op == "channel.create" and change.channels[0].name == "cw_late"
    w.close()
    with pytest.raises(tn.StreamClosed):
        w.read(timeout=1)
