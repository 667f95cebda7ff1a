"""The exception hierarchy mirrors the core's error codes."""

import pytest

import telemetron as tn
from telemetron.errors import _from_code, error_class


def test_codes_map_to_classes():
    assert error_class("channel.not_found") is tn.ChannelNotFound
    assert error_class("write.not_monotonic") is tn.NotMonotonic
    assert error_class("stream.lagged") is tn.StreamLagged
    assert error_class("control.unauthorized") is tn.Unauthorized
    assert error_class("auth.invalid_credentials") is tn.InvalidCredentials
    # Unknown codes fall back to their family, then to the root.
    assert error_class("write.something_new") is tn.WriteError
    assert error_class("net.keepalive_timeout") is tn.NetTimeout
    assert error_class("zzz") is tn.TelemetronError


def test_every_class_is_a_telemetron_error_with_a_docstring():
    for name in tn.errors.__all__:
        cls = getattr(tn.errors, name)
        if isinstance(cls, type) and issubclass(cls, tn.TelemetronError):
            assert cls.__doc__, name


def test_from_code_keeps_message_and_details():
    e = _from_code("stream.lagged", "lost 3 frames", {"dropped": 3})
    assert isinstance(e, tn.StreamError) and e.dropped == 3 and e.message == "lost 3 frames" and str(e) == "lost 3 frames"


def test_engine_errors_come_typed(client, tmp_path):
    with pytest.raises(tn.ChannelNotFound) as e:
        client.read(None, ["missing"])
    assert "create it first" in e.value.message


def test_data_directory_is_locked(tmp_path):
    a = tn.open(tmp_path / "d")
    try:
        with pytest.raises(tn.AlreadyOpen):
            tn.open(tmp_path / "d")
    finally:
        a.close()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(tn.NotADataDirectory):
        tn.open(tmp_path / "other")
