"""Opening and connecting: embedded vs remote, authentication, closing."""

import pytest

import telemetron as tn
from conftest import Server


def test_is_remote_and_context_manager(connect_factory, backend):
    with connect_factory() as c:
        assert c.is_remote == (backend != "embedded")
        assert repr(c) == f"Client(remote={backend != 'embedded'})"
        c.channels.create(name="t", is_index=True)
    with pytest.raises(tn.Closed):
        c.read(None, ["t"])  # closed, on both backends
    with pytest.raises(tn.Closed):
        c.channels.retrieve("t")
    c.close()  # twice is fine


def test_token_authentication(tmp_path):
    server = Server(tmp_path / "data", extra=("--token", "s3cret"))
    try:
        with pytest.raises(tn.AuthRequired) as e:
            tn.connect(server.url).channels.search()
        assert isinstance(e.value, tn.AuthError) and isinstance(e.value, PermissionError)
        with pytest.raises(tn.InvalidCredentials):
            tn.connect(server.url, token="wrong").channels.search()
        c = tn.connect(server.url, token="s3cret")
        assert c.channels.search() == []
        c.close()
    finally:
        server.stop()


def test_password_authentication(tmp_path):
    server = Server(tmp_path / "data", extra=("--user", "ada", "--password", "pw"))
    try:
        with pytest.raises(tn.InvalidCredentials):
            tn.connect(server.url, username="ada", password="nope").channels.search()
        c = tn.connect(server.url, username="ada", password="pw")
        c.channels.create(name="t", is_index=True)
        c.close()
        with pytest.raises(ValueError):
            tn.connect(server.url, token="x", username="ada")
    finally:
        server.stop()


def test_compress_gives_the_same_arrays(tmp_path):
    import numpy as np

    server = Server(tmp_path / "data")
    try:
        plain = tn.connect(server.url)
        packed = tn.connect(server.url, compress=True)
        plain.channels.create([tn.NewChannel("t", is_index=True), tn.NewChannel("p", "f64", index="t")])
        n = 50_000
        t0 = tn.TimeStamp(1_000)
        stamps = t0 + np.arange(n, dtype=np.int64) * 1_000
        adc = np.round(np.sin(np.arange(n) * 0.001) * 20_000 + 32_768) * (100 / 65_535)
        plain.write(t0, {"t": stamps, "p": adc})
        got = packed.read(None, ["t", "p"])
        np.testing.assert_array_equal(got["p"], adc)
        np.testing.assert_array_equal(got["t"], plain.read(None, ["t"])["t"])
        plain.close()
        packed.close()
    finally:
        server.stop()


def test_unreachable_node(tmp_path):
    from conftest import free_port

    with pytest.raises(tn.NetError) as e:
        tn.connect(f"http://127.0.0.1:{free_port()}", timeout=2).channels.search()
    assert e.value.code.startswith("net.")
    with pytest.raises(tn.NetError):
        tn.connect("ftp://nowhere")
