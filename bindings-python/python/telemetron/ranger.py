"""Ranges: named time ranges with persisted metadata ("hotfire 12", "run 2026-11-03").

>>> rng = client.ranges.create(name="hotfire 12", time_range=(start, end), meta_data={"operator": "ada"})
>>> rng["pressure"]                 # that channel over the range, as a numpy array
>>> rng.meta_data["result"] = "nominal"   # stored in the engine at once
>>> rng.to_pandas(["pressure", "temperature"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterator, List, MutableMapping, Optional, Sequence, Union

from .errors import InvalidArgument, RangeNotFound
from .export import ExportReport, ProgressLike
from .frame import Frame
from .telem import TimeRange, TimeRangeLike, to_range

if TYPE_CHECKING:
    from .client import Client


class MetaData(MutableMapping[str, str]):
    """A range's metadata: a ``str -> str`` dict persisted in the engine. Every read asks
    the engine (other clients' changes are seen); every assignment is stored at once.
    Non-string values are stored as ``str(value)``."""

    def __init__(self, client: "Client", key: str) -> None:
        self._client = client
        self._key = key

    def _all(self) -> Dict[str, str]:
        return self._client._native.range_meta(self._key)

    def __getitem__(self, k: str) -> str:
        return self._all()[k]

    def __setitem__(self, k: str, v: Any) -> None:
        self._client._native.set_range_meta(self._key, {str(k): str(v)})

    def __delitem__(self, k: str) -> None:
        if k not in self._all():
            raise KeyError(k)
        self._client._native.delete_range_meta(self._key, [k])

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Set several entries in one transaction."""
        entries = dict(*args, **kwargs)
        self._client._native.set_range_meta(self._key, {str(k): str(v) for k, v in entries.items()})

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())

    def __repr__(self) -> str:
        return f"MetaData({self._all()!r})"


class Range:
    """A named time range. ``rng["pressure"]`` reads that channel over the range.

    Ranges nest: ``rng.create_child(name="ignition", time_range=...)`` marks a part of a
    run, ``rng.children()`` lists them, and ``rng.parent`` is the key of the range above
    (``None`` at the top). Deleting a range deletes its children.
    """

    def __init__(self, client: "Client", d: Dict[str, Any]) -> None:
        self._client = client
        self.key: str = d["key"]
        self.name: str = d["name"]
        self.time_range = TimeRange(d["start"], d["end"])
        self.labels: List[str] = list(d["labels"])
        self.color: Optional[str] = d["color"]
        self.parent: Optional[str] = d.get("parent")

    @property
    def meta_data(self) -> MetaData:
        """The persisted metadata (dict-like)."""
        return MetaData(self._client, self.key)

    def read(self, channels: Any, *, points: Optional[int] = None, reduce: str = "minmax") -> Frame:
        """Read channels over the range (indexes included); with ``points``, reduced to
        at most that many points per channel (see :meth:`Client.read`)."""
        return self._client.read(self.time_range, channels, points=points, reduce=reduce)

    def __getitem__(self, channel: Any) -> Any:
        """One channel over the range, as a numpy array (list for variable types)."""
        return self.read(channel)[channel]

    def to_pandas(self, channels: Any) -> Any:
        """Channels over the range as a pandas DataFrame with a UTC DatetimeIndex."""
        if isinstance(channels, (str, int)):
            channels = [channels]
        return self.read(channels).to_pandas()

    def to_parquet(self, path: Any, channels: Any, *, memory_budget: int = 64 << 20, progress: ProgressLike = None) -> ExportReport:
        """Write channels over the range to a Parquet file in bounded memory (see
        :meth:`Client.export`)."""
        return self._client.export(path, channels, self.time_range, format="parquet", memory_budget=memory_budget, progress=progress)

    def to_csv(self, path: Any, channels: Any, *, memory_budget: int = 64 << 20, progress: ProgressLike = None) -> ExportReport:
        """Write channels over the range to a CSV file (header row; RFC 3339 UTC times) in
        bounded memory (see :meth:`Client.export`)."""
        return self._client.export(path, channels, self.time_range, format="csv", memory_budget=memory_budget, progress=progress)

    def rename(self, name: str) -> None:
        """Rename the range."""
        d = self._client._native.rename_range(self.key, name)
        self.name = d["name"]

    def set_labels(self, labels: Sequence[str]) -> None:
        """Replace the range's labels.

        Raises:
            InvalidRange: an empty label.
        """
        d = self._client._native.set_range_labels(self.key, [str(label) for label in labels])
        self.labels = list(d["labels"])

    def children(self) -> List["Range"]:
        """The ranges directly below this one, by start time."""
        return [Range(self._client, d) for d in self._client._native.range_children(self.key)]

    def create_child(
        self,
        *,
        name: str,
        time_range: TimeRangeLike = None,
        labels: Sequence[str] = (),
        color: Optional[str] = None,
        meta_data: Optional[Dict[str, Any]] = None,
    ) -> "Range":
        """Create a range below this one (by default over the same time range)."""
        tr = self.time_range if time_range is None else time_range
        return self._client.ranges.create(name=name, time_range=tr, labels=labels, color=color, meta_data=meta_data, parent=self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Range) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __repr__(self) -> str:
        return f"Range(name={self.name!r}, time_range={self.time_range}, key={self.key!r})"


