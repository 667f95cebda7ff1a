"""Reading: zero-copy numpy views, concatenation, pandas/polars/Arrow, variable types."""

import uuid

import numpy as np
import pyarrow as pa
import polars as pl
import pytest

import telemetron as tn
from conftest import stamps

T0 = 1_700_000_000_000_000_000


def _fill(client, n=1000):
    ts = stamps(T0, n)
    client.write(T0, {"time": ts, "pressure": np.arange(n, dtype=np.float64), "temp": np.arange(n, dtype=np.float32)})
    return ts


def test_read_is_a_read_only_view_over_the_rust_buffer(stand):
    _fill(stand)
    f = stand.read(None, ["pressure"])
    arr = f["pressure"]
    assert isinstance(arr, np.ndarray) and arr.dtype == np.float64 and not arr.flags.writeable
    assert not arr.flags.owndata and isinstance(arr.base, tn._native.SeriesBuffer)
    # Zero copy: numpy's data pointer is the Rust series' buffer.
    assert f._native.data_ptrs(f.channels[0].key) == [arr.__array_interface__["data"][0]]
    assert arr.base.ptr == arr.__array_interface__["data"][0]
    view = np.asarray(arr)
    assert view.__array_interface__["data"][0] == arr.__array_interface__["data"][0]
    with pytest.raises(ValueError):
        arr[0] = 1.0
    del f
    assert arr[999] == 999.0  # the view keeps the buffer alive


def test_several_series_are_concatenated_once(stand):
    for k in range(3):
        stand.write(T0 + k * 10**9, {"time": stamps(T0 + k * 10**9, 10), "pressure": np.full(10, float(k))})
    f = stand.read(None, ["pressure"])
    parts = f.series("pressure")
    assert len(parts) == 3 and all(not p.flags.writeable for p in parts)
    whole = f["pressure"]
    assert len(whole) == 30 and whole[10] == 1.0 and not whole.flags.writeable
    assert f["pressure"] is whole  # cached: concatenated once


def test_frame_mapping_api(stand):
    _fill(stand, 10)
    f = stand.read(None, ["pressure", "temp"])
    assert set(f) == {"pressure", "temp", "time"} and len(f) == 3 and "pressure" in f and "nope" not in f
    key = stand.channels.retrieve("temp").key
    assert f[key] is f["temp"] and f.samples("temp") == 10
    assert f.time_range() == tn.TimeRange(T0, T0 + 9 * 1_000_000 + 1)
    assert f.byte_size == 10 * (8 + 4 + 8)
    with pytest.raises(tn.ChannelNotFound):
        f["nope"]
    assert "pressure: 10 f64" in repr(f)
    g = stand.read(None, ["pressure"], include_index=False)
    assert list(g) == ["pressure"]


def test_to_pandas_has_a_datetime_index(stand):
    ts = _fill(stand, 50)
    df = stand.read(None, ["pressure", "temp"]).to_pandas()
    assert list(df.columns) == ["pressure", "temp"] and df.index.name == "time"
    assert str(df.index.tz) == "UTC" and df.index[0].value == ts[0]
    assert df["pressure"].sum() == sum(range(50))


