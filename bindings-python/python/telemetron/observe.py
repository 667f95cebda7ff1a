"""Instrumentation: the levels and metrics of the engine or node (``docs/observability.md``).

``client.observe`` reads and changes the log, metrics and trace levels (``"off"``, ``"basic"``,
``"detailed"``) while the node runs, and reads every metric now, by its self-telemetry
channel name:

>>> client.observe.levels()
Levels(logs='basic', metrics='basic', traces='off')
>>> client.observe.set_levels(metrics="detailed")
>>> client.observe.metrics()["_telemetron/storage/commits"]
42.0
>>> client.observe.summary("10m")["_telemetron/storage/sync.duration"].p99
0.00041

On a remote client these are the node's (and a node started with ``--self-telemetry``
also writes them into its ``_telemetron/...`` channels, which read like any others). On an
embedded client they measure the engine in this process. The work is done by the Rust
core (``telemetron::observe::Observe``); this module only names its replies.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Dict, Optional, Union

import numpy as np

from .telem import TimeSpan, TimeStamp, span_ns, to_ns

if TYPE_CHECKING:
    from .client import Client

#: A summary window: a duration text (``"30s"``, ``"5m"``, ``"1h"``), seconds as a number,
#: or a ``timedelta`` / :class:`~telemetron.TimeSpan` / ``numpy.timedelta64``.
WindowLike = Union[str, int, float, _dt.timedelta, TimeSpan, np.timedelta64]


@dataclass(frozen=True)
class Levels:
    """Instrumentation levels, each ``"off"``, ``"basic"`` or ``"detailed"``.

    Attributes:
        logs: what the node logs (basic: warnings and lifecycle events; detailed: also
            each writer, streamer and request).
        metrics: what the node measures (basic: per layer, flow node and route;
            detailed: also per streamer). ``"off"`` measures nothing.
        traces: what the node traces (off by default; basic: each request, engine write
            and storage commit or read, joined to the caller's trace; detailed: every
            span). Spans leave through ``telemetron serve --otlp-endpoint``.
    """

    logs: str
    metrics: str
    traces: str = "off"


@dataclass(frozen=True)
class SeriesSummary:
    """One self-telemetry series over a window. Which statistics are set depends on ``kind``:

    - ``"counter"``: ``increase`` (a drop, from a restart, counts as a reset to 0) and
      ``rate`` (per second);
    - ``"gauge"``: ``min``, ``mean``, ``max``;
    - ``"histogram"``: ``increase`` and ``rate`` (observations), ``mean`` (the mean
      observation) and ``p50``, ``p90``, ``p99`` (estimated from the stored buckets, exact to
      a bucket's width);
    - ``"unknown"`` (no instrument names it now): all of them but the quantiles.

    The rest are ``None``. ``rate`` needs two samples in the window.
    """

    name: str
    kind: str
    unit: str
    points: int
    first_time: TimeStamp
    last_time: TimeStamp
    last: float
    min: Optional[float] = None
    mean: Optional[float] = None
    max: Optional[float] = None
    increase: Optional[float] = None
    rate: Optional[float] = None
    p50: Optional[float] = None
    p90: Optional[float] = None
    p99: Optional[float] = None


@dataclass(frozen=True)
class Summary:
    """The node's self-telemetry history over ``[start, end]``, one entry per series with
    samples in it, by name (a histogram under its base name,
    ``_telemetron/storage/sync.duration``)."""

    start: TimeStamp
    end: TimeStamp
    series: Dict[str, SeriesSummary]

    def __getitem__(self, name: str) -> SeriesSummary:
        try:
            return self.series[name]
        except KeyError:
            raise KeyError(f"no series {name!r} has samples in this window; there are {sorted(self.series)}") from None

    def __contains__(self, name: object) -> bool:
        return name in self.series

    def __len__(self) -> int:
        return len(self.series)

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame``, one row per series (indexed by name), one column per
        statistic. Requires pandas."""
        import pandas as pd

        cols = [f.name for f in fields(SeriesSummary) if f.name != "name"]
        rows = [[getattr(s, c) for c in cols] for s in self.series.values()]
        return pd.DataFrame(rows, index=pd.Index(list(self.series), name="name"), columns=cols)

    @staticmethod
    def _from(raw: Dict[str, Any]) -> "Summary":
        known = {f.name for f in fields(SeriesSummary)}
        series = {}
        for r in raw["series"]:
            # Fields a newer node adds are left out, not an error.
            r = {k: v for k, v in r.items() if k in known}
            r.update(first_time=TimeStamp(r["first_time"]), last_time=TimeStamp(r["last_time"]))
            series[r["name"]] = SeriesSummary(**r)
        return Summary(start=TimeStamp(raw["start"]), end=TimeStamp(raw["end"]), series=series)


def _window(window: Optional[WindowLike]) -> Optional[str]:
    """The window as the duration text the core parses (numbers are seconds)."""
    if window is None or isinstance(window, str):
        return window
    if isinstance(window, (TimeSpan, _dt.timedelta, np.timedelta64)):
        return repr(span_ns(window) / 1e9)
    if isinstance(window, (int, float, np.integer, np.floating)) and not isinstance(window, (bool, np.bool_)):
        return repr(float(window))
    raise TypeError(f"a window is a duration such as '5m', a number of seconds or a timedelta, not {type(window).__name__}")


class Observe:
    """``client.observe``: levels and metrics (see the module docs)."""

    def __init__(self, client: "Client") -> None:
        self._native = client._native

    def levels(self) -> Levels:
        """The levels in force."""
        return Levels(*self._native.observe_levels())

    def set_levels(self, *, logs: Optional[str] = None, metrics: Optional[str] = None, traces: Optional[str] = None) -> Levels:
        """Change the log, metrics and/or trace level at runtime; returns the levels now in
        force. A name other than ``off``, ``basic`` or ``detailed`` raises
        :class:`~telemetron.errors.InvalidArgument` and changes nothing."""
        return Levels(*self._native.observe_set_levels(logs, metrics, traces))

    def metrics(self) -> Dict[str, float]:
        """Every scalar metric now, by self-telemetry channel name
        (``_telemetron/storage/commits``, ``_telemetron/relay/streamers``, ...); histograms
        give ``<name>/count`` and ``<name>/sum``. Empty at metrics level ``off``."""
        return dict(self._native.observe_metrics())

    def summary(self, window: Optional[WindowLike] = None, *, end: Any = None, filter: Optional[str] = None) -> Summary:
        """The node's self-telemetry history over ``window`` (default 5 minutes) ending at
        ``end`` (any timestamp; default the last sample), summarized where it is stored: the
        node sends only the summary. ``filter`` keeps the series whose name contains it.

        >>> s = client.observe.summary("10m")
        >>> s["_telemetron/storage/samples"].rate          # samples stored per second
        >>> s["_telemetron/storage/sync.duration"].p99     # fdatasync p99, seconds
        >>> s.to_pandas()

        Needs a node started with ``--self-telemetry`` (else
        :class:`~telemetron.errors.InvalidArgument` says so). On an embedded client it
        summarizes the ``_telemetron/`` channels of the opened directory, such as a copy of
        a finished run's node.
        """
        raw = self._native.observe_summary(_window(window), None if end is None else to_ns(end), filter)
        return Summary._from(json.loads(raw))

    def __repr__(self) -> str:
        return f"Observe({self.levels()!r})"