class Ranges:
    """``client.ranges``: create, retrieve, search and delete ranges."""

    def __init__(self, client: "Client") -> None:
        self._client = client

    def create(
        self,
        *,
        name: str,
        time_range: TimeRangeLike,
        labels: Sequence[str] = (),
        color: Optional[str] = None,
        meta_data: Optional[Dict[str, Any]] = None,
        retrieve_if_name_exists: bool = False,
        parent: Union[str, Range, None] = None,
    ) -> Range:
        """Create a range (with its metadata, in one transaction).

        With ``retrieve_if_name_exists=True`` an existing range of that name is returned
        instead (its metadata is updated with ``meta_data``). ``parent`` (a Range or key)
        makes it a child of that range.

        Raises:
            InvalidRange: empty name or label, end before start, or a parent that does not exist.
        """
        if retrieve_if_name_exists:
            found = self._by_name(name)
            if found:
                if meta_data:
                    found[0].meta_data.update(meta_data)
                return found[0]
        tr = to_range(time_range)
        meta = {str(k): str(v) for k, v in (meta_data or {}).items()}
        d = self._client._native.create_range(name, int(tr.start), int(tr.end), list(labels), color, meta, _key(parent))
        return Range(self._client, d)

    def _by_name(self, name: str) -> List[Range]:
        return [Range(self._client, d) for d in self._client._native.search_ranges(name) if d["name"] == name]

    def retrieve(self, key: Optional[str] = None, *, name: Optional[str] = None) -> Range:
        """A range by key, or by exact name (the earliest if several share it).

        Raises:
            RangeNotFound.
        """
        if key is not None:
            return Range(self._client, self._client._native.range(str(key)))
        if name is None:
            raise InvalidArgument("pass a range key or name=", code="invalid_argument")
        found = self._by_name(name)
        if not found:
            raise RangeNotFound(f"no range is named {name!r}; search ranges to find it", code="range.not_found")
        return found[0]

    def search(
        self,
        term: str = "",
        overlapping: TimeRangeLike = None,
        *,
        labels: Sequence[str] = (),
        meta_data: Optional[Dict[str, Any]] = None,
        parent: Union[str, Range, None] = None,
    ) -> List[Range]:
        """Ranges matching every filter given, by start time: ``term`` found in the name, a
        label or a metadata value (case-insensitive); overlapping a time range; carrying all
        of ``labels``; whose metadata has each ``meta_data`` entry exactly; directly below
        ``parent``."""
        ov = None if overlapping is None else (int(to_range(overlapping).start), int(to_range(overlapping).end))
        meta = None if not meta_data else {str(k): str(v) for k, v in meta_data.items()}
        found = self._client._native.search_ranges(term, ov, [str(label) for label in labels] or None, meta, _key(parent))
        return [Range(self._client, d) for d in found]

    def delete(self, ranges: Union[str, Range, Sequence[Union[str, Range]]]) -> None:
        """Delete ranges by key or Range, with their children and the metadata of all of them."""
        items = [ranges] if isinstance(ranges, (str, Range)) else list(ranges)
        self._client._native.delete_ranges([r.key if isinstance(r, Range) else str(r) for r in items])


def _key(r: Union[str, Range, None]) -> Optional[str]:
    """A range key from a Range or key (None stays None)."""
    return r.key if isinstance(r, Range) else None if r is None else str(r)
