"""Export to Parquet and CSV from both backends: read back with pyarrow and pandas, progress,
cancellation from the callback, clear errors."""

import os

import numpy as np
import pyarrow.parquet as pq
import pandas as pd
import pytest

import telemetron as tn
from conftest import stamps

T0 = 1_700_000_000 * 10**9


def _fill(stand, frames=4, rows=20_000):
    for f in range(frames):
        t = T0 + f * rows * 1000
        stand.write(t, {"time": stamps(t, rows, 1000), "pressure": np.arange(f * rows, (f + 1) * rows, dtype=np.float64), "temp": np.full(rows, f, np.float32)})
    return frames * rows


def test_range_to_parquet_round_trips_in_chunks(stand, tmp_path):
    n = _fill(stand)
    rng = stand.ranges.create(name="run", time_range=(T0, T0 + 10**12))
    seen = []
    r = rng.to_parquet(tmp_path / "run.parquet", ["pressure", "temp"], memory_budget=1 << 20, progress=seen.append)
    assert (r.rows, r.format, r.columns) == (n, "parquet", ["time", "pressure", "temp"])
    assert len(seen) > 3 and seen[-1].fraction == 1.0 and seen[-1].rows == n
    t = pq.read_table(tmp_path / "run.parquet")
    np.testing.assert_array_equal(t.column("pressure").to_numpy(), np.arange(n, dtype=np.float64))
    assert t.schema.field("time").type.tz == "UTC"
    assert t.column("temp").type == "float"
    # The same frame as a direct read.
    pd.testing.assert_frame_equal(t.to_pandas().set_index("time"), stand.read(None, ["pressure", "temp"]).to_pandas(), check_names=False, check_freq=False)


def test_client_export_csv_sub_range_and_progress_line(stand, tmp_path, capfd):
    _fill(stand, frames=1, rows=100)
    r = stand.export(tmp_path / "part.csv", "pressure", (T0 + 10 * 1000, T0 + 20 * 1000), progress=True)
    assert r.rows == 10
    df = pd.read_csv(tmp_path / "part.csv", parse_dates=["time"])
    assert list(df.columns) == ["time", "pressure"] and df["pressure"].tolist() == list(range(10, 20))
    assert df["time"][0] == pd.Timestamp(T0 + 10 * 1000, unit="ns", tz="UTC")
    assert "export: 100.0%" in capfd.readouterr().err


def test_an_exception_in_progress_cancels_and_leaves_nothing(stand, tmp_path):
    _fill(stand)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "run.parquet"

    def stop(p):
        if p.rows > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stand.export(out, ["pressure"], memory_budget=1 << 20, progress=stop)
    assert os.listdir(tmp_path / "out") == []  # no partial file, no half-written export


def test_bad_exports_raise_typed_errors(stand, tmp_path):
    with pytest.raises(tn.InvalidArgument, match="parquet or .csv"):
        stand.export(tmp_path / "x.xlsx", ["pressure"])
    with pytest.raises(tn.InvalidArgument, match="virtual"):
        stand.export(tmp_path / "x.csv", ["valve_cmd"])
    with pytest.raises(tn.InvalidArgument, match="unknown export format"):
        stand.export(tmp_path / "x.out", ["pressure"], format="xls")
    with pytest.raises(tn.ChannelNotFound):
        stand.export(tmp_path / "x.csv", ["nope"])
