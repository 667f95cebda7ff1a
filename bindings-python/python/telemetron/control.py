"""Control sequences: command channels under an authority, react to sensor values.

>>> with client.control.acquire(name="press seq", write=["valve_cmd"], read=["press_pt"],
...                             authority=200, safe={"valve_cmd": 0}) as ctrl:
...     ctrl["valve_cmd"] = 1                                   # value + fresh timestamp on its index
...     ok = ctrl.wait_until(lambda c: c["press_pt"] > 100, timeout=10)
...     for tick in ctrl.loop(hz=1000, duration=2.0):           # a 1 kHz closed loop
...         ctrl["valve_cmd"] = 1 if ctrl["press_pt"] < 120 else 0

The sequence itself (commands, waits, loss detection, the safe state, the command record)
is the Rust core's ``telemetron::client::Sequence``; this module only translates it, so a
Node sequence behaves the same way.

## Authority
Control is decided per channel by a ``u8`` authority (the engine's rules): a higher
authority takes control from a lower one; when the holder leaves or lowers its authority,
control passes to the next highest. Among equals the first to acquire keeps control.
Command channels are exclusive by default: two sequences cannot both command a valve.

## Commands take effect or raise
``ctrl["valve_cmd"] = 0`` returns once the command is applied (on a remote node too). If
control moved and the command was not written, it raises :class:`ControlLost` naming the
channels, whatever ``on_lost`` says: a command is never dropped silently.

## Losing control
When a higher authority takes a channel, :meth:`Controller.has_control` turns False and
``on_lost`` decides what else happens: ``"raise"`` (default) raises :class:`ControlLost`
from the next ``set``/wait/``sleep``/loop tick; ``"warn"`` issues a warning; a callable
is called as ``on_lost(ctrl, channel_names)`` from the sequence's thread; ``"ignore"``
does nothing more.

## Abort: a safe state
``safe={"valve_cmd": 0}`` names the values :meth:`Controller.abort` writes to the channels
the sequence still controls before releasing. Leaving the ``with`` block because of an
exception (a :class:`ControlLost` included) aborts; a normal exit releases.

## The command record
Every command (and safe-state write) is kept as channels ``<name>/commands/time``,
``/channel``, ``/value``, ``/authority`` and ``/outcome`` (``ok`` or the error code), so a
run can be audited later: ``client.read(run, ctrl.record_channels)``. ``record=False``
turns it off.

## Values
``ctrl["press_pt"]`` is the latest sample received for a read channel (seeded with the
last stored sample at acquire). Conditions passed to the waits are evaluated now and on
every new frame; a channel with no value yet makes the condition False (not an error).
"""

from __future__ import annotations

import datetime as _dt
import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Union

import numpy as np

from . import _native
from .errors import InvalidArgument
from .telem import TimeSpan

if TYPE_CHECKING:
    from .client import Client

OnLost = Union[str, Callable[["Controller", List[str]], Any]]
Condition = Callable[["Controller"], Any]

Tick = _native.Tick

_RECORD_FIELDS = ("time", "channel", "value", "authority", "outcome")


def seconds(value: Any) -> float:
    """Seconds for a duration given as a number of seconds, a :class:`TimeSpan` (ns) or a
    ``timedelta``."""
    if isinstance(value, TimeSpan):
        return value.seconds
    if isinstance(value, _dt.timedelta):
        return value.total_seconds()
    if isinstance(value, np.timedelta64):
        return TimeSpan(value).seconds
    return float(value)


class NoValue(KeyError):
    """No sample has been received yet for a channel (``ctrl[name]``)."""


class Loop:
    """A fixed-rate loop: iterate it for :class:`Tick` s at ``hz`` (see :func:`loop`).

    The loop sleeps in the kernel and spins the last ``spin`` seconds of each period, so
    ticks start within microseconds of their schedule; a body that overruns its period
    skips the ticks it missed (``tick.missed``) rather than bunching them. :meth:`stats`
    reports how late ticks started (p50, p99, max) and how many overran."""

    def __init__(
        self,
        hz: float,
        *,
        duration: Any = None,
        count: Optional[int] = None,
        spin: Any = None,
        _sequence: Optional[Any] = None,
    ) -> None:
        self._ticker = _native.Ticker(
            float(hz), None if spin is None else seconds(spin), None if duration is None else seconds(duration), count
        )
        self._sequence = _sequence

    @property
    def period(self) -> float:
        """The period in seconds."""
        return self._ticker.period

    def tick(self) -> Optional[Tick]:
        """Wait for the next tick; None once the loop's duration or count is reached."""
        if self._sequence is not None:
            return self._sequence.tick(self._ticker)
        return self._ticker.tick()

    def __iter__(self) -> Iterator[Tick]:
        while True:
            t = self.tick()
            if t is None:
                return
            yield t

    def stats(self) -> Dict[str, float]:
        """``{"hz", "ticks", "overruns", "late_p50", "late_p99", "late_max"}`` (seconds)."""
        return dict(self._ticker.stats())

    def __repr__(self) -> str:
        return f"Loop(hz={1 / self.period:g})"


