"""Fixtures: every client test runs twice, against an embedded engine (``tn.open``) and
against a ``telemetron serve`` node started for the test (``tn.connect``).

The server binary is ``target/release/telemetron`` (``cargo build --release -p
telemetron``); set ``TELEMETRON_BIN`` to use another one.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

import telemetron as tn

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(os.environ.get("TELEMETRON_BIN", ROOT / "target" / "release" / "telemetron"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A ``telemetron serve`` process on a fresh data directory."""

    def __init__(self, data: Path, extra: tuple = ()) -> None:
        if not BIN.exists():
            raise RuntimeError(f"{BIN} is missing: run `cargo build --release -p telemetron` first")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(data.parent / f"server-{self.port}.log", "wb")
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--data", str(data), "--listen", f"127.0.0.1:{self.port}", *extra],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"telemetron serve exited with {self.proc.returncode}: {self.logs()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"telemetron serve did not listen in time: {self.logs()}")
                time.sleep(0.02)

    def logs(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture(params=["embedded", "remote"])
def backend(request: pytest.FixtureRequest) -> str:
    """``"embedded"`` or ``"remote"``."""
    return request.param


@pytest.fixture
def connect_factory(backend: str, tmp_path: Path) -> Iterator:
    """A function returning a new client on the test's engine (the same data each time:
    the embedded engine is reopened after the previous client closed; the remote node is
    connected to again)."""
    data = tmp_path / "data"
    server = Server(data) if backend == "remote" else None
    opened = []

    def make() -> tn.Client:
        c = tn.connect(server.url) if server is not None else tn.open(data)
        opened.append(c)
        return c

    try:
        yield make
    finally:
        for c in opened:
            try:
                c.close()
            except tn.TelemetronError:
                pass
        if server is not None:
            server.stop()


@pytest.fixture
def client(connect_factory) -> tn.Client:
    """A client on an empty engine, embedded or remote."""
    return connect_factory()


@pytest.fixture
def stand(client: tn.Client):
    """A small test stand: index ``time``, data channels ``pressure`` (f64) and ``temp``
    (f32), virtual ``valve_cmd`` (u8)."""
    client.channels.create(
        [
            tn.NewChannel("time", is_index=True),
            tn.NewChannel("pressure", "f64", index="time"),
            tn.NewChannel("temp", np.float32, index="time"),
            tn.NewChannel("valve_cmd", "u8", virtual=True),
        ]
    )
    return client


def stamps(start: int, n: int, step: int = 1_000_000) -> np.ndarray:
    """``n`` int64 timestamps from ``start`` every ``step`` ns."""
    return start + np.arange(n, dtype=np.int64) * step
