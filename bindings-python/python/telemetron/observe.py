"""Instrumentation: the levels and metrics of the engine or node (``docs/observability.md``).

``client.observe`` reads and changes the log, metrics and trace levels (``"off"``, ``"basic"``,
``"detailed"``) while the node runs, and reads every metric now, by its self-telemetry
channel name:

>>> client.observe.levels()
Levels(logs='basic', metrics='basic', traces='off')
>>> client.observe.set_levels(metrics="detailed")
>>> client.observe.metrics()["_telemetron/storage/commits"]
42.0

On a remote client these are the node's (and a node started with ``--self-telemetry``
also writes them into its ``_telemetron/...`` channels, which read like any others). On an
embedded client they measure the engine in this process. The work is done by the Rust
core (``telemetron::observe::Observe``); this module only names its replies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Optional

if TYPE_CHECKING:
    from .client import Client


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

    def __repr__(self) -> str:
        return f"Observe({self.levels()!r})"
