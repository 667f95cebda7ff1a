"""Flows: dataflow pipelines (receivers, processors, exporters) on the engine or node.

``client.flows`` deploys, lists, reconfigures and stops flows written in the YAML of
``docs/dataflow.md``. On a remote client these are the node's flows (its ``--flow`` files
and those any client deployed); on an embedded client they run in this process, on the
client's engine, until stopped or until the client is closed.

>>> info = client.flows.deploy(pathlib.Path("examples/flows/best-effort.yaml"))
>>> client.flows.get(info.name).node("out").received
>>> r = client.flows.reconfigure(info.name, new_yaml)   # live when only options changed
>>> r.applied                                            # "live", "restarted" or "unchanged"
>>> client.flows.stop(info.name).drained

The work is done by the Rust core (``telemetron::flow::Flows``); this module only turns
its replies into dataclasses.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Union

from .telem import TimeStamp

if TYPE_CHECKING:
    from .client import Client

_COUNTERS = ("received", "rows", "emitted", "acked", "nacked", "expired", "cancelled", "dropped", "errors", "queued")


@dataclass(frozen=True)
class FlowNode:
    """One running node of a flow and its counters.

    Attributes:
        name: the node's name in the flow file.
        type: its component type (``"generator"``, ``"filter"``, ...).
        reconfigurable: whether it takes new options while running (CFG).
        received: messages given to it; ``rows``: their rows.
        emitted: messages it emitted (an exporter: exported).
        acked, nacked: ACKs/NACKs it received for messages it subscribed to (a receiver:
            its messages acknowledged or refused downstream).
        expired: messages NACKed in front of it because their deadline had passed.
        cancelled: messages dropped in front of it because they were cancelled.
        dropped: messages NACKed in front of it because its input queue was full
            (``overflow: nack``).
        errors: errors it returned.
        queued: messages waiting in its input queue now (a fused chain's queue counts for
            its first node; receivers have none).
    """

    name: str
    type: str
    reconfigurable: bool
    received: int
    rows: int
    emitted: int
    acked: int
    nacked: int
    expired: int
    cancelled: int
    dropped: int
    errors: int
    queued: int = 0


@dataclass(frozen=True)
class FlowNodeError:
    """An error a component returned."""

    node: str
    error: str


@dataclass(frozen=True)
class FlowInfo:
    """A flow: its state, configuration and counters.

    Attributes:
        name: the ``flow:`` name.
        state: ``"running"``, ``"finished"`` (its bounded sources ran out) or, in the reply
            of :meth:`Flows.stop`, ``"stopped"``.
        started: when it was deployed or last restarted.
        config: the flow file as deployed.
        nodes: the nodes that run (dead-path elimination removed the others).
        errors: the most recent component errors (at most 20), oldest first.
        drained: in the reply of :meth:`Flows.stop`: whether everything drained in time
            (``False``: what was still held was NACKed, so waiting sources keep it).
    """

    name: str
    state: str
    started: TimeStamp
    config: str
    nodes: List[FlowNode] = field(default_factory=list)
    errors: List[FlowNodeError] = field(default_factory=list)
    drained: Optional[bool] = None

    def node(self, name: str) -> FlowNode:
        """The node ``name``; ``KeyError`` if the flow has none."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(f"flow {self.name!r} has no running node {name!r}; it has {[n.name for n in self.nodes]}")

    @staticmethod
    def _from(raw: Dict[str, Any]) -> "FlowInfo":
        return FlowInfo(
            name=raw["name"],
            state=raw["state"],
            started=TimeStamp(raw["started"]),
            config=raw["config"],
            nodes=[
                FlowNode(name=n["name"], type=n["type"], reconfigurable=n["reconfigurable"], **{k: n[k] for k in _COUNTERS})
                for n in raw["nodes"]
            ],
            errors=[FlowNodeError(**e) for e in raw["errors"]],
            drained=raw.get("drained"),
        )


@dataclass(frozen=True)
class Reconfigured:
    """How :meth:`Flows.reconfigure` applied a new file.

    Attributes:
        applied: ``"live"`` (the changed options went to the running nodes; nothing
            stopped), ``"restarted"`` (the graph changed or a changed node does not take
            CFG: the old flow drained and the new one started) or ``"unchanged"``.
        nodes: the nodes whose options changed.
        reason: why it restarted.
        flow: the flow afterwards.
    """

    applied: str
    nodes: List[str]
    reason: Optional[str]
    flow: FlowInfo


ConfigLike = Union[str, "os.PathLike[str]"]


def _text(config: ConfigLike) -> str:
    """A flow file's text: a path (``pathlib.Path``) is read; a ``str`` is the YAML itself."""
    if isinstance(config, os.PathLike):
        with open(config, encoding="utf-8") as f:
            return f.read()
    if not isinstance(config, str):
        raise TypeError(f"a flow is YAML text (str) or a path (pathlib.Path), not {type(config).__name__}")
    return config


class Flows:
    """``client.flows``: deploy, list, reconfigure and stop flows (see the module docs)."""

    def __init__(self, client: "Client") -> None:
        self._native = client._native

    def list(self) -> List[FlowInfo]:
        """Every flow, by name, with its counters."""
        return [FlowInfo._from(f) for f in json.loads(self._native.flows_list())]

    def get(self, name: str) -> FlowInfo:
        """Flow ``name`` with its counters; :class:`~telemetron.errors.FlowNotFound` if none."""
        return FlowInfo._from(json.loads(self._native.flows_get(name)))

    def __getitem__(self, name: str) -> FlowInfo:
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return any(f.name == name for f in self.list())

    def deploy(self, config: ConfigLike) -> FlowInfo:
        """Compile and start a flow file (YAML text, or a ``pathlib.Path`` to read) under
        its ``flow:`` name. A wrong file raises :class:`~telemetron.errors.FlowConfigError`
        naming the node and line; a name in use, :class:`~telemetron.errors.FlowNameTaken`."""
        return FlowInfo._from(json.loads(self._native.flows_deploy(_text(config))))

    def reconfigure(self, name: str, config: ConfigLike, *, drain: Optional[float] = None) -> Reconfigured:
        """Apply a new version of flow ``name``'s file: live (CFG to the changed nodes) when
        the graph is the same and they take it, else by draining the old flow (at most
        ``drain`` seconds; default 10) and starting the new one. A wrong file raises and leaves the
        running flow untouched."""
        raw = json.loads(self._native.flows_reconfigure(name, _text(config), drain))
        return Reconfigured(applied=raw["applied"], nodes=raw["nodes"], reason=raw.get("reason"), flow=FlowInfo._from(raw["flow"]))

    def stop(self, name: str, *, drain: Optional[float] = None) -> FlowInfo:
        """Stop flow ``name``: its receivers stop, what is in flight drains (at most
        ``drain`` seconds; default 10); returns the final counters."""
        return FlowInfo._from(json.loads(self._native.flows_stop(name, drain)))

    def __repr__(self) -> str:
        return f"Flows({[f.name for f in self.list()]!r})"
