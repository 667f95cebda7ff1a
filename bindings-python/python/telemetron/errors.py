"""Exceptions raised by Telemetron.

Every error of the engine is a :class:`TelemetronError` with a stable :attr:`code`
(``"channel.not_found"``, ``"write.not_monotonic"``, ...), the same string the Rust core
(``Error::code``), the wire protocol and the Node SDK use. The classes mirror the core's
error enums: catch a family (``WriteError``) or one case (``NotMonotonic``). Messages say
what happened and what to do.

Every code of the core is listed in :mod:`telemetron._codes` (generated from
``telemetron::error::codes()``) and has its own class here; ``tests/python/test_errors.py``
fails when a code of the native module has none.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type

from ._codes import CODES


class TelemetronError(Exception):
    """Root of every Telemetron exception.

    Attributes:
        code: the stable error code, e.g. ``"channel.not_found"``.
        message: the engine's message (what happened and what to do).
    """

    code: str = "telemetron"

    def __init__(self, message: str = "", code: Optional[str] = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        for k, v in details.items():
            setattr(self, k, v)


# --- channels -----------------------------------------------------------------------------
class ChannelError(TelemetronError):
    """A channel definition or lookup failed (``channel.*``)."""

    code = "channel"


class ChannelNotFound(ChannelError, LookupError):
    """No channel has this key or name (``channel.not_found``)."""

    code = "channel.not_found"


class ChannelNameTaken(ChannelError):
    """Another channel already has this name (``channel.name_taken``)."""

    code = "channel.name_taken"


class InvalidChannel(ChannelError, ValueError):
    """The name or definition is not acceptable (``channel.invalid``)."""

    code = "channel.invalid"


class InvalidIndex(ChannelError, ValueError):
    """An index channel is not a timestamp channel, or a data channel names a non-index
    as its index (``channel.invalid_index``)."""

    code = "channel.invalid_index"


class IndexInUse(ChannelError):
    """An index channel still has data channels bound to it (``channel.index_in_use``)."""

    code = "channel.index_in_use"


class ChannelBusy(ChannelError):
    """An open writer holds the channel (``channel.busy``)."""

    code = "channel.busy"


class ChannelElsewhere(ChannelError):
    """The channel is stored on another node of the cluster; read or write it through a
    node, which forwards to the channel's node (``channel.elsewhere``)."""

    code = "channel.elsewhere"


# --- ranges -------------------------------------------------------------------------------
class RangerError(TelemetronError):
    """A range operation failed (``range.*``); the core's ``ranger::RangerError``."""

    code = "range"


class RangeNotFound(RangerError, LookupError):
    """No range has this key or name (``range.not_found``)."""

    code = "range.not_found"


class InvalidRange(RangerError, ValueError):
    """Bad range name or time range (``range.invalid``)."""

    code = "range.invalid"


class RangeElsewhere(RangerError):
    """The range is stored on another node of the cluster; change it through a node, which
    forwards to the range's node (``range.elsewhere``)."""

    code = "range.elsewhere"


# --- storage ------------------------------------------------------------------------------
class StorageError(TelemetronError):
    """The storage engine failed (``storage.*``)."""

    code = "storage"


class StorageIOError(StorageError, OSError):
    """An operating-system I/O error (``storage.io``)."""

    code = "storage.io"


class CorruptData(StorageError):
    """Stored bytes failed verification (``storage.corrupt``)."""

    code = "storage.corrupt"


class SegmentFailed(StorageError):
    """A segment failed and was retired; open a new writer (``storage.segment_failed``)."""

    code = "storage.segment_failed"


# --- writes -------------------------------------------------------------------------------
class WriteError(TelemetronError):
    """A write or writer open was rejected; nothing of it was written (``write.*``)."""

    code = "write"


class NotInWriter(WriteError):
    """The frame names a channel the writer was not opened on (``write.not_in_writer``)."""

    code = "write.not_in_writer"


class WriteTypeMismatch(WriteError, TypeError):
    """Values of the wrong type for the channel (``write.type_mismatch``)."""

    code = "write.type_mismatch"


class LengthMismatch(WriteError, ValueError):
    """Data and index series of one write differ in length (``write.length_mismatch``)."""

    code = "write.length_mismatch"


class IndexMissing(WriteError):
    """Data channels were written without their index timestamps (``write.index_missing``)."""

    code = "write.index_missing"


class NotMonotonic(WriteError):
    """Index timestamps do not strictly increase (``write.not_monotonic``)."""

    code = "write.not_monotonic"


class BeforeStart(WriteError):
    """A timestamp precedes the writer's start (``write.before_start``)."""

    code = "write.before_start"


class Overlap(WriteError):
    """A write reaches into data already stored (``write.overlap``)."""

    code = "write.overlap"