def loop(hz: float, *, duration: Any = None, count: Optional[int] = None, spin: Any = None) -> Loop:
    """A fixed-rate loop outside any sequence: ``for tick in tn.loop(hz=1000): ...``.

    Args:
        hz: ticks per second (0 < hz ≤ 1e6).
        duration: stop after this long (seconds, TimeSpan or timedelta); None runs until
            the caller breaks.
        count: stop after this many ticks.
        spin: seconds of each wait spent spinning for precision (default 150 µs; 0 sleeps
            only, saving CPU at the cost of the kernel's wake-up jitter).
    """
    return Loop(hz, duration=duration, count=count, spin=spin)


class Controller:
    """A control sequence's handle (``client.control.acquire``). Use it as a context
    manager: leaving normally releases control (:meth:`release`); leaving with an
    exception puts outputs in their safe state first (:meth:`abort`)."""

    def __init__(self, client: "Client", native: Any) -> None:
        self._client = client
        self._native = native
        self.name: str = native.name
        self.subject_key: str = native.subject_key

    # -- values --------------------------------------------------------------------------
    def __getitem__(self, channel: Any) -> Any:
        """The latest value of a read channel (or the last command of a write channel).

        Raises:
            NoValue: nothing received yet.
            KeyError: not one of the sequence's channels.
        """
        v = self._native.get(channel)
        if v is None:
            raise NoValue(f"no value received yet for {channel!r}")
        return v

    def get(self, channel: Any, default: Any = None) -> Any:
        """The latest value of a channel, or ``default``."""
        v = self._native.get(channel)
        return default if v is None else v

    @property
    def state(self) -> Dict[str, Any]:
        """A copy of the latest values by channel name."""
        return dict(self._native.values())

    @property
    def write_channels(self) -> List[Any]:
        """The channels this sequence commands."""
        return list(self._native.write_channels)

    @property
    def read_channels(self) -> List[Any]:
        """The channels this sequence follows."""
        return list(self._native.read_channels)

    @property
    def record_channels(self) -> List[str]:
        """Names of the command record's channels (``<name>/commands/...``)."""
        return [f"{self.name}/commands/{f}" for f in _RECORD_FIELDS]

    # -- commands ------------------------------------------------------------------------
    def __setitem__(self, channel: Any, value: Any) -> None:
        self._native.set([(channel, value)])

    def set(self, channel: Any, value: Any = None) -> None:
        """Command channels: ``set("valve_cmd", 1)`` or ``set({"valve_cmd": 1, "vent": 0})``.
        Each value is written with a fresh timestamp on its channel's index; the call
        returns once the command is applied.

        Raises:
            ControlLost: the command was not written because control moved (always), or
                control was lost earlier (``on_lost="raise"``).
        """
        items = list(channel.items()) if isinstance(channel, Mapping) else [(channel, value)]
        self._native.set(items)

    def set_authority(self, authority: Any, value: Optional[int] = None) -> None:
        """Change this sequence's authority (``200``, ``("valve_cmd", 10)`` or a dict);
        raising it can take control back, lowering it hands control over."""
        if value is not None:
            changes: List[Any] = [(authority, int(value))]
        elif isinstance(authority, Mapping):
            changes = [(k, int(v)) for k, v in authority.items()]
        else:
            changes = [(None, int(authority))]
        self._native.set_authority(changes)

    def has_control(self, channel: Any = None) -> bool:
        """True if this sequence controls ``channel`` now (every write channel if None)."""
        return bool(self._native.has_control(channel))

    # -- waiting -------------------------------------------------------------------------
    def _cond(self, cond: Condition) -> Callable[[], bool]:
        def holds() -> bool:
            try:
                return bool(cond(self))
            except NoValue:
                return False

        return holds

    @staticmethod
    def _timeout(timeout: Any) -> Optional[float]:
        return None if timeout is None else seconds(timeout)

    def wait_until(self, cond: Condition, timeout: Any = None) -> bool:
        """Wait until ``cond(ctrl)`` is true; returns False after ``timeout`` (seconds,
        TimeSpan or timedelta; None waits forever). Ctrl-C interrupts it.

        Raises:
            ControlLost: with ``on_lost="raise"``.
        """
        return bool(self._native.wait("until", self._cond(cond), self._timeout(timeout)))

    def wait_while(self, cond: Condition, timeout: Any = None) -> bool:
        """Wait while ``cond(ctrl)`` is true; returns False after ``timeout``."""
        return bool(self._native.wait("while", self._cond(cond), self._timeout(timeout)))

    def remains_true_for(self, cond: Condition, duration: Any, timeout: Any = None) -> bool:
        """Wait until ``cond(ctrl)`` has held for ``duration`` without a break (a pressure
        that stays above a limit for 2 s); returns False after ``timeout``."""
        return bool(self._native.wait("true_for", self._cond(cond), self._timeout(timeout), seconds(duration)))

    def wait_until_defined(self, channels: Iterable[Any], timeout: Any = None) -> bool:
        """Wait until every channel has a value."""
        chans = list(channels)
        return self.wait_until(lambda c: all(c._native.get(ch) is not None for ch in chans), timeout)

    def sleep(self, duration: Any) -> None:
        """Sleep ``duration`` (seconds, TimeSpan or timedelta) precisely (a kernel sleep,
        then a short spin), waking early only to raise :class:`ControlLost`
        (``on_lost="raise"``). Ctrl-C interrupts it."""
        self._native.sleep(seconds(duration))

    def loop(self, hz: float, *, duration: Any = None, count: Optional[int] = None, spin: Any = None) -> Loop:
        """A fixed-rate loop (see :func:`loop`) whose ticks also raise
        :class:`ControlLost` (``on_lost="raise"``)."""
        return Loop(hz, duration=duration, count=count, spin=spin, _sequence=self._native)

    # -- release -------------------------------------------------------------------------
    def abort(self) -> None:
        """Put outputs in their safe state (the ``safe`` values, written to the channels
        still controlled and recorded), then release. Idempotent."""
        self._native.abort()

    def release(self) -> None:
        """Stop following and close the writer: control passes to the next highest writer.
        Idempotent."""
        self._native.release()

    def __enter__(self) -> "Controller":
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is None:
            self.release()
        else:
            self.abort()

    def __repr__(self) -> str:
        w = [c.name for c in self.write_channels]
        r = [c.name for c in self.read_channels]
        return f"Controller(name={self.name!r}, write={w}, read={r})"


