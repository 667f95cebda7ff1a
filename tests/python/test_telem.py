"""Time helpers and data types (pure Python: no engine involved)."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import telemetron as tn


def test_timestamp_conversions():
    t = tn.TimeStamp("2026-11-21T08:00:00.5Z")
    assert int(t) == 1_795_248_000_500_000_000
    assert tn.TimeStamp(dt.datetime(2026, 11, 21, 8, 0, 0, 500000, tzinfo=dt.timezone.utc)) == t
    assert tn.TimeStamp(np.datetime64("2026-11-21T08:00:00.500000001")) == t + 1
    assert tn.TimeStamp(pd.Timestamp("2026-11-21T08:00:00.500000002Z")) == t + 2
    assert t.datetime() == dt.datetime(2026, 11, 21, 8, 0, 0, 500000, tzinfo=dt.timezone.utc)
    assert t.datetime64() == np.datetime64("2026-11-21T08:00:00.5", "ns")
    assert str(t) == "2026-11-21T08:00:00.500000000Z"
    assert tn.TimeStamp.from_seconds(1.5) == 1_500_000_000
    naive = dt.datetime(2026, 1, 1, 12)
    assert tn.TimeStamp(naive) == int(round(naive.timestamp() * 1e9))  # naive = local time


def test_floats_are_refused_with_a_hint():
    with pytest.raises(TypeError, match="from_seconds"):
        tn.TimeStamp(1.5)
    with pytest.raises(TypeError, match="from_seconds"):
        tn.TimeSpan(0.5)


def test_span_arithmetic():
    assert tn.TimeSpan.SECOND * 2 == 2_000_000_000
    assert tn.TimeSpan(dt.timedelta(milliseconds=3)) == 3 * tn.TimeSpan.MILLISECOND
    assert tn.TimeSpan(np.timedelta64(5, "us")) == 5_000
    assert tn.TimeSpan.from_hz(1000) == tn.TimeSpan.MILLISECOND
    assert tn.TimeSpan.from_seconds(0.25).seconds == 0.25
    t = tn.TimeStamp(10)
    assert isinstance(t + tn.TimeSpan(5), tn.TimeStamp) and t + tn.TimeSpan(5) == 15
    assert isinstance(t - tn.TimeStamp(4), tn.TimeSpan) and t - tn.TimeStamp(4) == 6
    assert t + dt.timedelta(microseconds=1) == 1010
    assert tn.TimeStamp.MAX + tn.TimeSpan.SECOND == tn.TimeStamp.MAX
    assert str(tn.TimeSpan.MILLISECOND * 2) == "2.000ms"


def test_time_range():
    r = tn.TimeRange(0, tn.TimeSpan.SECOND)
    assert r.span == tn.TimeSpan.SECOND and 0 in r and int(tn.TimeSpan.SECOND) not in r
    start, end = r
    assert (start, end) == (0, 1_000_000_000)
    assert r.overlaps(tn.TimeRange(999_999_999, 2_000_000_000))
    assert r.intersect(tn.TimeRange(500, 10**10)) == tn.TimeRange(500, 1_000_000_000)
    assert tn.TimeStamp(0).span(tn.TimeSpan(10)) == tn.TimeRange(0, 10)
    assert tn.TimeRange.MAX.start == tn.TimeStamp.MIN


def test_data_type_parse():
    assert tn.DataType.parse(np.float32) == "f32"
    assert tn.DataType.parse(np.dtype("uint16")) == "u16"
    assert tn.DataType.parse(float) == "f64"
    assert tn.DataType.parse("datetime64[ns]") == "timestamp"
    assert tn.DataType.numpy("timestamp") == np.int64
    assert tn.DataType.numpy("string") is None
