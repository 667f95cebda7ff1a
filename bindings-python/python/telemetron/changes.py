"""Change capture: channels and ranges created, renamed, relabelled or deleted, as they are
committed (the engine publishes each on its ``telemetron_changes`` system channel).

>>> with client.watch_changes() as changes:
...     names = {c.key: c.name for c in client.channels.list()}   # list after subscribing
...     for change in changes:
...         if change.op == "channel.create":
...             names.update((c.key, c.name) for c in change.channels)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

from ._native import Channel
from .ranger import Range

if TYPE_CHECKING:
    from . import _native
    from .client import Client


@dataclass(frozen=True)
class Change:
    """One change. ``op`` is ``"channel.create"``, ``"channel.rename"``,
    ``"channel.update"`` (its compression changed), ``"channel.delete"``, ``"range.create"``, ``"range.update"`` (renamed or relabelled),
    ``"range.delete"`` (descendants included) or ``"range.meta"``; the fields of its kind
    are set:

    - ``channels``: the channels created, or the one renamed or updated, as it is now;
    - ``ranges``: the range created or updated, as it is now;
    - ``keys``: the channel keys (int) or range keys (str) deleted;
    - ``key``, ``set``, ``deleted``: the range whose metadata changed, the entries set
      with their values, and the names removed.
    """

    op: str
    channels: List[Channel] = field(default_factory=list)
    ranges: List[Range] = field(default_factory=list)
    keys: List[Union[int, str]] = field(default_factory=list)
    key: Optional[str] = None
    set: Dict[str, str] = field(default_factory=dict)
    deleted: List[str] = field(default_factory=list)


class ChangeWatcher:
    """Changes from the moment the watcher opened, each once and in commit order. Iterate
    it (blocks until the next change), or call :meth:`read` with a timeout. Close it, or
    use it as a context manager."""

    def __init__(self, client: "Client", native: "_native.ChangeWatcher") -> None:
        self._client = client
        self._native = native

    def read(self, timeout: Optional[float] = None) -> Optional[Change]:
        """The next change, or None after ``timeout`` seconds (None: wait forever).

        Raises:
            StreamLagged: changes were missed (list again); StreamClosed after close.
        """
        d = self._native.next(timeout)
        if d is None:
            return None
        ranges = [Range(self._client, r) for r in d.pop("ranges", [])]
        return Change(ranges=ranges, **d)

    def __iter__(self) -> "ChangeWatcher":
        return self

    def __next__(self) -> Change:
        change = self.read()
        assert change is not None  # no timeout: read waits for a change
        return change

    def close(self) -> None:
        """Stop watching."""
        self._native.close()

    def __enter__(self) -> "ChangeWatcher":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
