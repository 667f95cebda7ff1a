"""Writers (one-shot and streaming), accepted value forms, validation errors, iterators."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import telemetron as tn
from conftest import stamps, told

T0 = 1_700_000_000_000_000_000


def test_one_shot_write_and_read(stand):
    ts = stamps(T0, 100)
    p = np.linspace(0, 1, 100)
    end = stand.write(T0, {"time": ts, "pressure": p, "temp": np.ones(100, np.float32)})
    assert end == ts[-1] + 1 and isinstance(end, tn.TimeStamp)
    f = stand.read((T0, end), ["pressure", "temp"])
    np.testing.assert_array_equal(f["pressure"], p)
    np.testing.assert_array_equal(f["time"], ts)
    assert f["temp"].dtype == np.float32


def test_values_as_lists_scalars_and_pandas(stand):
    ts = stamps(T0, 3)
    stand.write(T0, {"time": list(map(int, ts)), "pressure": [1, 2, 3], "temp": pd.Series([0.5, 1.5, 2.5])})
    stand.write(T0 + 10**9, {"time": T0 + 10**9, "pressure": 4.0, "temp": 7})
    f = stand.read(None, ["pressure", "temp"])
    np.testing.assert_array_equal(f["pressure"], [1, 2, 3, 4])
    np.testing.assert_array_equal(f["temp"], np.array([0.5, 1.5, 2.5, 7], np.float32))


def test_timestamps_as_datetime64_datetime_and_pandas(stand):
    base = np.datetime64(T0, "ns")
    stand.write(T0, {"time": base + np.arange(2) * np.timedelta64(1, "ms"), "pressure": [1.0, 2.0]})
    d = tn.TimeStamp(T0 + 10**9).datetime()
    stand.write(d, {"time": [d, d + dt.timedelta(seconds=1)], "pressure": [3.0, 4.0]})
    idx = pd.date_range(pd.Timestamp(T0 + 5 * 10**9, tz="UTC"), periods=2, freq="s", name="time")
    stand.write(idx[0], pd.DataFrame({"pressure": [5.0, 6.0]}, index=idx))
    got = stand.read(None, ["pressure"])
    np.testing.assert_array_equal(got["pressure"], [1, 2, 3, 4, 5, 6])
    assert got["time"][2] == T0 + 10**9 and got["time"][4] == T0 + 5 * 10**9


def test_dataframe_with_columns(stand):
    df = pd.DataFrame({"time": stamps(T0, 4), "pressure": np.arange(4.0), "temp": np.arange(4, dtype=np.float32)})
    stand.write(T0, df)
    back = stand.read(None, ["pressure", "temp"]).to_pandas()
    assert list(back.columns) == ["pressure", "temp"] and len(back) == 4


def test_lossy_conversions_are_refused(stand):
    stand.channels.create(name="count", data_type="i16", index="time")
    with pytest.raises(tn.WriteTypeMismatch) as e:
        stand.write(T0, {"time": stamps(T0, 2), "count": [1.5, 2.0]})
    assert "astype" in e.value.message and isinstance(e.value, TypeError)
    with pytest.raises(tn.WriteTypeMismatch):
        stand.write(T0, {"time": stamps(T0, 1), "count": [70000]})
    stand.write(T0, {"time": stamps(T0, 2), "count": np.array([1.0, 2.0])})  # integral floats are fine
    assert stand.read(None, "count")["count"].dtype == np.int16


def test_validation_errors_name_the_fix(stand):
    with pytest.raises(tn.NotMonotonic) as e:
        stand.write(T0, {"time": [T0, T0], "pressure": [1.0, 2.0]})
    assert "strictly increase" in str(e.value)
    with pytest.raises(tn.LengthMismatch):
        stand.write(T0, {"time": stamps(T0, 2), "pressure": [1.0]})
    with pytest.raises(tn.IndexMissing):
        stand.write(T0, {"pressure": [1.0]})
    with pytest.raises(tn.InvalidArgument):
        stand.write(T0, {"time": stamps(T0, 4), "pressure": np.ones((2, 2))})
    assert stand.time_range("pressure") is None  # nothing was written


def test_streaming_writer(stand):
    with stand.open_writer(T0, ["pressure", "temp"], auto_commit=False) as w:
        assert {c.name for c in w.channels} == {"time", "pressure", "temp"}
        for i in range(10):
            assert w.write({"time": T0 + i, "pressure": float(i), "temp": np.float32(i)})
        assert stand.time_range("pressure") is None
        end = w.commit()
        assert end == T0 + 10
        w.write("time", T0 + 10)  # the (channel, values) form; index only
        w.write(["time", "pressure"], [T0 + 11, 11.0])
    assert w.closed
    assert stand.time_range("pressure") == tn.TimeRange(T0, T0 + 12)
    with pytest.raises(tn.Closed):
        w.write({"time": T0 + 20, "pressure": 1.0})


def test_writer_rejects_foreign_channels(stand):
    stand.channels.create(name="other", data_type="f64", index="time")
    with stand.open_writer(T0, ["pressure"]) as w:
        with pytest.raises(tn.WriteError):
            w.write({"time": T0, "other": 1.0})


def test_write_a_read_frame_back(stand, connect_factory):
    stand.write(T0, {"time": stamps(T0, 5), "pressure": np.arange(5.0)})
    f = stand.read(None, ["pressure"])
    stand.channels.create(name="time2", is_index=True)
    stand.delete(None, ["pressure", "time"])
    assert stand.time_range("pressure") is None
    stand.write(T0, f)
    np.testing.assert_array_equal(stand.read(None, "pressure")["pressure"], np.arange(5.0))


def test_authority_and_unauthorized(stand, backend):
    with stand.open_writer(T0, ["pressure"], authority=100, name="low") as low:
        with stand.open_writer(T0, ["pressure"], authority=200, name="high") as high:
            assert high.has_control("pressure")
            told(backend, lambda: not low.has_control("pressure"), "low lost control to high")
            assert low.write({"time": T0, "pressure": 1.0}) is False
            assert set(low.unauthorized) == {"time", "pressure"}
            states = stand.control.states(["pressure"])
            assert states[0]["subject"]["name"] == "high" and states[0]["authority"] == 200
            high.set_authority(50)
            told(backend, lambda: low.has_control("pressure"), "low took control back")
            assert low.write({"time": T0 + 1, "pressure": 2.0}) is True
            high.set_authority({"pressure": 250})
            assert high.has_control("pressure")
        told(backend, lambda: low.has_control("pressure"), "low has control once high closed")


def test_err_on_unauthorized(stand):
    with stand.open_writer(T0, ["pressure"]):  # authority 255: among equals the first keeps control
        with pytest.raises(tn.Unauthorized):
            stand.open_writer(T0, ["pressure"], authority=100, err_on_unauthorized=True)
        with pytest.raises(tn.ControlError):  # one-shot writes fail rather than drop
            stand.write(T0, {"time": T0, "pressure": 1.0})


def test_stream_mode_stores_nothing(stand):
    with stand.open_writer(T0, ["pressure"], mode="stream") as w:
        w.write({"time": T0, "pressure": 1.0})
    assert stand.time_range("pressure") is None
    with pytest.raises(ValueError):
        stand.open_writer(T0, ["pressure"], mode="sideways")


def test_iterator_chunks_and_progress(stand):
    n = 10_000
    stand.write(T0, {"time": stamps(T0, n), "pressure": np.arange(n, dtype=np.float64)})
    got = [f["pressure"] for f in stand.open_iterator(None, ["pressure"], chunk_size=3000)]
    assert [len(g) for g in got] == [3000, 3000, 3000, 1000]
    np.testing.assert_array_equal(np.concatenate(got), np.arange(n))

    class Bar:
        def __init__(self, total, unit):
            self.total, self.n, self.closed = total, 0.0, False

        def update(self, k):
            self.n += k

        def close(self):
            self.closed = True

    bars = []
    it = stand.open_iterator(None, ["pressure"], chunk_size=4000, progress=lambda **kw: bars.append(Bar(**kw)) or bars[-1])
    assert sum(len(f["pressure"]) for f in it) == n
    assert bars[0].closed and bars[0].n == pytest.approx(bars[0].total)
    with stand.open_iterator(None, ["pressure"], chunk_size=10) as it:
        assert it.seek_last()
        last = it.prev(samples=2)
        np.testing.assert_array_equal(last["pressure"], [n - 2, n - 1])
        assert it.seek_ge(T0 + 5 * 1_000_000)
        assert it.next(span=tn.TimeSpan.MILLISECOND * 2)["pressure"].tolist() == [5.0, 6.0]


def test_iterator_with_tqdm(stand):
    stand.write(T0, {"time": stamps(T0, 100), "pressure": np.zeros(100)})
    assert sum(len(f["pressure"]) for f in stand.open_iterator(None, ["pressure"], chunk_size=30, progress=True)) == 100


def test_writing_numpy_passes_its_memory_without_a_copy(stand, backend):
    ptr = tn._native._debug_series_ptr
    a = np.arange(100, dtype=np.float64)
    assert ptr(a, "f64") == a.__array_interface__["data"][0]
    ts = stamps(T0, 100)
    assert ptr(ts, "timestamp") == ts.__array_interface__["data"][0]
    dt64 = ts.view("datetime64[ns]")
    assert ptr(dt64, "timestamp") == ts.__array_interface__["data"][0]  # datetime64[ns]: a view, no copy
    b = np.array([True, False])
    assert ptr(b, "bool") == b.__array_interface__["data"][0]
    # Other dtypes and non-contiguous arrays are converted (one copy), never misread.
    assert ptr(a.astype(np.float32), "f64") != a.__array_interface__["data"][0]
    assert ptr(a[::2], "f64") != a.__array_interface__["data"][0]
    # A read-only view read back from the engine is written back without a copy too.
    stand.write(T0, {"time": ts, "pressure": a})
    back = stand.read(None, ["pressure"])["pressure"]
    assert ptr(back, "f64") == back.__array_interface__["data"][0]


def test_writer_durability(stand):
    with stand.open_writer(T0, ["pressure"], durability="commit") as w:
        w.write({"time": T0, "pressure": 1.0})
        assert w.commit() == T0 + 1
    with pytest.raises(tn.InvalidArgument):
        stand.open_writer(T0 + 1, ["pressure"], durability="sometimes")


def test_open_with_durability(tmp_path):
    c = tn.open(tmp_path / "d", durability="none")
    c.channels.create(name="t", is_index=True)
    c.write(T0, {"t": [T0]})
    c.close()
    c = tn.open(tmp_path / "d", durability="commit")
    assert c.time_range("t") == tn.TimeRange(T0, T0 + 1)
    c.close()
    with pytest.raises(tn.InvalidArgument):
        tn.open(tmp_path / "e", durability="maybe")
