"""Time and data types: :class:`TimeStamp`, :class:`TimeSpan`, :class:`TimeRange`,
:class:`DataType`.

Time in Telemetron is integer nanoseconds since the Unix epoch, UTC. ``TimeStamp`` and
``TimeSpan`` are ``int`` subclasses, so they work anywhere an int of nanoseconds does, and
they convert from and to ``datetime``/``timedelta``, numpy ``datetime64``/``timedelta64``
and pandas ``Timestamp``/``Timedelta``.

Naive ``datetime`` objects are interpreted as *local* time (as Python's
``datetime.timestamp()`` does); numpy ``datetime64`` values are UTC by definition. Floats
are refused as timestamps (seconds or nanoseconds?); use :meth:`TimeStamp.from_seconds`.
"""

from __future__ import annotations

import datetime as _dt
import time as _time
from typing import Any, Dict, Iterator, Optional, Tuple, Union

import numpy as np

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1


def _timedelta_ns(d: _dt.timedelta) -> int:
    return (d.days * 86_400 + d.seconds) * 1_000_000_000 + d.microseconds * 1_000


def to_ns(value: Any) -> int:
    """Nanoseconds since the epoch for a timestamp-like value.

    Accepts ``int`` (ns), :class:`TimeStamp`, ``datetime`` (naive = local time), pandas
    ``Timestamp``, numpy ``datetime64``, and ISO 8601 strings.
    """
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, _dt.datetime):
        ns = getattr(value, "value", None)  # pandas.Timestamp: exact ns, tz handled
        if isinstance(ns, int) and type(value).__module__.startswith("pandas"):
            return ns
        if value.tzinfo is None:
            value = value.astimezone()
        return _timedelta_ns(value - _EPOCH)
    if isinstance(value, np.datetime64):
        return int(value.astype("datetime64[ns]").astype(np.int64))
    if isinstance(value, _dt.date):
        return to_ns(_dt.datetime(value.year, value.month, value.day))
    if isinstance(value, str):
        try:
            return to_ns(_dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 timestamp (e.g. '2026-11-21T08:00:00Z')") from None
    if isinstance(value, (float, np.floating)):
        raise TypeError(
            f"a float ({value}) is ambiguous as a timestamp; pass integer nanoseconds, a datetime, or TimeStamp.from_seconds(...)"
        )
    raise TypeError(f"cannot use {type(value).__name__} as a timestamp; pass int nanoseconds, a datetime or a numpy datetime64")


def span_ns(value: Any) -> int:
    """Nanoseconds for a duration-like value: ``int`` (ns), :class:`TimeSpan`,
    ``timedelta``, pandas ``Timedelta`` or numpy ``timedelta64``."""
    if isinstance(value, np.timedelta64):  # before np.integer: timedelta64 is one
        return int(value.astype("timedelta64[ns]").astype(np.int64))
    if isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, _dt.timedelta):
        ns = getattr(value, "value", None)  # pandas.Timedelta
        if isinstance(ns, int) and type(value).__module__.startswith("pandas"):
            return ns
        return _timedelta_ns(value)
    if isinstance(value, np.timedelta64):
        return int(value.astype("timedelta64[ns]").astype(np.int64))
    if isinstance(value, (float, np.floating)):
        raise TypeError(f"a float ({value}) is ambiguous as a span; pass integer nanoseconds or TimeSpan.from_seconds(...)")
    raise TypeError(f"cannot use {type(value).__name__} as a time span; pass int nanoseconds or a timedelta")


class TimeStamp(int):
    """An instant: integer nanoseconds since the Unix epoch (UTC).

    >>> TimeStamp("2026-11-21T08:00:00Z")
    TimeStamp(2026-11-21T08:00:00.000000000Z)
    >>> TimeStamp(0) + TimeSpan.SECOND
    TimeStamp(1970-01-01T00:00:01.000000000Z)
    """

    MIN: "TimeStamp"
    MAX: "TimeStamp"
    EPOCH: "TimeStamp"

    def __new__(cls, value: Any = 0) -> "TimeStamp":
        return super().__new__(cls, to_ns(value))

    @classmethod
    def now(cls) -> "TimeStamp":
        """The current wall-clock time."""
        return cls(_time.time_ns())

    @classmethod
    def from_seconds(cls, seconds: float) -> "TimeStamp":
        """An instant from seconds since the epoch (e.g. ``time.time()``)."""
        return cls(int(round(seconds * 1e9)))

    def datetime(self, tz: Optional[_dt.tzinfo] = _dt.timezone.utc) -> _dt.datetime:
        """As an aware ``datetime`` (microsecond precision), in UTC unless ``tz`` is given."""
        d = _EPOCH + _dt.timedelta(microseconds=int(self) // 1000)
        return d.astimezone(tz) if tz is not None else d

    def datetime64(self) -> np.datetime64:
        """As ``numpy.datetime64[ns]``."""
        return np.datetime64(int(self), "ns")

    @property
    def seconds(self) -> float:
        """Seconds since the epoch as a float."""
        return int(self) / 1e9

    def span(self, end: Any) -> "TimeRange":
        """The range ``[self, end)``; ``end`` may also be a :class:`TimeSpan`."""
        if isinstance(end, TimeSpan):
            return TimeRange(self, self + end)
        return TimeRange(self, end)

    def __add__(self, other: Any) -> Any:
        """``TimeStamp + span`` is a TimeStamp (saturating); ``+ ndarray`` an int64 array."""
        if isinstance(other, TimeStamp):
            return NotImplemented
        if isinstance(other, np.ndarray):  # stamps = start + np.arange(n) * period
            return int(self) + other.astype(np.int64, copy=False)
        return TimeStamp(min(max(int(self) + span_ns(other), _I64_MIN), _I64_MAX))

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        if isinstance(other, np.ndarray):
            return int(self) - other
        if isinstance(other, (TimeStamp, _dt.datetime, np.datetime64)):
            return TimeSpan(int(self) - to_ns(other))
        return TimeStamp(min(max(int(self) - span_ns(other), _I64_MIN), _I64_MAX))

    def __str__(self) -> str:
        ns = int(self)
        secs, frac = divmod(ns, 1_000_000_000)
        if not -62135596800 <= secs <= 253402300799:
            return f"{ns}ns"
        d = _EPOCH + _dt.timedelta(seconds=secs)
        return d.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac:09d}Z"

    def __repr__(self) -> str:
        return f"TimeStamp({self})"


