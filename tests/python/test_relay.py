"""Streamers: iteration, timeouts, asyncio, channel updates, lag policies, Ctrl-C, GIL."""

import asyncio
import threading
import time
import _thread

import numpy as np
import pytest

import telemetron as tn
from conftest import stamps


def test_stream_frames_from_a_writer(stand):
    t0 = int(tn.TimeStamp.now())
    with stand.open_streamer(["pressure", "valve_cmd"], timeout=2) as s:
        with stand.open_writer(t0, ["pressure", "valve_cmd"]) as w:
            w.write({"time": stamps(t0, 3), "pressure": [1.0, 2.0, 3.0]})
            w.write({"valve_cmd": 1})
        got = []
        for frame in s:
            got.append(frame)
            if len(got) == 2:
                break
    np.testing.assert_array_equal(got[0]["pressure"], [1, 2, 3])
    assert "time" not in got[0]  # only the channels streamed
    assert got[1]["valve_cmd"].tolist() == [1] and got[1]["valve_cmd"].dtype == np.uint8


def test_read_timeout_returns_none(stand):
    with stand.open_streamer(["pressure"]) as s:
        t = time.monotonic()
        assert s.read(timeout=0.2) is None
        assert 0.15 < time.monotonic() - t < 2
        assert list(stand.open_streamer(["pressure"], timeout=0.05)) == []


def test_zero_copy_from_writer_to_streamer(stand, backend):
    arr = np.arange(1000, dtype=np.float64)
    t0 = int(tn.TimeStamp.now())
    with stand.open_streamer(["pressure"]) as s, stand.open_writer(t0, ["pressure"]) as w:
        w.write({"time": stamps(t0, 1000), "pressure": arr})
        got = s.read(timeout=5)["pressure"]
    np.testing.assert_array_equal(got, arr)
    if backend == "embedded":
        # The engine received the numpy buffer itself and fanned it out without copies.
        assert got.__array_interface__["data"][0] == arr.__array_interface__["data"][0]


def test_update_channels(stand):
    with stand.open_streamer(["pressure"]) as s, stand.open_writer(int(tn.TimeStamp.now()), ["valve_cmd"]) as w:
        s.update_channels(["valve_cmd"])
        assert s.keys == [stand.channels.retrieve("valve_cmd").key]
        w.write({"valve_cmd": 7})
        assert s.read(timeout=5)["valve_cmd"].tolist() == [7]


# Lag needs the streamer's queue to overflow. Remotely, socket buffers absorb megabytes
# first, so the writer sends big frames (1.6 MB each, 100 MB in all) while nobody reads.
_BIG = 1_600_000


def _flood(client, n):
    with client.open_writer(int(tn.TimeStamp.now()), ["valve_cmd"]) as w:
        for i in range(n):
            w.write({"valve_cmd": np.full(_BIG, i % 256, dtype=np.uint8)})


def _drain(s, limit=250):
    """Read until the streamer has nothing more (at most `limit` frames)."""
    for _ in range(limit):
        if s.read(timeout=0.5) is None:
            return


# Frames already forwarded (remote: in the socket buffers) may arrive before the lag
# notice, so each test reads until the notice shows up.


def test_lag_warns_by_default(stand):
    with stand.open_streamer(["valve_cmd"], capacity=4) as s:
        _flood(stand, 64)
        with pytest.warns(tn.LagWarning, match="lost"):
            _drain(s)


def test_lag_raises_by_policy(stand):
    with stand.open_streamer(["valve_cmd"], capacity=4, on_lag="raise") as s:
        _flood(stand, 64)
        with pytest.raises(tn.StreamLagged) as e:
            _drain(s)
        assert e.value.dropped > 0 and e.value.code == "stream.lagged"
        for _ in range(50):  # then the newest frames follow (after any further notices)
            try:
                assert s.read(timeout=5) is not None
                break
            except tn.StreamLagged:
                continue
        else:
            raise AssertionError("no frame after the lag notices")


def test_lag_disconnect_policy(stand):
    with stand.open_streamer(["valve_cmd"], capacity=4, lag_policy="disconnect") as s:
        _flood(stand, 64)
        with pytest.raises(tn.StreamDisconnected):
            _drain(s)