def test_to_pandas_of_many_channels_is_one_block_of_their_values(client):
    names = [f"ch{i}" for i in range(12)]
    client.channels.create([tn.NewChannel("t", is_index=True)] + [tn.NewChannel(n, "f64", index="t") for n in names])
    rng = np.random.default_rng(5)
    want = rng.normal(size=(3 * 400, len(names)))
    for k in range(3):  # three commits: every channel is read as three series
        rows = slice(k * 400, (k + 1) * 400)
        client.write(T0 + k * 10**9, {"t": stamps(T0 + k * 10**9, 400), **{n: want[rows, i] for i, n in enumerate(names)}})
    f = client.read(None, names)
    assert len(f.series(names[0])) == 3
    df = f.to_pandas()
    assert list(df.columns) == names and df.shape == want.shape and df.index.name == "t"
    np.testing.assert_array_equal(df.to_numpy(), want)
    assert all(df[n].dtype == np.float64 for n in names)
    # One block: the whole frame as one array is a view of the columns' memory (pandas
    # would have to copy to join one array per column).
    whole = df.to_numpy()
    assert np.shares_memory(whole, df[names[0]].to_numpy()) and np.shares_memory(whole, df[names[-1]].to_numpy())
    # A copy owned by pandas, not a view of the engine's buffers.
    assert not any(np.may_share_memory(df[names[0]].to_numpy(), p) for p in f.series(names[0]))
    # Mixed types keep the column-by-column path, in the order asked for.
    client.channels.create([tn.NewChannel("flag", "u8", index="t")])
    client.write(T0 + 5 * 10**9, {"t": stamps(T0 + 5 * 10**9, 2), "flag": [1, 0], **{n: [0.5, 1.5] for n in names}})
    mixed = client.read((T0 + 5 * 10**9, T0 + 6 * 10**9), [names[0], "flag", names[1]]).to_pandas()
    assert list(mixed.columns) == [names[0], "flag", names[1]] and mixed["flag"].tolist() == [1, 0]
    with pytest.raises(tn.InvalidArgument, match="one data type"):
        client.read(None, [names[0], "flag"])._native.block([client.channels.retrieve(n).key for n in (names[0], "flag")])


def test_to_pandas_joins_two_indexes(stand):
    stand.channels.create([tn.NewChannel("t2", is_index=True), tn.NewChannel("slow", "f64", index="t2")])
    _fill(stand, 4)
    stand.write(T0, {"t2": [T0, T0 + 2_000_000], "slow": [10.0, 20.0]})
    df = stand.read(None, ["pressure", "slow"]).to_pandas()
    assert len(df) == 4 and df["slow"].count() == 2


def test_to_polars_and_arrow_share_memory(stand):
    _fill(stand, 100)
    f = stand.read(None, ["pressure", "temp"])
    table = f.to_arrow()
    assert table.schema.field("time").type == pa.timestamp("ns", tz="UTC")
    col = table.column("pressure").chunk(0)
    assert col.buffers()[1].address == f["pressure"].__array_interface__["data"][0]  # no copy
    key = stand.channels.retrieve("pressure").key
    assert f._native.arrow_data_ptrs([key]) == f._native.data_ptrs(key)
    assert table.column("time").to_numpy().view("int64").tolist() == f["time"].tolist()
    df = f.to_polars()
    assert df.shape == (100, 3) and df["pressure"].sum() == sum(range(100))
    del f, table, col  # the Arrow buffers keep the Rust series alive, then release them


def test_arrow_pycapsule_interface(stand):
    _fill(stand, 20)
    f = stand.read(None, ["pressure", "temp"])
    assert pa.table(f).num_rows == 20  # __arrow_c_stream__
    assert pa.record_batch(f).num_rows == 20  # __arrow_c_array__
    assert pl.DataFrame(f).shape == (20, 3)
    with pytest.raises(tn.InvalidArgument):
        stand.channels.create([tn.NewChannel("t2", is_index=True), tn.NewChannel("slow", "f64", index="t2")])
        stand.write(T0, {"t2": [T0], "slow": [1.0]})
        stand.read(None, ["pressure", "slow"]).to_arrow()


@pytest.mark.parametrize(
    "data_type,values",
    [
        ("u8", np.array([0, 255], np.uint8)),
        ("u16", np.array([0, 65535], np.uint16)),
        ("u32", np.array([1, 2], np.uint32)),
        ("u64", np.array([1, 2**63], np.uint64)),
        ("i8", np.array([-128, 127], np.int8)),
        ("i16", np.array([-2, 2], np.int16)),
        ("i32", np.array([-2, 2], np.int32)),
        ("i64", np.array([-(2**62), 2], np.int64)),
        ("f32", np.array([0.5, -1], np.float32)),
        ("f64", np.array([np.pi, np.inf])),
        ("bool", np.array([True, False])),
    ],
)
def test_fixed_types_round_trip(stand, data_type, values):
    stand.channels.create(name="x", data_type=data_type, index="time")
    stand.write(T0, {"time": stamps(T0, 2), "x": values})
    got = stand.read(None, ["x"])["x"]
    assert got.dtype == values.dtype
    np.testing.assert_array_equal(got, values)


