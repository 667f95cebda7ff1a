"""Writers and iterators.

## Writers
A writer appends frames to channels from ``start`` on. Each write is validated completely
first: if any rule is broken (index timestamps must strictly increase, data and index
lengths must match, ...) nothing of it is written and the exception says what to fix.
Channels the writer does not control (another writer holds them with a higher authority)
are dropped from the write and reported (:attr:`Writer.unauthorized`), or the write fails
with ``err_on_unauthorized=True``.

**Zero copy.** A 1-D C-contiguous numpy array of the channel's dtype is handed to the
engine without a copy. The engine (and live streamers) may keep reading that memory after
``write`` returns: do not modify an array after writing it; write a fresh array (or a
copy) each time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, List, Optional
from typing import Iterator as TypingIterator

from ._convert import to_mapping
from .frame import Frame
from .telem import TimeStamp, span_ns

if TYPE_CHECKING:
    from .channel import ChannelRef

_NONE: List[str] = []


class Writer:
    """An open writer (``client.open_writer``); use it as a context manager, which
    commits and closes on exit.

    >>> with client.open_writer(start, ["time", "pressure"]) as w:
    ...     w.write({"time": ts, "pressure": values})
    ...     w.commit()
    """

    __slots__ = ("_native", "unauthorized")

    def __init__(self, native: Any) -> None:
        self._native = native
        #: Names of the channels dropped from the last write (another writer controls them).
        self.unauthorized: List[str] = _NONE

    def write(self, data: Any, values: Any = None, *, confirm: bool = False) -> bool:
        """Write one frame: ``{channel: values}``, ``(channel, values)``,
        ``([channels], [values])``, a pandas DataFrame or a :class:`Frame`. Values may be
        numpy arrays (zero-copy when of the channel's dtype), lists, scalars, pandas
        Series; timestamps as int ns, numpy datetime64 or datetimes.

        Against a node, writes are pipelined: control can move on the node while a write is
        on its way, and the node then drops those channels and says so. That report arrives
        with a later call; ``confirm=True`` waits for the node to apply this write, so the
        result is certain when it returns (a round trip; embedded writes are always certain).

        Returns:
            True if every channel was written; False if some were not, because another
            writer controls them (their names are in :attr:`unauthorized`, together with any
            channels of earlier writes the node reported dropped since the last call).

        Raises:
            WriteError: a broken rule (nothing of the frame was written).
            Unauthorized: with ``err_on_unauthorized=True``.
        """
        if values is not None or type(data) is not dict:
            data = to_mapping(data, values)
        dropped = self._native.write(data, confirm)
        if dropped is None:
            self.unauthorized = _NONE
            return True
        self.unauthorized = dropped
        return False

    def confirm(self) -> bool:
        """Wait until every write so far has been applied (by the node, when remote).

        Returns:
            True if nothing was dropped since the last report; False otherwise (the channels
            are in :attr:`unauthorized`).
        """
        dropped = self._native.confirm()
        self.unauthorized = _NONE if dropped is None else dropped
        return dropped is None

    def commit(self) -> TimeStamp:
        """Make everything written so far durable and visible to readers; returns the
        committed end (last timestamp + 1)."""
        return TimeStamp(self._native.commit())

    def set_authority(self, authority: Any, value: Optional[int] = None) -> None:
        """Change this writer's control authority (0-255):
        ``set_authority(200)`` for every channel, ``set_authority("valve", 10)`` or
        ``set_authority({"valve": 10, "vent": 250})`` per channel. Raising it can take
        control from another writer; lowering it can hand control over."""
        if value is not None:
            self._native.set_authorities([(authority, value)])
        elif isinstance(authority, dict):
            self._native.set_authorities(list(authority.items()))
        else:
            self._native.set_authority(authority)

    def has_control(self, channel: "ChannelRef") -> bool:
        """True if this writer may write ``channel`` (and its index) now."""
        return self._native.has_control(channel)

    @property
    def channels(self) -> List[Any]:
        """The writer's channels (indexes included)."""
        return self._native.channels()

    @property
    def closed(self) -> bool:
        """True once closed."""
        return self._native.closed

    def close(self) -> Optional[TimeStamp]:
        """Commit and close; returns the committed end (None if already closed).
        Control passes to the next writer."""
        end = self._native.close()
        return None if end is None else TimeStamp(end)

    def abort(self) -> None:
        """Close without committing (uncommitted samples are discarded)."""
        self._native.abort()

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Writer(channels={[c.name for c in self.channels]}, closed={self.closed})"


class Iterator:
    """Walks a time range in chunks (``client.open_iterator``): ``for frame in it``.

    Use it for ranges larger than memory; each frame holds up to ``chunk_size`` samples of
    the first channel's index. ``seek_*``, :meth:`next` and :meth:`prev` give full
    control.
    """

    def __init__(self, native: Any, bounds: Any, progress: Any = None) -> None:
        self._native = native
        self.bounds = bounds
        self._progress = progress

    def seek_first(self) -> bool:
        """Move to the first sample; False if the range holds no data."""
        return self._native.seek_first()

    def seek_last(self) -> bool:
        """Move past the last sample; False if the range holds no data."""
        return self._native.seek_last()

    def seek_ge(self, t: Any) -> bool:
        """Move to the first sample at or after ``t``."""
        return self._native.seek_ge(int(TimeStamp(t)))

    def seek_le(self, t: Any) -> bool:
        """Move just past the last sample at or before ``t``."""
        return self._native.seek_le(int(TimeStamp(t)))

    def next(self, samples: Optional[int] = None, span: Any = None) -> Optional[Frame]:
        """Read forward by ``samples`` samples, a ``span`` of time, or the chunk size;
        None at the end."""
        if self._native.next(samples, None if span is None else span_ns(span)):
            return Frame(self._native.value())
        return None

    def prev(self, samples: Optional[int] = None, span: Any = None) -> Optional[Frame]:
        """Read backward; None at the start."""
        if self._native.prev(samples, None if span is None else span_ns(span)):
            return Frame(self._native.value())
        return None

    def __iter__(self) -> TypingIterator[Frame]:
        self.seek_first()
        bar = self._progress
        done = 0
        try:
            while True:
                f = self.next()
                if f is None:
                    break
                if bar is not None:
                    tr = f.time_range()
                    if tr is not None:
                        pos = int(tr.end) - int(self.bounds.start)
                        bar.update(max(0, pos - done) / 1e9)
                        done = max(done, pos)
                yield f
        finally:
            if bar is not None:
                bar.close()

    def close(self) -> None:
        """Release the iterator."""
        self._native.close()

    def __enter__(self) -> "Iterator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
