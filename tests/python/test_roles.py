"""Users and roles from Python against a real node: users added with the CLI, a viewer
refused a write with ``tn.Forbidden``, an operator bounded by its channels and authority."""

import subprocess

import numpy as np
import pytest

import telemetron as tn
from conftest import BIN, Server


def users(data, *args: str, password: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN), "users", *args, "--data", str(data)], input=password, capture_output=True, text=True, timeout=60)


@pytest.fixture
def node(tmp_path):
    data = tmp_path / "data"
    with tn.open(data) as c:  # channels made by an embedded client, then served
        c.channels.create([tn.NewChannel("valve_cmd", "u8", virtual=True), tn.NewChannel("pump_cmd", "u8", virtual=True)])
    assert users(data, "add", "vic", "--role", "viewer", password="vic-password\n").returncode == 0
    added = users(data, "add", "olga", "--role", "operator", "--max-authority", "100", "--channels", "valve_*", password="olga-password\n")
    assert added.returncode == 0, added.stderr
    assert "write valve_* up to authority 100" in added.stdout
    listed = users(data, "list").stdout
    assert "vic" in listed and "olga" in listed and "operator" in listed
    short = users(data, "add", "x", "--role", "viewer", password="short\n")
    assert short.returncode != 0 and "at least 8 characters" in short.stderr
    server = Server(data)
    try:
        yield server
    finally:
        server.stop()


def test_roles_from_python(node):
    with pytest.raises(tn.AuthRequired):
        tn.connect(node.url)
    with pytest.raises(tn.InvalidCredentials):
        tn.connect(node.url, username="vic", password="wrong-password")
    vic = tn.connect(node.url, username="vic", password="vic-password")
    assert {c.name for c in vic.channels.search("")} >= {"valve_cmd", "pump_cmd"}
    with pytest.raises(tn.Forbidden, match="vic is a viewer"):
        vic.write(tn.TimeStamp.now(), {"valve_cmd": np.array([1], np.uint8)})
    with pytest.raises(tn.Forbidden):
        vic.channels.create(name="mine", is_index=True)
    olga = tn.connect(node.url, username="olga", password="olga-password")
    with pytest.raises(tn.Forbidden, match="authority 100 at most"):
        olga.open_writer(tn.TimeStamp.now(), ["valve_cmd"], authority=200)
    with pytest.raises(tn.Forbidden, match="may not write"):
        olga.open_writer(tn.TimeStamp.now(), ["pump_cmd"], authority=50)
    with olga.open_writer(tn.TimeStamp.now(), ["valve_cmd"], authority=100) as w:
        w.write({"valve_cmd": np.array([1], np.uint8)})
    assert isinstance(tn.Forbidden("x"), PermissionError)
    vic.close()
    olga.close()
