"""Fixtures: every client test runs three times: against an embedded engine (``tn.open``),
against a ``telemetron serve`` node started for the test (``tn.connect``), and against the
gateway of a cluster whose channels are all stored on another node (etcd, a node ``store``
and a node ``gateway`` with ``--place store``; docs/cluster.md §10), so every read, write,
stream and control change crosses nodes.

The server binary is ``target/release/telemetron`` (``cargo build --release -p
telemetron``); set ``TELEMETRON_BIN`` to use another one.
"""

from __future__ import annotations

import os
import shutil
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


class Etcd:
    """An etcd server on free loopback ports over ``data``."""

    def __init__(self, data: Path) -> None:
        exe = shutil.which("etcd")
        if exe is None:
            raise RuntimeError("etcd is missing: run scripts/ensure-deps.sh (Debian's etcd-server)")
        client, peer = free_port(), free_port()
        self.url = f"http://127.0.0.1:{client}"
        self.proc = subprocess.Popen(
            [exe, "--data-dir", str(data), "--listen-client-urls", self.url, "--advertise-client-urls", self.url]
            + ["--listen-peer-urls", f"http://127.0.0.1:{peer}", "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}"]
            + ["--initial-cluster", f"default=http://127.0.0.1:{peer}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", client), timeout=0.2):
                    return
            except OSError as err:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("etcd did not listen within 20 s") from err
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture(scope="session")
def shared_etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    """One etcd for the session's cluster backends; each test's cluster has its own key
    prefix (``--cluster-prefix``), so they never see each other."""
    etcd = Etcd(tmp_path_factory.mktemp("etcd"))
    try:
        yield etcd
    finally:
        etcd.stop()


@pytest.fixture(params=["embedded", "remote", "cluster"])
def backend(request: pytest.FixtureRequest) -> str:
    """``"embedded"``, ``"remote"`` or ``"cluster"`` (a gateway node; see the module docs)."""
    return request.param


@pytest.fixture
def connect_factory(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator:
    """A function returning a new client on the test's engine (the same data each time:
    the embedded engine is reopened after the previous client closed; the remote node, or
    the cluster's gateway, is connected to again)."""
    data = tmp_path / "data"
    servers: list[Server] = []
    if backend == "remote":
        servers.append(Server(data))
    elif backend == "cluster":
        etcd = request.getfixturevalue("shared_etcd")
        prefix = f"/telemetron-test/{tmp_path.name}"
        join = ("--cluster", etcd.url, "--cluster-prefix", prefix, "--lease-ttl", "2")
        try:
            servers.append(Server(tmp_path / "store", (*join, "--name", "store")))
            servers.append(Server(data, (*join, "--name", "gateway", "--place", "store")))
        except Exception:
            for s in servers:
                s.stop()
            raise
    opened = []

    def make() -> tn.Client:
        c = tn.connect(servers[-1].url) if servers else tn.open(data)
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
        for s in reversed(servers):
            s.stop()


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


def told(backend: str, cond, what: str) -> None:
    """Assert ``cond()`` about a writer whose control another writer's call changed: at once
    on one node, which tells every affected writer before it answers the call; within 5 s
    through a cluster gateway, where the notice and the answer come back on two relayed
    connections and can cross (docs/cluster.md §10, ``Backend::told`` in the Rust suite)."""
    if backend != "cluster":
        assert cond(), what
        return
    deadline = time.monotonic() + 5
    while not cond():
        assert time.monotonic() < deadline, f"{what}: not within 5 s through the gateway"
        time.sleep(0.005)


def stamps(start: int, n: int, step: int = 1_000_000) -> np.ndarray:
    """``n`` int64 timestamps from ``start`` every ``step`` ns."""
    return start + np.arange(n, dtype=np.int64) * step