class TimeSpan(int):
    """A signed duration in integer nanoseconds.

    >>> TimeSpan.SECOND * 5
    TimeSpan(5.000s)
    >>> TimeSpan(datetime.timedelta(milliseconds=2)).seconds
    0.002
    """

    ZERO: "TimeSpan"
    NANOSECOND: "TimeSpan"
    MICROSECOND: "TimeSpan"
    MILLISECOND: "TimeSpan"
    SECOND: "TimeSpan"
    MINUTE: "TimeSpan"
    HOUR: "TimeSpan"
    DAY: "TimeSpan"
    MAX: "TimeSpan"

    def __new__(cls, value: Any = 0) -> "TimeSpan":
        return super().__new__(cls, span_ns(value))

    @classmethod
    def from_seconds(cls, seconds: float) -> "TimeSpan":
        """A span of ``seconds`` (float)."""
        return cls(int(round(seconds * 1e9)))

    @classmethod
    def from_hz(cls, hz: float) -> "TimeSpan":
        """The period of a rate in Hz."""
        return cls(max(1, int(round(1e9 / hz))))

    @property
    def seconds(self) -> float:
        """The span in seconds (float)."""
        return int(self) / 1e9

    def timedelta(self) -> _dt.timedelta:
        """As ``datetime.timedelta`` (microsecond precision)."""
        return _dt.timedelta(microseconds=int(self) // 1000)

    def timedelta64(self) -> np.timedelta64:
        """As ``numpy.timedelta64[ns]``."""
        return np.timedelta64(int(self), "ns")

    def __add__(self, other: Any) -> Any:
        if isinstance(other, TimeStamp):
            return other + self
        return TimeSpan(int(self) + span_ns(other))

    __radd__ = __add__

    def __sub__(self, other: Any) -> "TimeSpan":
        return TimeSpan(int(self) - span_ns(other))

    def __mul__(self, other: Any) -> Any:
        if isinstance(other, (TimeSpan, TimeStamp)):
            return NotImplemented
        if isinstance(other, np.ndarray):
            return int(self) * other
        return TimeSpan(int(round(int(self) * other)))

    __rmul__ = __mul__

    def __neg__(self) -> "TimeSpan":
        return TimeSpan(-int(self))

    def __str__(self) -> str:
        n = int(self)
        a = abs(n)
        if a >= 1_000_000_000:
            return f"{n / 1e9:.3f}s"
        if a >= 1_000_000:
            return f"{n / 1e6:.3f}ms"
        if a >= 1_000:
            return f"{n / 1e3:.3f}µs"
        return f"{n}ns"

    def __repr__(self) -> str:
        return f"TimeSpan({self})"


TimeStamp.MIN = TimeStamp(_I64_MIN)
TimeStamp.MAX = TimeStamp(_I64_MAX)
TimeStamp.EPOCH = TimeStamp(0)
TimeSpan.ZERO = TimeSpan(0)
TimeSpan.NANOSECOND = TimeSpan(1)
TimeSpan.MICROSECOND = TimeSpan(1_000)
TimeSpan.MILLISECOND = TimeSpan(1_000_000)
TimeSpan.SECOND = TimeSpan(1_000_000_000)
TimeSpan.MINUTE = TimeSpan(60 * 1_000_000_000)
TimeSpan.HOUR = TimeSpan(3600 * 1_000_000_000)
TimeSpan.DAY = TimeSpan(86_400 * 1_000_000_000)
TimeSpan.MAX = TimeSpan(_I64_MAX)


class TimeRange:
    """A half-open time range ``[start, end)``.

    Build one from anything :class:`TimeStamp` accepts, or with ``TimeStamp.span``:

    >>> TimeRange(0, TimeSpan.SECOND).span
    TimeSpan(1.000s)
    >>> start, end = TimeRange("2026-11-21T08:00:00Z", "2026-11-21T09:00:00Z")
    """

    __slots__ = ("end", "start")
    MAX: "TimeRange"

    def __init__(self, start: Any, end: Any) -> None:
        self.start = TimeStamp(start)
        self.end = TimeStamp(end)

    @property
    def span(self) -> TimeSpan:
        """``end - start``."""
        return TimeSpan(int(self.end) - int(self.start))

    @property
    def is_valid(self) -> bool:
        """True when ``start <= end``."""
        return self.start <= self.end

    def contains(self, t: Any) -> bool:
        """True if ``t`` lies in ``[start, end)``."""
        n = to_ns(t)
        return self.start <= n < self.end

    __contains__ = contains

    def overlaps(self, other: "TimeRange") -> bool:
        """True if the ranges share an instant."""
        return self.start < other.end and other.start < self.end

    def intersect(self, other: "TimeRange") -> "TimeRange":
        """The intersection (possibly empty)."""
        return TimeRange(max(self.start, other.start), min(self.end, other.end))

    def __iter__(self) -> Iterator[TimeStamp]:
        return iter((self.start, self.end))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TimeRange):
            return (self.start, self.end) == (other.start, other.end)
        if isinstance(other, tuple) and len(other) == 2:
            return (int(self.start), int(self.end)) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((int(self.start), int(self.end)))

    def __repr__(self) -> str:
        return f"TimeRange({self.start}, {self.end})"


