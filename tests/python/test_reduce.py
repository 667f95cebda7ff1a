"""Reductions from Python, on both backends: the points checked against numpy doing the same
bucketing by hand, the spike kept, pandas and ranges, iterators, and refusals."""

import numpy as np
import pytest

import telemetron as tn
from conftest import stamps

T0 = 1_700_000_000_000_000_000
N = 100_000


def buckets(ts: np.ndarray, n: int) -> list:
    """Split positions into ``n`` equal-time buckets, as the core documents it."""
    span = int(ts[-1]) - int(ts[0]) + 1
    width = max(1, -(-span // n))
    b = (ts - ts[0]) // width
    edges = np.flatnonzero(np.diff(b)) + 1
    return np.split(np.arange(len(ts)), edges)


@pytest.fixture
def signal(stand):
    ts = stamps(T0, N)
    rng = np.random.default_rng(3)
    p = np.sin(np.arange(N) / 5_000) + rng.normal(0, 0.01, N)
    p[54_321] = 40.0
    stand.write(T0, {"time": ts, "pressure": p, "temp": np.arange(N, dtype=np.float32)})
    return stand, ts, p


def test_minmax_matches_numpy_and_keeps_the_spike(signal):
    client, ts, p = signal
    f = client.read(None, ["pressure"], points=1_000)
    got_t, got_p = np.asarray(f["time"]), np.asarray(f["pressure"])
    assert len(got_p) == len(got_t) == 1_000 and got_p.dtype == np.float64
    want_t, want_p = [], []
    for idx in buckets(ts, 500):
        lo, hi = idx[np.argmin(p[idx])], idx[np.argmax(p[idx])]
        want_t += [ts[idx[0]], ts[idx[-1]]]
        want_p += [p[min(lo, hi)], p[max(lo, hi)]]
    np.testing.assert_array_equal(got_t, want_t)
    np.testing.assert_array_equal(got_p, want_p)
    assert got_p.max() == 40.0


def test_average_matches_numpy_and_keeps_the_type_promise(signal):
    client, ts, p = signal
    f = client.read((T0, T0 + 50_000 * 1_000_000), ["pressure", "temp"], points=250, reduce="average")
    parts = buckets(ts[:50_000], 250)
    np.testing.assert_allclose(np.asarray(f["pressure"]), [p[i].mean() for i in parts], rtol=1e-12)
    np.testing.assert_allclose(np.asarray(f["temp"]), [np.arange(N)[i].mean() for i in parts], rtol=1e-12)
    assert np.asarray(f["temp"]).dtype == np.float64  # averages are float64
    np.testing.assert_array_equal(np.asarray(f["time"]), [ts[i[0]] + (ts[i[-1]] - ts[i[0]]) // 2 for i in parts])
    # Min-max keeps the channel's type.
    assert np.asarray(client.read(None, ["temp"], points=100)["temp"]).dtype == np.float32


def test_reduced_frames_go_to_pandas_and_ranges(signal):
    client, ts, p = signal
    df = client.read(None, ["pressure", "temp"], points=200).to_pandas()
    assert len(df) == 200 and list(df.columns) == ["pressure", "temp"]
    assert df.index.is_monotonic_increasing
    r = client.ranges.create(name="first half", time_range=(T0, T0 + (N // 2) * 1_000_000))
    half = r.read(["pressure"], points=100)
    assert len(half["pressure"]) == 100
    assert np.asarray(half["time"])[-1] < T0 + (N // 2) * 1_000_000


def test_iterators_reduce_each_chunk(signal):
    client, ts, p = signal
    chunks = [f for f in client.open_iterator(None, ["pressure"], chunk_size=10_000, points=20)]
    assert len(chunks) == 10
    assert all(len(f["pressure"]) == len(f["time"]) == 20 for f in chunks)
    assert max(np.asarray(f["pressure"]).max() for f in chunks) == 40.0
    means = [np.asarray(f["pressure"]) for f in client.open_iterator(None, ["pressure"], chunk_size=50_000, points=1, reduce="average")]
    np.testing.assert_allclose(np.concatenate(means), [p[:50_000].mean(), p[50_000:].mean()], rtol=1e-12)


def test_refusals_say_what_to_do(stand, client):
    client.channels.create([tn.NewChannel("label", "string", index="time")])
    ts = stamps(T0, 10)
    client.write(T0, {"time": ts, "pressure": np.zeros(10), "temp": np.zeros(10, np.float32), "label": [str(i) for i in range(10)]})
    with pytest.raises(tn.InvalidArgument, match="without a reduction"):
        client.read(None, ["label"], points=10)
    with pytest.raises(tn.InvalidArgument, match="minmax"):
        client.read(None, ["pressure"], points=10, reduce="median")
    with pytest.raises(tn.InvalidArgument, match="2 to"):
        client.read(None, ["pressure"], points=1)
    with pytest.raises(tn.InvalidArgument):
        client.open_iterator(None, ["pressure"], points=0, reduce="average")
    # Nothing was lost: the full read still has every sample.
    assert list(client.read(None, ["label"])["label"]) == [str(i) for i in range(10)]
