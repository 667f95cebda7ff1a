"""Control sequences: commands with fresh timestamps, waiting on sensor values, authority,
losing control."""

import threading
import time
import warnings

import numpy as np
import pytest

import telemetron as tn


@pytest.fixture
def rig(client):
    client.channels.create(
        [
            tn.NewChannel("cmd_time", is_index=True),
            tn.NewChannel("valve_cmd", "u8", index="cmd_time"),
            tn.NewChannel("press_pt", "f64", virtual=True),
            tn.NewChannel("vent_cmd", "u8", virtual=True),
        ]
    )
    return client


def eventually(cond, timeout=5.0):
    """Poll `cond` until true (control state reaches remote writers asynchronously)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _sensor(client, values, period=0.02):
    """Publish press_pt values from a thread."""

    def run():
        with client.open_writer(tn.TimeStamp.now(), ["press_pt"], name="daq") as w:
            for v in values:
                w.write({"press_pt": float(v)})
                time.sleep(period)

    th = threading.Thread(target=run)
    th.start()
    return th


def test_set_and_wait_until(rig):
    with rig.control.acquire(name="press seq", write=["valve_cmd"], read=["press_pt"], authority=200) as ctrl:
        assert ctrl.has_control() and ctrl.has_control("valve_cmd")
        ctrl["valve_cmd"] = 1
        ctrl["valve_cmd"] = 0
        assert ctrl["valve_cmd"] == 0
        with pytest.raises(tn.InvalidArgument, match="write channels"):
            ctrl["press_pt"] = 1  # a read channel is not commanded
        with pytest.raises(tn.InvalidArgument, match="not one of"):
            ctrl["nope"] = 1
        with pytest.raises(KeyError):
            ctrl["nope"]
        th = _sensor(rig, np.linspace(0, 150, 30))
        assert ctrl.wait_until(lambda c: c["press_pt"] > 100, timeout=10)
        assert ctrl["press_pt"] > 100 and ctrl.state["press_pt"] > 100
        th.join()
        assert not ctrl.wait_until(lambda c: c["press_pt"] > 1000, timeout=0.1)
    # Each command was stored with a fresh, increasing timestamp on the valve's index.
    f = rig.read(None, ["valve_cmd"])
    assert f["valve_cmd"].tolist() == [1, 0]
    assert f["cmd_time"][1] > f["cmd_time"][0]
    states = rig.control.states(["valve_cmd"])
    assert states == []  # released


def test_values_before_any_frame(rig):
    rig.write(tn.TimeStamp(1000), {"cmd_time": [1000], "valve_cmd": [5]})
    with rig.control.acquire(name="seq", read=["press_pt", "valve_cmd"]) as ctrl:
        assert ctrl["valve_cmd"] == 5  # seeded with the last stored sample
        with pytest.raises(tn.NoValue):
            ctrl["press_pt"]
        assert ctrl.get("press_pt", -1) == -1
        t0 = time.monotonic()
        assert not ctrl.wait_until(lambda c: c["press_pt"] > 0, timeout=0.05)  # no value yet: False
        assert time.monotonic() - t0 >= 0.05  # ... after the timeout, not at once
        t0 = time.monotonic()
        ctrl.sleep(tn.TimeSpan.MILLISECOND * 10)
        assert time.monotonic() - t0 >= 0.01
        # Nothing arrived meanwhile: the snapshot holds the seed only.
        assert ctrl.state == {"valve_cmd": 5}
        assert ctrl.get("press_pt") is None
        assert not ctrl.has_control()  # a read-only sequence controls nothing


def test_losing_control_raises_on_next_command(rig):
    with rig.control.acquire(name="low", write=["vent_cmd"], authority=100) as ctrl:
        ctrl["vent_cmd"] = 1
        with rig.control.acquire(name="abort", write=["vent_cmd"], authority=250) as high:
            assert eventually(lambda: not ctrl.has_control("vent_cmd") and high.has_control())
            with pytest.raises(tn.ControlLost) as e:
                ctrl.sleep(1.0)
                ctrl["vent_cmd"] = 0
            assert e.value.channels == ["vent_cmd"]
            assert rig.control.states(["vent_cmd"])[0]["subject"]["name"] == "abort"
        # The higher authority released: control comes back.
        assert eventually(ctrl.has_control)
        ctrl["vent_cmd"] = 0


def test_on_lost_callback_and_set_authority(rig):
    lost = []
    event = threading.Event()

    def on_lost(c, names):
        lost.append((c.name, names))
        event.set()

    with rig.open_streamer(["vent_cmd"]) as seen:  # what reaches the channel
        with rig.control.acquire(name="a", write=["vent_cmd"], authority=100, on_lost=on_lost) as a:
            with rig.control.acquire(name="b", write=["vent_cmd"], authority=150, on_lost="ignore") as b:
                assert event.wait(5) and lost == [("a", ["vent_cmd"])]
                assert eventually(lambda: b.has_control() and not a.has_control())
                a.set_authority(200)  # take it back
                assert eventually(lambda: a.has_control() and not b.has_control())
                with warnings.catch_warnings():
                    warnings.simplefilter("error")
                    # "ignore" silences the loss notice, never a command: b's 1 was not
                    # written, so setting it raises (and warns of nothing).
                    with pytest.raises(tn.ControlLost) as e:
                        b["vent_cmd"] = 1
                    assert e.value.channels == ["vent_cmd"]
                a.set({"vent_cmd": 2})
                f = seen.read(timeout=5)
                assert f is not None and list(f["vent_cmd"]) == [2]  # b's 1 never reached it
        assert lost == [("a", ["vent_cmd"])]  # the callback ran once, for a only


def test_lost_control_warns(rig):
    with rig.control.acquire(name="a", write=["vent_cmd"], authority=10, on_lost="warn") as a:
        with pytest.warns(RuntimeWarning, match="lost control"):
            with rig.control.acquire(name="b", write=["vent_cmd"], authority=20):
                assert eventually(lambda: not a.has_control())
                with pytest.raises(tn.ControlLost):
                    a["vent_cmd"] = 1  # not written: raises whatever on_lost says


def test_control_channel_is_streamable(rig):
    ch = rig.control.channel
    assert ch.is_virtual and ch.internal
    with rig.open_streamer([ch]) as s:
        first = s.read(timeout=5)  # the current state comes first
        assert first is not None
        with rig.control.acquire(name="seq", write=["vent_cmd"]):
            f = s.read(timeout=5)
        assert f is not None and ch.name in f


def test_a_confirmed_write_took_effect_or_names_what_did_not(rig):
    start = tn.TimeStamp.now()
    low = rig.open_writer(start, ["valve_cmd"], authority=100, name="low")
    assert low.write({"cmd_time": int(start), "valve_cmd": 1}, confirm=True)
    assert low.confirm() and low.unauthorized == []
    high = rig.open_writer(start + 10**12, ["valve_cmd"], authority=200, name="high")
    # Whether the client heard of the handoff first (refused) or the node dropped the frame
    # in flight (dropped), the confirmed write says so, and nothing more is stored.
    assert not low.write({"cmd_time": int(start) + 1, "valve_cmd": 0}, confirm=True)
    assert sorted(low.unauthorized) == ["cmd_time", "valve_cmd"]
    high.close()
    low.close()
    assert list(rig.read((start, start + 10), ["valve_cmd"])["valve_cmd"]) == [1]


def test_a_sequence_command_lost_to_a_handoff_raises(rig):
    low = rig.control.acquire(name="low", write=["valve_cmd"], authority=100, on_lost="raise")
    low["valve_cmd"] = 1
    high = rig.control.acquire(name="high", write=["valve_cmd"], authority=200)
    # Refused at once or dropped by the node in flight: the command raises, never passes silently.
    with pytest.raises(tn.ControlLost):
        low["valve_cmd"] = 0
    high.release()
    low.release()


def test_wait_while_and_remains_true_for(rig):
    with rig.control.acquire(name="holds", read=["press_pt"]) as ctrl:
        th = _sensor(rig, [50] * 5 + [150] * 60, period=0.01)
        assert ctrl.wait_until(lambda c: c["press_pt"] < 100, timeout=5)
        assert ctrl.wait_while(lambda c: c["press_pt"] < 100, timeout=5)
        t0 = time.monotonic()
        # The pressure stays above 100 for 0.2 s: answered 0.2 s after it started to hold.
        assert ctrl.remains_true_for(lambda c: c["press_pt"] > 100, 0.2, timeout=5)
        assert time.monotonic() - t0 >= 0.2
        # It never holds above 1000: False after the timeout.
        assert not ctrl.remains_true_for(lambda c: c["press_pt"] > 1000, 0.01, timeout=0.05)
        th.join()


def test_a_condition_that_raises_propagates(rig):
    with rig.control.acquire(name="boom", read=["press_pt"]) as ctrl:
        with pytest.raises(ZeroDivisionError):
            ctrl.wait_until(lambda c: 1 / 0, timeout=1)


def test_loop_holds_its_rate_and_reports_jitter():
    ticks = list(tn.loop(hz=500, count=100))
    # Numbering counts skipped ticks: under load a tick may be skipped, never bunched.
    assert ticks[0].index == 0
    assert all(b.index == a.index + 1 + b.missed for a, b in zip(ticks, ticks[1:]))
    assert ticks[-1].scheduled == pytest.approx(ticks[-1].index / 500, abs=1e-9)
    lp = tn.loop(hz=200, duration=0.1)
    t0 = time.monotonic()
    n = sum(1 for _ in lp)
    assert time.monotonic() - t0 >= 0.095
    stats = lp.stats()
    assert n + stats["overruns"] == 20, "delivered plus skipped ticks fill the 100 ms at 200 Hz"
    assert stats["ticks"] == n and stats["hz"] == pytest.approx(200)
    assert 0 <= stats["late_p50"] <= stats["late_p99"] <= stats["late_max"]
    # A body that overruns its period skips ticks instead of bunching them.
    slow = tn.loop(hz=1000, count=3)
    ticks = []
    for t in slow:
        ticks.append(t)
        time.sleep(0.0035)
    assert ticks[1].missed >= 2 and slow.stats()["overruns"] >= 2
    with pytest.raises(tn.InvalidArgument):
        tn.loop(hz=0)


def test_abort_puts_outputs_in_the_safe_state_and_everything_is_recorded(rig):
    with pytest.raises(RuntimeError, match="sequence failed"):
        with rig.control.acquire(name="burn", write=["valve_cmd"], safe={"valve_cmd": 0}) as ctrl:
            for i, _ in enumerate(ctrl.loop(hz=1000, count=3)):
                ctrl["valve_cmd"] = 1 + i
            raise RuntimeError("sequence failed")
    assert list(rig.read(None, ["valve_cmd"])["valve_cmd"]) == [1, 2, 3, 0]
    rec = rig.read(None, ctrl.record_channels)
    assert list(rec["burn/commands/channel"]) == ["valve_cmd"] * 4
    assert list(rec["burn/commands/value"]) == [1.0, 2.0, 3.0, 0.0]
    assert list(rec["burn/commands/authority"]) == [200] * 4
    assert list(rec["burn/commands/outcome"]) == ["ok"] * 4
    with pytest.raises(tn.InvalidArgument, match="write channels"):
        rig.control.acquire(name="bad", write=["valve_cmd"], safe={"vent_cmd": 0})


def test_a_lost_sequence_aborts_what_it_still_holds(rig):
    with pytest.raises(tn.ControlLost):
        with rig.control.acquire(
            name="two", write=["valve_cmd", "vent_cmd"], safe={"valve_cmd": 0, "vent_cmd": 0}, record=False
        ) as ctrl:
            ctrl.set({"valve_cmd": 1, "vent_cmd": 1})
            with rig.open_writer(tn.TimeStamp.now(), ["vent_cmd"], authority=250, name="ops") as ops:
                assert eventually(lambda: not ctrl.has_control("vent_cmd"))
                ops.write({"vent_cmd": 7})
                for _ in ctrl.loop(hz=100, duration=5):
                    pass  # raises ControlLost at the next tick
    # The valve it still held went to 0; the vent it had lost was left to its new holder.
    assert list(rig.read(None, ["valve_cmd"])["valve_cmd"]) == [1, 0]
    # record=False: no command record was created.
    with pytest.raises(tn.ChannelNotFound):
        rig.channels.retrieve("two/commands/time")