def test_arrow_export_of_every_type(stand):
    u = [uuid.uuid4() for _ in range(3)]
    stand.channels.create(
        [
            tn.NewChannel("s", "string", index="time"),
            tn.NewChannel("j", "json", index="time"),
            tn.NewChannel("b", "bytes", index="time"),
            tn.NewChannel("u", "uuid", index="time"),
            tn.NewChannel("ok", "bool", index="time"),
            tn.NewChannel("n", "i16", index="time"),
        ]
    )
    data = {"s": ["a", "", "ccc"], "j": [{"x": 1}, None, [2]], "b": [b"\x00\x01", b"", b"z"], "u": u, "ok": [True, False, True], "n": [-1, 0, 1]}
    stand.write(T0, {"time": stamps(T0, 3), **data})
    stand.write(T0 + 10**9, {"time": stamps(T0 + 10**9, 2), "s": ["d", "e"], "j": [3, 4], "b": [b"", b"y"], "u": u[:2], "ok": [False, False], "n": [5, 6]})
    t = pa.table(stand.read(None, list(data)))  # two series per channel: concatenated
    assert t.column("s").to_pylist() == ["a", "", "ccc", "d", "e"]
    assert t.column("j").to_pylist() == ['{"x": 1}', "null", "[2]", "3", "4"]
    assert t.column("b").to_pylist() == [b"\x00\x01", b"", b"z", b"", b"y"]
    # uuid is Arrow's canonical `arrow.uuid` extension type, so pyarrow gives UUID objects.
    assert t.column("u").to_pylist() == u + u[:2]
    assert t.schema.field("j").metadata[b"telemetron.data_type"] == b"json"
    assert t.column("ok").to_pylist() == [True, False, True, False, False]
    assert t.column("n").to_pylist() == [-1, 0, 1, 5, 6] and t.schema.field("n").type == pa.int16()
    # Fixed-size channels read as several series are concatenated into one shared
    # allocation, each column at a 64-byte aligned offset (n: 5 x i16 = 10 bytes -> 64).
    p_n, p_u = stand.read(None, ["n", "u"])._native.arrow_data_ptrs([stand.channels.retrieve(c).key for c in ("n", "u")])
    assert p_u - p_n == 64 and p_n % 8 == 0
    one = stand.read((T0, T0 + 10**9), ["s", "u"])  # one series: shared, not copied
    ts = pa.table(one).column("s").chunk(0)
    assert ts.buffers()[2].address == one._native.arrow_data_ptrs([stand.channels.retrieve("s").key])[0]
    empty = stand.read((0, 1), ["s", "n"])
    assert pa.table(empty).num_rows == 0


def test_variable_types_round_trip(stand):
    u = [uuid.uuid4(), uuid.uuid4()]
    stand.channels.create(
        [
            tn.NewChannel("s", "string", index="time"),
            tn.NewChannel("j", "json", index="time"),
            tn.NewChannel("b", "bytes", index="time"),
            tn.NewChannel("u", "uuid", index="time"),
        ]
    )
    stand.write(T0, {"time": stamps(T0, 2), "s": ["hi", "ünï"], "j": [{"a": 1}, [1, 2]], "b": [b"\x00", b""], "u": u})
    f = stand.read(None, ["s", "j", "b", "u"])
    assert f["s"] == ["hi", "ünï"] and f["j"] == [{"a": 1}, [1, 2]] and f["b"] == [b"\x00", b""] and f["u"] == u
    with pytest.raises(tn.SeriesError):
        stand.write(T0 + 10**9, {"time": [T0 + 10**9], "j": ["{not json"]})


def test_empty_read(stand):
    f = stand.read(None, ["pressure"])
    assert len(f["pressure"]) == 0 and f["pressure"].dtype == np.float64


def test_read_latest(stand):
    assert len(stand.read_latest("pressure")["pressure"]) == 0
    _fill(stand, 100)
    last = stand.read_latest(["pressure", "temp"], n=3)
    assert last["pressure"].tolist() == [97.0, 98.0, 99.0] and len(last["time"]) == 3
    assert stand.read_latest("pressure")["pressure"].tolist() == [99.0]
