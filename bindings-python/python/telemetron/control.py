"""Control sequences: command channels under an authority, react to sensor values.

>>> with client.control.acquire(name="press seq", write=["valve_cmd"], read=["press_pt"], authority=200) as ctrl:
...     ctrl["valve_cmd"] = 1                                   # value + fresh timestamp on its index
...     ok = ctrl.wait_until(lambda c: c["press_pt"] > 100, timeout=10)
...     ctrl["valve_cmd"] = 0

## Authority
Control is decided per channel by a ``u8`` authority (the engine's rules): a higher
authority takes control from a lower one; when the holder leaves or lowers its authority,
control passes to the next highest. Among equals the first to acquire keeps control.

## Losing control
When a higher authority takes a channel, :meth:`Controller.has_control` turns False and
the ``on_lost`` option decides what happens: ``"raise"`` (default) raises
:class:`ControlLost` from the next ``set``/``wait_until``/``sleep``; ``"warn"`` issues a
warning; a callable is called as ``on_lost(ctrl, channel_names)`` from the background
thread; ``"ignore"`` does nothing. A command written while not in control is dropped by
the engine and handled the same way.

## Values
``ctrl["press_pt"]`` is the latest sample received for a read channel (seeded with the
last stored sample at acquire). Conditions passed to ``wait_until`` are evaluated on every
new frame; a channel with no value yet makes the condition False (not an error).
"""

from __future__ import annotations

import datetime as _dt
import json
import threading
import time
import uuid
import warnings
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Sequence, Union

import numpy as np

from .errors import ControlLost, InvalidArgument, StreamClosed, StreamLagged, TelemetronError
from .telem import TimeSpan, TimeStamp

if TYPE_CHECKING:
    from .client import Client

OnLost = Union[str, Callable[["Controller", List[str]], Any]]


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