class OverlapsCommitted(WriteError):
    """The writer starts inside stored data (``write.overlaps_committed``)."""

    code = "write.overlaps_committed"


class WriteChannelBusy(WriteError):
    """An open writer holds the channel (``write.channel_busy``)."""

    code = "write.channel_busy"


class TooLarge(WriteError):
    """A single write is too large; split it (``write.too_large``)."""

    code = "write.too_large"


class InvalidWriterConfig(WriteError, ValueError):
    """The writer's configuration is invalid (``write.invalid_config``)."""

    code = "write.invalid_config"


# --- control ------------------------------------------------------------------------------
class ControlError(TelemetronError):
    """A control request was refused (``control.*``)."""

    code = "control"


class Unauthorized(ControlError):
    """Another writer holds control of some channels (``control.unauthorized``)."""

    code = "control.unauthorized"


class UnknownControlChannel(ControlError):
    """An authority change names a channel the writer does not have
    (``control.unknown_channel``)."""

    code = "control.unknown_channel"


class ControlLost(ControlError):
    """A control sequence lost control of channels to a higher authority
    (``control.lost``, raised by :class:`telemetron.Controller` when ``on_lost="raise"``).

    Attributes:
        channels: names of the channels lost.
    """

    code = "control.lost"


# --- streaming ----------------------------------------------------------------------------
class StreamError(TelemetronError):
    """A streamer fell behind or was closed (``stream.*``)."""

    code = "stream"


class StreamLagged(StreamError):
    """The streamer fell behind and lost ``dropped`` frames (``stream.lagged``); later
    reads continue with the newest frames."""

    code = "stream.lagged"
    dropped: int = 0


class StreamDisconnected(StreamError):
    """The streamer fell behind and was disconnected (``stream.disconnected``)."""

    code = "stream.disconnected"
    dropped: int = 0


class StreamClosed(StreamError):
    """The streamer or the engine was closed (``stream.closed``)."""

    code = "stream.closed"


class LagWarning(UserWarning):
    """Warning issued when a streamer lost frames (the default ``on_lag="warn"``)."""


# --- series, engine, arguments ------------------------------------------------------------
class SeriesError(TelemetronError, ValueError):
    """A series was malformed (``series.invalid``)."""

    code = "series.invalid"


class EngineError(TelemetronError):
    """The engine could not open or is closed (``engine.*``)."""

    code = "engine"


class AlreadyOpen(EngineError):
    """Another engine has the data directory open (``engine.already_open``)."""

    code = "engine.already_open"


class NotADataDirectory(EngineError):
    """The directory is not a Telemetron data directory (``engine.not_a_data_directory``)."""

    code = "engine.not_a_data_directory"


class UnsupportedFormat(EngineError):
    """Data written by an incompatible version (``engine.unsupported_format``)."""

    code = "engine.unsupported_format"


class MetadataError(EngineError):
    """The metadata catalog failed (``engine.metadata``)."""

    code = "engine.metadata"


class Closed(EngineError):
    """The engine, writer, streamer or iterator is closed (``engine.closed``)."""

    code = "engine.closed"


class InvalidArgument(TelemetronError, ValueError):
    """An argument is out of its allowed range (``invalid_argument``)."""

    code = "invalid_argument"


# --- remote (mirrors the core's NetError) ------------------------------------------------
class NetError(TelemetronError, ConnectionError):
    """Talking to a remote node failed (``net.*``, ``protocol.*``, ``auth.*``,
    ``server.*``)."""

    code = "net"


class InvalidUrl(NetError, ValueError):
    """The URL is not a node address (``net.invalid_url``)."""

    code = "net.invalid_url"


class ConnectFailed(NetError):
    """The node cannot be reached (``net.connect``)."""

    code = "net.connect"


class ConnectionLost(NetError):
    """The connection dropped (``net.connection_lost``)."""

    code = "net.connection_lost"


class NetTimeout(NetError, TimeoutError):
    """The node did not answer in time (``net.timeout``, ``net.keepalive_timeout``)."""

    code = "net.timeout"


class KeepAliveTimeout(NetTimeout):
    """The peer sent nothing for longer than the keep-alive timeout
    (``net.keepalive_timeout``)."""

    code = "net.keepalive_timeout"


class TlsError(NetError):
    """TLS handshake or certificate failure (``net.tls``)."""

    code = "net.tls"


class ProtocolError(NetError):
    """Protocol version mismatch or violation (``protocol.*``)."""

    code = "protocol"


class VersionMismatch(ProtocolError):
    """The node speaks an incompatible protocol version (``protocol.version_mismatch``)."""

    code = "protocol.version_mismatch"


class ProtocolViolation(ProtocolError):
    """A message broke the protocol (``protocol.violation``)."""

    code = "protocol.violation"


