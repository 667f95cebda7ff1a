"""Frames: the samples of several channels, as numpy arrays, pandas, polars or Arrow.

``frame["pressure"]`` is a read-only numpy array over the engine's buffer: no copy when the
channel was read as one series. A channel read over several stored runs (one series per
run; :meth:`Frame.series` gives them as zero-copy arrays) is concatenated into one new
array the first time it is asked for (one copy, GIL released), then cached.

Timestamp channels come back as ``int64`` nanoseconds (UTC); :meth:`Frame.to_pandas`
turns the index channel into a ``DatetimeIndex`` and :meth:`Frame.to_arrow` into an
Arrow ``timestamp[ns, UTC]`` column.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np

from .errors import ChannelNotFound, InvalidArgument
from .telem import TimeRange

ChannelLike = Union[str, int, Any]


#: Data types `to_pandas` copies straight into one pandas block (fixed-size numbers).
_BLOCK_TYPES = frozenset({"u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f32", "f64"})


class Frame(Mapping[str, Any]):
    """Samples keyed by channel name (also indexable by key or :class:`Channel`).

    A ``Mapping``: ``len(frame)`` is the number of channels, iteration yields channel
    names, ``frame.items()`` yields ``(name, array)``. Values are read-only numpy arrays
    for fixed-size types and lists for ``string``/``json``/``bytes``/``uuid`` channels.
    """

    __slots__ = ("_by_key", "_by_name", "_cache", "_channels", "_native")

    def __init__(self, native: Any) -> None:
        self._native = native
        self._channels = native.channels()
        self._by_name = {c.name: c for c in self._channels}
        self._by_key = {c.key: c for c in self._channels}
        self._cache: Dict[int, Any] = {}

    # -- lookup --------------------------------------------------------------------------
    def _channel(self, key: ChannelLike) -> Any:
        if isinstance(key, str):
            c = self._by_name.get(key)
        elif isinstance(key, int):
            c = self._by_key.get(key)
        else:
            c = self._by_key.get(getattr(key, "key", None))
        if c is None:
            raise ChannelNotFound(f"channel {key!r} is not in this frame; it holds {list(self._by_name)}", code="channel.not_found")
        return c

    def __getitem__(self, key: ChannelLike) -> Any:
        c = self._channel(key)
        arr = self._cache.get(c.key)
        if arr is None:
            arr = self._native.array(c.key)
            self._cache[c.key] = arr
        return arr

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._channels)

    def __contains__(self, key: object) -> bool:
        try:
            self._channel(key)
        except ChannelNotFound:
            return False
        return True

    @property
    def channels(self) -> List[Any]:
        """The :class:`Channel` definitions of the channels present."""
        return list(self._channels)

    def series(self, key: ChannelLike) -> List[Any]:
        """One zero-copy array (or list) per stored run of a channel."""
        return self._native.arrays(self._channel(key).key)

    def alignments(self, key: ChannelLike) -> List[int]:
        """Where each array of :meth:`series` sits in storage: ``(domain << 32) | position``
        of its first sample. Reads and live frames of stored channels carry the same values,
        so a sample read and the same sample streamed have the same alignment: a live
        stream stitches onto a read by dropping the read's samples whose alignment the
        stream already delivered. Series of virtual channels use domain ``2**32 - 1``;
        reduced series carry 0."""
        return self._native.alignments(self._channel(key).key)

    def samples(self, key: ChannelLike) -> int:
        """Number of samples of a channel."""
        return self._native.samples(self._channel(key).key)

    def time_range(self, key: Optional[ChannelLike] = None) -> Optional[TimeRange]:
        """The time covered by a channel's series (by every channel if ``key`` is None),
        or None when unknown. Live frames of stored channels carry the time range their
        series get in storage."""
        keys = [self._channel(key).key] if key is not None else [c.key for c in self._channels]
        trs = [tr for tr in (self._native.time_range(k) for k in keys) if tr is not None and tr != (0, 0)]
        if not trs:
            return None
        return TimeRange(min(t[0] for t in trs), max(t[1] for t in trs))

    @property
    def byte_size(self) -> int:
        """Bytes of sample data in the frame."""
        return self._native.byte_size()

    def to_dict(self, by: str = "name") -> Dict[Any, Any]:
        """``{name: array}`` (or ``{key: array}`` with ``by="key"``)."""
        return {(c.name if by == "name" else c.key): self[c.key] for c in self._channels}

    def __repr__(self) -> str:
        inner = ", ".join(f"{c.name}: {self.samples(c.key)} {c.data_type}" for c in self._channels)
        return f"Frame({inner})"

    # -- pandas --------------------------------------------------------------------------
    def _groups(self, channels: Optional[Sequence[ChannelLike]]) -> Dict[Optional[int], List[Any]]:
        chans = [self._channel(c) for c in channels] if channels is not None else self._channels
        groups: Dict[Optional[int], List[Any]] = {}
        for c in chans:
            if c.is_index:
                groups.setdefault(c.key, [])
            else:
                groups.setdefault(c.index, []).append(c)
        return groups

    def to_pandas(self, channels: Optional[Sequence[ChannelLike]] = None) -> Any:
        """A ``pandas.DataFrame`` with one column per data channel and a UTC
        ``DatetimeIndex`` from their index channel (read it with the data: ``client.read``
        includes indexes by default). Channels on different indexes are joined on time
        (outer join). Requires pandas.
        """
        import pandas as pd

        frames = []
        for idx_key, data in self._groups(channels).items():
            if idx_key is not None and idx_key in self._by_key:
                ts = self[idx_key]
                index = pd.DatetimeIndex(pd.to_datetime(np.asarray(ts), unit="ns", utc=True), name=self._by_key[idx_key].name)
                bad = [c.name for c in data if self.samples(c.key) != len(ts)]
                if bad:
                    raise InvalidArgument(f"channels {bad} do not have one sample per timestamp of their index", code="invalid_argument")
                if len(data) > 1 and len({c.data_type for c in data}) == 1 and data[0].data_type in _BLOCK_TYPES:
                    # One numeric type: every sample is copied once, in Rust, into the one
                    # 2-D block pandas keeps (its transpose), not column by column and again
                    # on consolidation.
                    block = self._native.block([c.key for c in data])
                    frames.append(pd.DataFrame(block.T, index=index, columns=[c.name for c in data], copy=False))
                    continue
                frames.append(pd.DataFrame({c.name: self[c.key] for c in data}, index=index))
            else:
                frames.append(pd.DataFrame({c.name: self[c.key] for c in data}))
        if not frames:
            return pd.DataFrame()
        if len(frames) == 1:
            return frames[0]
        return pd.concat(frames, axis=1).sort_index()

    # -- polars / arrow ------------------------------------------------------------------
    def _columns(self, channels: Optional[Sequence[ChannelLike]]) -> List[Any]:
        chans = [self._channel(c) for c in channels] if channels is not None else self._channels
        lengths = {c.name: self.samples(c.key) for c in chans}
        if len(set(lengths.values())) > 1:
            raise InvalidArgument(
                f"channels have different lengths {lengths}; a table needs equal columns. "
                "Select channels of one index (frame.to_arrow(['time', 'pressure'])) or use to_pandas()",
                code="invalid_argument",
            )
        return chans

    def to_arrow(self, channels: Optional[Sequence[ChannelLike]] = None) -> Any:
        """A ``pyarrow.Table`` with one column per channel (equal lengths required). Columns
        share the engine's memory (no copy) except booleans (Arrow packs bits) and
        channels read as several series (concatenated once); timestamp channels become
        ``timestamp[ns, tz=UTC]``, json channels strings. Requires pyarrow."""
        import pyarrow as pa

        return pa.table(_Export(self, channels))

    def to_polars(self, channels: Optional[Sequence[ChannelLike]] = None) -> Any:
        """A ``polars.DataFrame`` (through the Arrow C interface: no pyarrow needed and
        numeric columns are not copied). Requires polars."""
        import polars as pl

        return pl.DataFrame(_Export(self, channels))

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """Arrow PyCapsule stream interface: pyarrow (``pa.table(frame)``), polars
        (``pl.DataFrame(frame)``) and duckdb read frames directly, sharing the engine's
        memory. Implemented natively (no pyarrow needed); one record batch."""
        return _Export(self, None).__arrow_c_stream__(requested_schema)

    def __arrow_c_array__(self, requested_schema: Any = None) -> Any:
        """Arrow PyCapsule array interface: the frame as one record batch (a struct array
        of the channels)."""
        return _Export(self, None).__arrow_c_array__(requested_schema)


class _Export:
    """Some channels of a frame, exportable through the Arrow PyCapsule interface."""

    __slots__ = ("_keys", "_native")

    def __init__(self, frame: Frame, channels: Optional[Sequence[ChannelLike]]) -> None:
        self._native = frame._native
        self._keys = [c.key for c in frame._columns(channels)]

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._native.arrow_c_stream(self._keys)

    def __arrow_c_array__(self, requested_schema: Any = None) -> Any:
        return self._native.arrow_c_array(self._keys)