def test_async_for(stand):
    async def main():
        t0 = int(tn.TimeStamp.now())
        async with stand.open_streamer(["pressure"], timeout=5) as s:
            def produce():
                with stand.open_writer(t0, ["pressure"]) as w:
                    for i in range(3):
                        w.write({"time": t0 + i, "pressure": float(i)})

            await asyncio.get_running_loop().run_in_executor(None, produce)
            seen = []
            async for frame in s:
                seen.extend(frame["pressure"].tolist())
                if len(seen) == 3:
                    break
            return seen

    assert asyncio.run(main()) == [0.0, 1.0, 2.0]


def test_async_timeout_and_close(stand):
    async def main():
        s = stand.open_streamer(["pressure"], timeout=0.1)
        assert [f async for f in s] == []
        s2 = stand.open_streamer(["pressure"])
        task = asyncio.ensure_future(s2.__anext__())
        await asyncio.sleep(0.05)
        s2.close()  # a pending await returns
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(task, 5)
        s3 = stand.open_streamer(["pressure"])
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(s3.__anext__(), 0.05)  # cancellation is clean
        s3.close()

    asyncio.run(main())


def test_close_from_another_thread_ends_iteration(stand):
    s = stand.open_streamer(["pressure"])
    threading.Timer(0.1, s.close).start()
    assert list(s) == []


def test_ctrl_c_interrupts_a_blocking_read(stand):
    with stand.open_streamer(["pressure"]) as s:
        threading.Timer(0.2, _thread.interrupt_main).start()
        t = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            s.read()
        assert time.monotonic() - t < 5


def test_blocking_read_releases_the_gil(stand):
    count = 0
    stop = threading.Event()

    def spin():
        nonlocal count
        while not stop.is_set():
            count += 1

    th = threading.Thread(target=spin)
    th.start()
    try:
        with stand.open_streamer(["pressure"]) as s:
            time.sleep(0.05)
            before = count
            s.read(timeout=0.5)
            during = count - before
    finally:
        stop.set()
        th.join()
    # With the GIL held for 0.5 s the other thread could not have counted at all.
    assert during > 10_000


def test_spinning_streamer_receives_and_rejects_bad_spin(stand, backend):
    # The receiving thread busy-waits before sleeping (on the queue embedded, on the
    # socket's readiness remote); every frame still arrives, in order.
    t0 = int(tn.TimeStamp.now())
    with stand.open_streamer(["valve_cmd"], timeout=2, spin_us=2000) as s:
        with stand.open_writer(t0, ["valve_cmd"]) as w:
            for i in range(50):
                w.write({"valve_cmd": i % 2})
        got = []
        for frame in s:
            got.extend(frame["valve_cmd"].tolist())
            if len(got) == 50:
                break
    assert got == [i % 2 for i in range(50)]
    for bad in (-1, 1_000_001):
        with pytest.raises(ValueError, match="spin_us"):
            stand.open_streamer(["valve_cmd"], spin_us=bad)


def test_live_frames_stitch_onto_a_read_by_alignment(stand):
    """Live series carry the alignment and time range storage gives them."""
    t0 = int(tn.TimeStamp.now())
    with stand.open_writer(t0, ["pressure"]) as w:
        w.write({"time": stamps(t0, 4), "pressure": np.arange(4.0)})
        w.commit()
        with stand.open_streamer(["time", "pressure"]) as s:
            w.write({"time": stamps(t0 + 4_000_000, 3), "pressure": [4.0, 5.0, 6.0]})
            w.write({"time": stamps(t0 + 7_000_000, 2), "pressure": [7.0, 8.0]})
            live = [s.read(timeout=5), s.read(timeout=5)]
    stored = stand.read(None, ["pressure"])

    def samples(frame):
        """Every sample as (alignment, value): a read gives one series per stored run."""
        return [(a + i, x) for a, arr in zip(frame.alignments("pressure"), frame.series("pressure")) for i, x in enumerate(arr)]

    read = samples(stored)
    base = read[0][0]
    assert [[a - base for a in f.alignments("pressure")] for f in live] == [[4], [7]]
    assert live[0].time_range("pressure") == tn.TimeRange(t0 + 4_000_000, t0 + 6_000_001)
    assert live[1].time_range() == tn.TimeRange(t0 + 7_000_000, t0 + 8_000_001)
    # Stitch: the read's samples the stream did not deliver, then the streamed ones.
    streamed = [s for f in live for s in samples(f)]
    seen = {a for a, _ in streamed}
    stitched = [s for s in read if s[0] not in seen] + streamed
    assert stitched == read and [x for _, x in stitched] == [float(i) for i in range(9)]