TimeRange.MAX = TimeRange(TimeStamp.MIN, TimeStamp.MAX)

TimeRangeLike = Union[TimeRange, Tuple[Any, Any], None, Any]


def to_range(value: TimeRangeLike) -> TimeRange:
    """A :class:`TimeRange` from a range, a ``(start, end)`` pair, a :class:`Range`
    (anything with ``.time_range``) or ``None`` (everything)."""
    if value is None:
        return TimeRange.MAX
    if isinstance(value, TimeRange):
        return value
    tr = getattr(value, "time_range", None)
    if isinstance(tr, TimeRange):
        return tr
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return TimeRange(value[0], value[1])
    raise TypeError(f"cannot use {type(value).__name__} as a time range; pass TimeRange(start, end) or (start, end)")


class DataType:
    """Sample type names. Channels take these strings (or numpy dtypes / Python types,
    see :meth:`parse`)."""

    U8 = "u8"
    U16 = "u16"
    U32 = "u32"
    U64 = "u64"
    I8 = "i8"
    I16 = "i16"
    I32 = "i32"
    I64 = "i64"
    F32 = "f32"
    F64 = "f64"
    BOOL = "bool"
    TIMESTAMP = "timestamp"
    UUID = "uuid"
    STRING = "string"
    JSON = "json"
    BYTES = "bytes"

    _NUMPY: Dict[str, np.dtype] = {
        "u8": np.dtype(np.uint8),
        "u16": np.dtype(np.uint16),
        "u32": np.dtype(np.uint32),
        "u64": np.dtype(np.uint64),
        "i8": np.dtype(np.int8),
        "i16": np.dtype(np.int16),
        "i32": np.dtype(np.int32),
        "i64": np.dtype(np.int64),
        "f32": np.dtype(np.float32),
        "f64": np.dtype(np.float64),
        "bool": np.dtype(np.bool_),
        "timestamp": np.dtype(np.int64),
    }

    @staticmethod
    def parse(value: Any) -> str:
        """The canonical name for a data type given as a name (``"float64"``), a numpy
        dtype or scalar type (``np.float32``), or a Python type (``float``, ``int``,
        ``bool``, ``str``, ``bytes``, ``dict``, ``uuid.UUID``, ``datetime``)."""
        import uuid

        py = {float: "f64", int: "i64", bool: "bool", str: "string", bytes: "bytes", dict: "json", uuid.UUID: "uuid"}
        if isinstance(value, type) and value in py:
            return py[value]
        if value is _dt.datetime or value is TimeStamp:
            return "timestamp"
        if isinstance(value, str):
            return "timestamp" if value.startswith("datetime64") else value
        try:
            d = np.dtype(value)
        except TypeError:
            raise TypeError(f"cannot use {value!r} as a data type; use a name such as 'f64'") from None
        if d.kind == "M":
            return "timestamp"
        for name, nd in DataType._NUMPY.items():
            if nd == d and name != "timestamp":
                return name
        raise TypeError(f"numpy dtype {d} has no Telemetron data type")

    @staticmethod
    def numpy(name: str) -> Optional[np.dtype]:
        """The numpy dtype of a fixed-size type's arrays (``int64`` for timestamps), or
        None for ``uuid``, ``string``, ``json`` and ``bytes`` (returned as lists)."""
        return DataType._NUMPY.get(name)