class MessageTooLarge(ProtocolError):
    """A message exceeded the node's size limit; split it into smaller frames
    (``protocol.too_large``)."""

    code = "protocol.too_large"


class AuthError(NetError, PermissionError):
    """Credentials missing or refused (``auth.*``)."""

    code = "auth"


class AuthRequired(AuthError):
    """The node requires credentials (``auth.required``)."""

    code = "auth.required"


class InvalidCredentials(AuthError):
    """The credentials were refused (``auth.invalid_credentials``)."""

    code = "auth.invalid_credentials"


class Forbidden(AuthError, PermissionError):
    """The user's role does not allow the request (``auth.forbidden``): a viewer writing,
    an operator outside its channels or above its authority, anyone but an admin changing
    channels, deleting or managing flows."""

    code = "auth.forbidden"


class ServerError(NetError):
    """The node failed, is shutting down, or is at its connection limit (``server.*``)."""

    code = "server"


class ServerShutdown(ServerError):
    """The node is shutting down; reconnect when it is back (``server.shutdown``)."""

    code = "server.shutdown"


class ServerBusy(ServerError):
    """The node serves its limit of connections (``server.busy``)."""

    code = "server.busy"


class ServerInternal(ServerError):
    """The node failed for another reason (``server.internal``)."""

    code = "server.internal"


class ClusterError(NetError):
    """A cluster node or the cluster's coordination failed (``node.*``, ``cluster.*``)."""

    code = "cluster"


class NodeUnavailable(ClusterError):
    """The cluster node that stores a channel is down, cut off or has not joined; its
    channels come back when it rejoins (``node.unavailable``)."""

    code = "node.unavailable"


class ClusterCoordination(ClusterError):
    """The cluster's coordination service (etcd) failed or cannot be reached
    (``cluster.coordination``)."""

    code = "cluster.coordination"


# --- flows --------------------------------------------------------------------------------
class FlowError(TelemetronError):
    """Deploying, reconfiguring or running a flow failed (``flow.*``)."""

    code = "flow"


class FlowConfigError(FlowError, ValueError):
    """The flow file is wrong: YAML, an unknown component, a bad option, a cycle or a type
    mismatch; the message names the node and the line (``flow.config``)."""

    code = "flow.config"


class FlowComponentError(FlowError):
    """A flow component failed at runtime (``flow.component``)."""

    code = "flow.component"


class FlowIOError(FlowError, OSError):
    """A file a flow component uses could not be read or written (``flow.io``)."""

    code = "flow.io"


class FlowNotFound(FlowError, LookupError):
    """No flow of that name runs on the node (``flow.not_found``)."""

    code = "flow.not_found"


class FlowNameTaken(FlowError):
    """A flow of that name runs already; stop or reconfigure it (``flow.name_taken``)."""

    code = "flow.name_taken"


TransportError = NetError
RangeError = RangerError  # deprecated: the former name of RangerError


def _all_classes() -> Dict[str, Type[TelemetronError]]:
    out: Dict[str, Type[TelemetronError]] = {}
    stack = [TelemetronError]
    while stack:
        cls = stack.pop()
        out.setdefault(cls.code, cls)
        stack.extend(cls.__subclasses__())
    return out


_CLASSES = _all_classes()
_FAMILY = {
    "channel": ChannelError,
    "range": RangerError,
    "storage": StorageError,
    "write": WriteError,
    "control": ControlError,
    "stream": StreamError,
    "series": SeriesError,
    "engine": EngineError,
    "net": NetError,
    "protocol": ProtocolError,
    "auth": AuthError,
    "server": ServerError,
    "node": ClusterError,
    "cluster": ClusterError,
    "flow": FlowError,
}


# The class of every code in the core's table (and of the SDK's own codes, such as
# ``control.lost``), falling back to the family class for a code without its own class.
_BY_CODE: Dict[str, Type[TelemetronError]] = {
    code: _CLASSES.get(code) or _FAMILY.get(family, TelemetronError) for code, family, _ in CODES
}
_BY_CODE.update((code, cls) for code, cls in _CLASSES.items() if "." in code or code == "invalid_argument")


def error_class(code: str) -> Type[TelemetronError]:
    """The exception class for an error code (its family, or :class:`TelemetronError`,
    for codes this SDK version does not know)."""
    cls = _BY_CODE.get(code)
    if cls is not None:
        return cls
    return _FAMILY.get(code.split(".", 1)[0], TelemetronError)



def _from_code(code: str, message: str, details: Dict[str, Any]) -> TelemetronError:
    """Build the exception for a core error (called by the native module)."""
    return error_class(code)(message, code=code, **details)


__all__ = [name for name, v in list(globals().items()) if isinstance(v, type) and issubclass(v, (TelemetronError, Warning))] + ["error_class"]