class Controller:
    """A control sequence's handle (``client.control.acquire``). Use it as a context
    manager: leaving it releases control (:meth:`release`)."""

    def __init__(
        self,
        client: "Client",
        name: str,
        write: Sequence[Any],
        read: Sequence[Any],
        authority: Any,
        on_lost: OnLost,
    ) -> None:
        if not (on_lost in ("raise", "warn", "ignore") or callable(on_lost)):
            raise InvalidArgument("on_lost must be 'raise', 'warn', 'ignore' or a callable", code="invalid_argument")
        self._client = client
        self.name = name
        self._on_lost = on_lost
        self._cond = threading.Condition()
        self._values: Dict[str, Any] = {}
        self._pending: Optional[TelemetronError] = None
        self._stop = threading.Event()
        self._write = client.channels.retrieve(list(write)) if write else []
        self._read = client.channels.retrieve(list(read)) if read else []
        self._by_key = {c.key: c for c in self._write + self._read}
        self._last_ts: Dict[int, int] = {}
        self._writer = None
        self._streamer = None
        self.subject_key = str(uuid.uuid4())
        # Holder of each channel (subject key), from the control channel's transfers.
        self._holders: Dict[int, Optional[str]] = {}
        if self._write:
            self._writer = client.open_writer(
                TimeStamp.now(), [c.key for c in self._write], authority=authority, name=name, subject_key=self.subject_key
            )
        self._held = {c.name: self._has(c) for c in self._write}
        self._seed()
        self._control_key = client._native.control_channel()
        self._streamer = client._native.open_streamer([c.key for c in self._read] + [self._control_key], 1024, "notify", 1, 0.0, 0)
        self._thread = threading.Thread(target=self._run, name=f"telemetron-control-{name}", daemon=True)
        self._thread.start()

    # -- background ----------------------------------------------------------------------
    def _seed(self) -> None:
        """Latest stored sample of each stored read channel."""
        stored = [c for c in self._read if not c.is_virtual]
        for c in stored:
            try:
                it = self._client._native.open_iterator(int(TimeStamp.MIN), int(TimeStamp.MAX), [c.key], 1, False)
                if it.seek_last() and it.prev(1, None):
                    arr = it.value().array(c.key)
                    if len(arr):
                        self._values[c.name] = _item(arr[-1])
                it.close()
            except TelemetronError:
                pass

    def _run(self) -> None:
        from .frame import Frame

        streamer = self._streamer
        assert streamer is not None
        while not self._stop.is_set():
            try:
                n = streamer.read(0.1)
            except StreamLagged:
                continue
            except StreamClosed:
                return
            except TelemetronError as e:  # pragma: no cover - transport failures
                with self._cond:
                    self._pending = e
                    self._cond.notify_all()
                return
            if n is None:
                continue
            f = Frame(n)
            with self._cond:
                for c in f.channels:
                    if c.key == self._control_key:
                        continue
                    arr = f[c.key]
                    if len(arr):
                        self._values[c.name] = _item(arr[-1])
                self._cond.notify_all()
            if self._control_key in f._by_key:
                self._transfers(f[self._control_key])

    def _has(self, c: Any) -> bool:
        return self._writer is not None and self._writer.has_control(c.key)

    def _transfers(self, samples: List[Any]) -> None:
        """Follow control transfers (``{"transfers": [{"from": state, "to": state}]}``) and
        report the write channels whose holder stopped being this sequence."""
        for s in samples:
            doc = json.loads(s) if isinstance(s, str) else s
            for t in (doc or {}).get("transfers", []):
                state = t.get("to") or t.get("from")
                if state is None:
                    continue
                to = t.get("to")
                self._holders[state["resource"]] = to["subject"]["key"] if to else None
        lost = []
        for c in self._write:
            mine = self._holders.get(c.key) == self.subject_key
            if c.index is not None and not c.is_virtual and c.index != c.key:
                mine = mine and self._holders.get(c.index) == self.subject_key
            if self._held.get(c.name) and not mine:
                lost.append(c.name)
            self._held[c.name] = mine
        if lost:
            self._lost(lost)

    def _lost(self, names: List[str]) -> None:
        msg = f"control sequence {self.name!r} lost control of {names} to a higher authority"
        if self._on_lost == "raise":
            with self._cond:
                self._pending = ControlLost(msg, code="control.lost", channels=names)
                self._cond.notify_all()
        elif self._on_lost == "warn":
            warnings.warn(msg, RuntimeWarning, stacklevel=2)
        elif callable(self._on_lost):
            self._on_lost(self, names)

    def _raise_pending(self) -> None:
        e = self._pending
        if e is not None:
            self._pending = None
            raise e

    # -- values --------------------------------------------------------------------------
    def _name(self, channel: Any) -> str:
        if isinstance(channel, str):
            return channel
        key = channel if isinstance(channel, int) else getattr(channel, "key", -1)
        c = self._by_key.get(int(key))
        if c is None:
            raise KeyError(channel)
        return c.name

    def __getitem__(self, channel: Any) -> Any:
        """The latest value of a read channel (or the last command of a write channel).

        Raises:
            NoValue: nothing received yet.
        """
        name = self._name(channel)
        with self._cond:
            try:
                return self._values[name]
            except KeyError:
                raise NoValue(f"no value received yet for {name!r}") from None

    def get(self, channel: Any, default: Any = None) -> Any:
        """The latest value of a channel, or ``default``."""
        try:
            return self[channel]
        except KeyError:
            return default

    @property
    def state(self) -> Dict[str, Any]:
        """A copy of the latest values by channel name."""
        with self._cond:
            return dict(self._values)

    # -- commands ------------------------------------------------------------------------
    def __setitem__(self, channel: Any, value: Any) -> None:
        self.set(channel, value)

    def set(self, channel: Any, value: Any = None) -> None:
        """Command channels: ``set("valve_cmd", 1)`` or ``set({"valve_cmd": 1, "vent": 0})``.
        Each value is written with a fresh timestamp on its channel's index.

        Raises:
            ControlLost: with ``on_lost="raise"``, when control was lost (the command was
                dropped by the engine).
        """
        with self._cond:
            self._raise_pending()
        if self._writer is None:
            raise InvalidArgument(f"control sequence {self.name!r} has no write channels", code="invalid_argument")
        items = channel.items() if isinstance(channel, dict) else [(channel, value)]
        now = time.time_ns()
        frame: Dict[int, Any] = {}
        names = []
        for ch, v in items:
            name = self._name(ch)
            c = next((w for w in self._write if w.name == name), None)
            if c is None:
                raise InvalidArgument(f"{name!r} is not one of this sequence's write channels", code="invalid_argument")
            frame[c.key] = [v] if np.ndim(v) == 0 else v
            names.append((name, v))
            if c.index is not None and not c.is_virtual and c.index not in frame:
                ts = max(now, self._last_ts.get(c.index, 0) + 1)
                self._last_ts[c.index] = ts
                frame[c.index] = [ts]
        # Confirmed: a command takes effect or raises, also when control moves in flight.
        ok = self._writer.write(frame, confirm=True)
        with self._cond:
            for name, v in names:
                self._values[name] = v
        if not ok:
            dropped = list(self._writer.unauthorized)
            for n in dropped:
                self._held[n] = False
            self._lost(dropped)
            with self._cond:
                self._raise_pending()

    def set_authority(self, authority: Any, value: Optional[int] = None) -> None:
        """Change this sequence's authority (``200``, ``("valve_cmd", 10)`` or a dict);
        raising it can take control back, lowering it hands control over."""
        if self._writer is None:
            return
        self._writer.set_authority(authority, value)

    def has_control(self, channel: Any = None) -> bool:
        """True if this sequence controls ``channel`` now (every write channel if None)."""
        if self._writer is None:
            return False
        if channel is None:
            return all(self._has(c) for c in self._write)
        return self._writer.has_control(channel)

    # -- waiting -------------------------------------------------------------------------
    def _eval(self, cond: Callable[["Controller"], Any]) -> bool:
        try:
            return bool(cond(self))
        except NoValue:
            return False

    def wait_until(self, cond: Callable[["Controller"], Any], timeout: Any = None) -> bool:
        """Wait until ``cond(ctrl)`` is true; returns False after ``timeout`` (seconds,
        TimeSpan or timedelta; None waits forever). Ctrl-C interrupts it.

        Raises:
            ControlLost: with ``on_lost="raise"``.
        """
        deadline = None if timeout is None else time.monotonic() + seconds(timeout)
        with self._cond:
            while True:
                self._raise_pending()
                if self._eval(cond):
                    return True
                left = 0.1 if deadline is None else deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))

    def wait_while(self, cond: Callable[["Controller"], Any], timeout: Any = None) -> bool:
        """Wait while ``cond(ctrl)`` is true; returns False after ``timeout``."""
        return self.wait_until(lambda c: not cond(c), timeout)

    def wait_until_defined(self, channels: Iterable[Any], timeout: Any = None) -> bool:
        """Wait until every channel has a value."""
        names = [self._name(c) for c in channels]
        return self.wait_until(lambda c: all(n in c._values for n in names), timeout)

    def sleep(self, duration: Any) -> None:
        """Sleep ``duration`` (seconds, TimeSpan or timedelta), waking early only to raise
        :class:`ControlLost` (``on_lost="raise"``). Ctrl-C interrupts it."""
        deadline = time.monotonic() + seconds(duration)
        with self._cond:
            while True:
                self._raise_pending()
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._cond.wait(min(left, 0.1))

    # -- release -------------------------------------------------------------------------
    def release(self) -> None:
        """Stop reading and close the writer: control passes to the next highest writer.
        Idempotent."""
        self._stop.set()
        if self._streamer is not None:
            self._streamer.close()
        if getattr(self, "_thread", None) is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        if self._writer is not None:
            self._writer.close()

    def __enter__(self) -> "Controller":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Controller(name={self.name!r}, write={[c.name for c in self._write]}, read={[c.name for c in self._read]})"


def _item(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


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
    ) -> Controller:
        """Start a control sequence: open a writer on ``write`` (their indexes added) with
        ``authority`` (0-255, or ``{channel: authority}``) and follow ``read`` live.

        Args:
            name: shown in control state ("press seq").
            write: channels to command.
            read: channels whose latest values ``ctrl[name]`` and conditions use.
            authority: control authority (default 200; 255 is absolute).
            on_lost: ``"raise"`` (default), ``"warn"``, ``"ignore"`` or
                ``callback(ctrl, channel_names)``; see the module docs.
        """
        return Controller(self._client, name, write, read, authority, on_lost)

    def states(self, channels: Any = None) -> List[Dict[str, Any]]:
        """Current holders: ``[{"subject": {"key", "name", "group"}, "channel", "authority"}]``
        for ``channels`` (every controlled channel if None)."""
        return self._client._native.control_states([] if channels is None else channels)

    @property
    def channel(self) -> Any:
        """The virtual channel on which control transfers are published (stream it to
        watch handoffs)."""
        return self._client.channels.retrieve(self._client._native.control_channel())
