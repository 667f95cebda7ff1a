"""The client: :func:`open` (embedded engine in this process) and :func:`connect`
(a ``telemetron serve`` node) return the same :class:`Client`.

Every call that may wait (disk, network, a live frame) releases the GIL.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Sequence, Union

from . import _native
from ._convert import to_mapping
from ._trace import traced
from .changes import ChangeWatcher
from .channel import Channels
from .control import Control, seconds
from .export import ExportReport, ProgressLike, run_export
from .flows import Flows
from .frame import Frame
from .framer import Iterator, Writer
from .observe import Observe
from .ranger import Ranges
from .relay import Streamer
from .telem import TimeRange, TimeRangeLike, TimeStamp, span_ns, to_range

_MODES = ("persist_stream", "persist", "stream")


class Client:
    """A Telemetron client. Use :func:`open` or :func:`connect` to get one; use it as a
    context manager to close it.

    Attributes:
        channels: :class:`Channels` (create, retrieve, rename, delete).
        ranges: :class:`Ranges` (named time ranges with metadata).
        control: :class:`Control` (control sequences).
        flows: :class:`~telemetron.flows.Flows` (deploy, reconfigure, stop dataflow
            pipelines; on an embedded client they run in this process until ``close``).
        observe: :class:`~telemetron.observe.Observe` (log and metrics levels at runtime,
            metrics now).
    """

    def __init__(self, native: Any) -> None:
        self._native = native
        self.channels = Channels(self)
        self.ranges = Ranges(self)
        self.control = Control(self)
        self.flows = Flows(self)
        self.observe = Observe(self)

    @property
    def is_remote(self) -> bool:
        """True when connected to a remote node."""
        return self._native.is_remote

    # -- one-shot read/write -------------------------------------------------------------
    @traced("write")
    def write(self, start: Any, data: Any, values: Any = None) -> TimeStamp:
        """Write one frame starting at ``start`` and commit it; returns the committed end.
        Fails (writing nothing) if another writer controls any channel.

        ``data`` is ``{channel: values}``, a pandas DataFrame, a :class:`Frame`, or
        ``channel``/``[channels]`` with ``values``. Include the index timestamps:

        >>> client.write(start, {"time": ts, "pressure": arr})
        """
        return TimeStamp(self._native.write(int(TimeStamp(start)), to_mapping(data, values)))

    @traced("read")
    def read(
        self,
        time_range: TimeRangeLike,
        channels: Any,
        *,
        include_index: bool = True,
        points: Optional[int] = None,
        reduce: str = "minmax",
    ) -> Frame:
        """Read channels over ``time_range`` (a :class:`TimeRange`, ``(start, end)``, a
        Range, or None for everything). The frame also holds each data channel's index
        (unless ``include_index=False``), so ``frame.to_pandas()`` has a time index.

        With ``points``, the range is reduced where the data is (on the node, for a remote
        client) to at most that many points per channel, and only those are sent: the
        time is cut into equal buckets, and ``reduce="minmax"`` keeps each bucket's lowest
        and highest sample in the order they occurred (every peak survives), while
        ``reduce="average"`` keeps each bucket's mean as float64.

        >>> frame = client.read((start, end), ["pressure"])
        >>> np.asarray(frame["pressure"])     # no copy
        >>> plot = client.read(None, ["pressure"], points=2000)   # a day in 2,000 points
        """
        tr = to_range(time_range)
        return Frame(self._native.read(int(tr.start), int(tr.end), channels, include_index, points, reduce if points is not None else None))

    @traced("read_latest")
    def read_latest(self, channels: Any, n: int = 1) -> Frame:
        """The last ``n`` samples of channels (indexes included), e.g. the current value of
        a slow sensor: ``client.read_latest("tank_tc")["tank_tc"][-1]``."""
        return Frame(self._native.read_latest(channels, max(1, int(n))))

    @traced("delete")
    def delete(self, time_range: TimeRangeLike, channels: Any) -> None:
        """Delete the samples of channels in ``time_range``."""
        tr = to_range(time_range)
        self._native.delete(int(tr.start), int(tr.end), channels)

    def export(
        self,
        path: Union[str, "os.PathLike[str]"],
        channels: Any,
        time_range: TimeRangeLike = None,
        *,
        format: Optional[str] = None,
        memory_budget: int = 64 << 20,
        progress: ProgressLike = None,
    ) -> ExportReport:
        """Write channels of one index over ``time_range`` to a Parquet or CSV file (the
        format from the extension, ``.parquet`` or ``.csv``, unless ``format`` says),
        streaming in chunks so that at most about ``memory_budget`` bytes are in flight.
        The index is the first column. ``progress=True`` prints a line on stderr; a callable
        gets an :class:`ExportProgress` after each chunk and cancels by raising.

        >>> client.export("run.parquet", ["pressure", "temp"], rng, progress=True)
        """
        tr = to_range(time_range)
        return run_export(self._native, os.fspath(path), int(tr.start), int(tr.end), channels, format, memory_budget, progress)

    def time_range(self, channel: Any) -> Optional[TimeRange]:
        """The time range stored for a channel, or None if it holds no data."""
        r = self._native.time_range(channel)
        return None if r is None else TimeRange(*r)

    # -- writers, streamers, iterators ---------------------------------------------------
    @traced("open_writer")
    def open_writer(
        self,
        start: Any,
        channels: Any,
        *,
        authority: Union[int, Sequence[int], Dict[Any, int]] = 255,
        mode: str = "persist_stream",
        name: str = "",
        err_on_unauthorized: bool = False,
        auto_commit: bool = True,
        auto_commit_interval: Any = None,
        end: Any = None,
        subject_key: Optional[str] = None,
        durability: Optional[str] = None,
    ) -> Writer:
        """Open a writer on ``channels`` (their index channels are added) from ``start``.

        Args:
            authority: control authority 0-255 for every channel, one per channel, or
                ``{channel: authority}`` (default 255, absolute).
            mode: ``"persist_stream"`` (store and stream, default), ``"persist"`` or
                ``"stream"`` (live only).
            name: shown in control state and logs.
            err_on_unauthorized: fail writes that include channels another writer
                controls (default: drop them and report, see ``Writer.unauthorized``).
            auto_commit: commit after writes (default True); with
                ``auto_commit_interval`` (seconds, TimeSpan, timedelta) at most that often.
            end: bound the writer's time region (back-fill writers never contend with
                live ones after it).
            subject_key: identifies this writer in control state (a random UUID by
                default).
            durability: ``"none"``, ``"interval"`` or ``"commit"`` (``fdatasync`` before
                each commit returns); None uses the engine's default.
        """
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, not {mode!r}")
        chans = [channels] if isinstance(channels, (str, int)) else list(channels)
        if isinstance(authority, dict):
            auths = [int(authority.get(c, 255)) for c in chans]
            missing = [c for c in authority if c not in chans]
            if missing:
                raise ValueError(f"authorities given for channels not in the writer: {missing}")
        elif isinstance(authority, int):
            auths = [authority]
        else:
            auths = [int(a) for a in authority]
        interval = None if auto_commit_interval is None else int(seconds(auto_commit_interval) * 1e9)
        native = self._native.open_writer(
            int(TimeStamp(start)),
            chans,
            auths,
            mode,
            name,
            err_on_unauthorized,
            auto_commit,
            interval,
            None if end is None else int(TimeStamp(end)),
            subject_key,
            durability,
        )
        return Writer(native)

    def watch_changes(self) -> ChangeWatcher:
        """Watch changes to channels and ranges (created, renamed, relabelled, metadata
        set, deleted) from now on, each once and in commit order. To keep a list current,
        open the watcher first, then list, then apply the changes it reports.

        >>> with client.watch_changes() as changes:
        ...     for change in changes:
        ...         print(change.op, [c.name for c in change.channels])
        """
        return ChangeWatcher(self, self._native.watch_changes())

    @traced("open_streamer")
    def open_streamer(
        self,
        channels: Any,
        *,
        timeout: Any = None,
        on_lag: str = "warn",
        capacity: int = 1024,
        lag_policy: str = "notify",
        decimate: int = 1,
        throttle: float = 0.0,
        spin_us: int = 0,
    ) -> Streamer:
        """Stream channels live.

        Args:
            timeout: iteration stops after this long without a frame (seconds, TimeSpan
                or timedelta; None: never).
            on_lag: ``"warn"`` (default), ``"raise"`` or ``"ignore"`` lag notices.
            capacity: queued frames before the oldest are dropped (default 1024).
            lag_policy: ``"notify"`` (default) or ``"disconnect"`` a lagging streamer.
            decimate: keep every n-th sample per channel.
            throttle: deliver at most this many frames per second (0: no limit).
            spin_us: busy-wait up to this many microseconds for a frame before the
                receiving thread sleeps (0: sleep at once). Saves a thread wake-up per
                frame (embedded: p99 ~38 -> ~5 us at 1 kHz) at the cost of one busy core;
                for a control loop with a core to spare. Applies to ``read`` and ``for``
                loops, not ``async for``. At most 1,000,000.
        """
        if not 0 <= int(spin_us) <= 1_000_000:
            raise ValueError(f"spin_us must be between 0 and 1000000 microseconds, not {spin_us!r}")
        native = self._native.open_streamer(channels, capacity, lag_policy, decimate, float(throttle), int(spin_us))
        return Streamer(native, None if timeout is None else seconds(timeout), on_lag)

    @traced("open_iterator")
    def open_iterator(
        self,
        time_range: TimeRangeLike,
        channels: Any,
        *,
        chunk_size: int = 100_000,
        progress: Any = False,
        include_index: bool = True,
        points: Optional[int] = None,
        reduce: str = "minmax",
    ) -> Iterator:
        """Iterate over a time range in chunks of ``chunk_size`` samples (for ranges larger
        than memory): ``for frame in client.open_iterator(tr, ["pressure"]): ...``.

        Args:
            progress: True for a tqdm progress bar (in seconds of data), or a tqdm
                instance/class to use. Requires tqdm.
            points: reduce each chunk to at most this many points per channel (see
                :meth:`read`), e.g. one point per second over a day.
            reduce: ``"minmax"`` (default) or ``"average"``.
        """
        tr = to_range(time_range)
        method = reduce if points is not None else None
        native = self._native.open_iterator(int(tr.start), int(tr.end), channels, int(chunk_size), include_index, points, method)
        bar = None
        if progress:
            bounds = tr
            chans = [channels] if isinstance(channels, (str, int)) else list(channels)
            stored = [r for r in (self.time_range(c) for c in chans[:1]) if r is not None]
            if stored:
                bounds = tr.intersect(stored[0])
            total = max(0, int(bounds.end) - int(bounds.start)) / 1e9
            if callable(progress) and not isinstance(progress, bool):
                bar = progress(total=total, unit="s")
            elif progress is True:
                from tqdm.auto import tqdm

                bar = tqdm(total=total, unit="s", unit_scale=True)
            else:
                bar = progress
            tr = bounds
        return Iterator(native, tr, bar)

    # -- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        """Close the client (an embedded engine releases its data directory)."""
        self._native.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(remote={self.is_remote})"


def open(path: Union[str, "os.PathLike[str]"], *, durability: Optional[str] = None) -> Client:
    """Open (or create) an embedded engine on the data directory ``path``.

    ``durability`` is the default for writers: ``"interval"`` (group commit: synced at
    least every second, the default), ``"commit"`` (``fdatasync`` before every commit
    returns) or ``"none"`` (never synced; for scratch data and benchmarks).

    >>> import telemetron as tn
    >>> client = tn.open("./data")

    Raises:
        AlreadyOpen: another engine has the directory open.
        NotADataDirectory: the directory holds other files.
    """
    return Client(_native.Client.open(os.fspath(path), durability))


def connect(
    url: str,
    *,
    token: Optional[str] = None,
    username: Optional[str] = None,
    password: Optional[str] = None,
    ca_cert: Optional[str] = None,
    timeout: Any = 10.0,
    compress: bool = False,
) -> Client:
    """Connect to a ``telemetron serve`` node (``"http://host:port"``, or ``"https://..."``
    for TLS; ``ca_cert`` names a PEM file for a private CA), authenticating with a ``token`` or ``username``/``password``.

    ``compress=True`` asks the node to compress what it sends back (reads, iterator steps,
    streamed frames) where that pays: for a link slower than loopback or a fast LAN.
    Arrays come back the same, decompressed by the client.

    Raises:
        ConnectFailed: the node cannot be reached (a :class:`NetError`).
        AuthRequired, InvalidCredentials: credentials missing or refused.
        VersionMismatch: the node speaks another protocol version.
    """
    connect_native = getattr(_native.Client, "connect", None)
    if connect_native is None:  # pragma: no cover - built without a remote backend
        raise NotImplementedError("this build of telemetron has no remote client")
    if token is not None and (username is not None or password is not None):
        raise ValueError("pass either token= or username=/password=, not both")
    return Client(connect_native(url, token, username, password, ca_cert, seconds(timeout), bool(compress)))


__all__ = ["Client", "connect", "open", "span_ns"]
