"""Streamers: live frames as they are written.

``with client.open_streamer(["pressure"]) as s: for frame in s: ...`` blocks for each frame
(with the GIL released, waking every 50 ms so Ctrl-C works); ``async for frame in s`` does
the same in asyncio. With ``timeout=``, iteration stops after that long without a frame.

## Lagging
A streamer that falls behind loses the oldest frames (the writer never waits for it). The
next read reports how many were lost, then continues with the newest frames. That notice
is a :class:`LagWarning` by default (``on_lag="warn"``), a :class:`StreamLagged`
exception with ``on_lag="raise"``, or ignored with ``on_lag="ignore"``. With
``lag_policy="disconnect"`` the engine closes a lagging streamer instead
(:class:`StreamDisconnected`).
"""

from __future__ import annotations

import warnings
from typing import Any, AsyncIterator, Iterator, List, Optional

from .errors import InvalidArgument, LagWarning, StreamClosed, StreamLagged
from .frame import Frame

_POLICIES = ("warn", "raise", "ignore")


class Streamer:
    """A live subscription (``client.open_streamer``)."""

    def __init__(self, native: Any, timeout: Optional[float], on_lag: str) -> None:
        if on_lag not in _POLICIES:
            raise InvalidArgument(f"on_lag must be one of {_POLICIES}, not {on_lag!r}", code="invalid_argument")
        self._native = native
        self.timeout = timeout
        self.on_lag = on_lag

    def _lagged(self, e: StreamLagged) -> None:
        if self.on_lag == "raise":
            raise e
        if self.on_lag == "warn":
            warnings.warn(f"streamer lost {e.dropped} frames: {e.message}", LagWarning, stacklevel=3)

    def read(self, timeout: Optional[float] = None) -> Optional[Frame]:
        """The next frame, or None after ``timeout`` seconds (None: wait forever).

        Raises:
            StreamLagged: frames were lost and ``on_lag="raise"``.
            StreamDisconnected, StreamClosed.
        """
        while True:
            try:
                n = self._native.read(timeout)
            except StreamLagged as e:
                self._lagged(e)
                continue
            return None if n is None else Frame(n)

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        try:
            f = self.read(self.timeout)
        except StreamClosed:
            raise StopIteration from None
        if f is None:
            raise StopIteration
        return f

    def __aiter__(self) -> AsyncIterator[Frame]:
        return self

    async def __anext__(self) -> Frame:
        import asyncio

        while True:
            try:
                fut = self._native.next_async()
                n = await (fut if self.timeout is None else asyncio.wait_for(fut, self.timeout))
            except StreamLagged as e:
                self._lagged(e)
                continue
            except (StreamClosed, asyncio.TimeoutError):
                raise StopAsyncIteration from None
            return Frame(n)

    def update_channels(self, channels: Any) -> None:
        """Receive these channels from now on (names, keys or Channels)."""
        self._native.update_channels(channels)

    @property
    def keys(self) -> List[int]:
        """Keys of the channels received."""
        return self._native.keys()

    def close(self) -> None:
        """Stop receiving (idempotent); pending reads return."""
        self._native.close()

    def __enter__(self) -> "Streamer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> "Streamer":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()