class Control:
    """``client.control``: control sequences and control state."""

    def __init__(self, client: "Client") -> None:
        self._client = client

    def acquire(
        self,
        name: str,
        write: Sequence[Any] = (),
        read: Sequence[Any] = (),
        authority: Any = 200,
        *,
        on_lost: OnLost = "raise",
        safe: Optional[Mapping[Any, Any]] = None,
        record: bool = True,
    ) -> Controller:
        """Start a control sequence: open a writer on ``write`` (their indexes added) with
        ``authority`` and follow ``read`` live.

        Args:
            name: shown in control state ("press seq"); names the command record.
            write: channels to command.
            read: channels whose latest values ``ctrl[name]`` and conditions use.
            authority: control authority 0-255 (default 200; 255 is absolute), one per
                write channel (a list), or ``{channel: authority}`` for every write channel.
            on_lost: ``"raise"`` (default), ``"warn"``, ``"ignore"`` or
                ``callback(ctrl, channel_names)``; see the module docs.
            safe: ``{channel: value}`` written by :meth:`Controller.abort` (and on leaving
                the ``with`` block with an exception).
            record: keep the command record (``<name>/commands/...`` channels).

        Raises:
            InvalidArgument: a bad option, a safe value for a channel that is not a write
                channel, or a sequence of the same name already recording.
        """
        if not (on_lost in ("raise", "warn", "ignore") or callable(on_lost)):
            raise InvalidArgument("on_lost must be 'raise', 'warn', 'ignore' or a callable", code="invalid_argument")
        write = list(write)
        if isinstance(authority, Mapping):
            missing = [w for w in write if w not in authority]
            if missing or len(authority) != len(write):
                raise InvalidArgument(
                    f"an authority dict must name every write channel exactly (missing {missing})", code="invalid_argument"
                )
            authorities = [int(authority[w]) for w in write]
        elif isinstance(authority, (list, tuple)):
            authorities = [int(a) for a in authority]
        else:
            authorities = [int(authority)]
        holder: List[Controller] = []
        hook: Optional[Callable[[List[str]], None]] = None
        if on_lost == "warn":

            def hook(names: List[str]) -> None:
                warnings.warn(f"control sequence {name!r} lost control of {names} to a higher authority", RuntimeWarning, stacklevel=2)

        elif callable(on_lost):
            callback = on_lost

            def hook(names: List[str]) -> None:
                if holder:
                    callback(holder[0], names)

        native = self._client._native.acquire(
            name, write, list(read), authorities, on_lost == "raise", hook, None if safe is None else dict(safe), record
        )
        ctrl = Controller(self._client, native)
        holder.append(ctrl)
        return ctrl

    def states(self, channels: Any = None) -> List[Dict[str, Any]]:
        """Current holders: ``[{"subject": {"key", "name", "group"}, "channel", "authority"}]``
        for ``channels`` (every controlled channel if None)."""
        return self._client._native.control_states([] if channels is None else channels)

    @property
    def channel(self) -> Any:
        """The virtual channel on which control transfers are published (stream it to
        watch handoffs)."""
        return self._client.channels.retrieve(self._client._native.control_channel())
