"""The exception hierarchy mirrors the core's error codes."""

import pytest

import telemetron as tn
from telemetron import _native
from telemetron._codes import CODES
from telemetron.errors import _from_code, error_class


def test_codes_map_to_classes():
    assert error_class("channel.not_found") is tn.ChannelNotFound
    assert error_class("write.not_monotonic") is tn.NotMonotonic
    assert error_class("stream.lagged") is tn.StreamLagged
    assert error_class("control.unauthorized") is tn.Unauthorized
    assert error_class("auth.invalid_credentials") is tn.InvalidCredentials
    # Unknown codes fall back to their family, then to the root.
    assert error_class("write.something_new") is tn.WriteError
    assert issubclass(error_class("net.keepalive_timeout"), tn.NetTimeout)
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


def test_every_native_code_has_its_own_class():
    native = _native.error_codes()
    assert len(native) > 40
    missing = [code for code, _, _ in native if error_class(code).code != code]
    assert not missing, f"codes with only a family fallback: {missing}; add a class to telemetron/errors.py"
    for code, family, _ in native:
        cls = error_class(code)
        e = _from_code(code, "m", {})
        assert isinstance(e, cls) and e.code == code and cls.__doc__ and code in cls.__doc__


def test_generated_table_matches_the_native_module():
    # _codes.py is generated from the same Rust table (core/tests/error_codes.rs checks it).
    assert list(CODES) == [tuple(c) for c in _native.error_codes()]


def test_ranger_error_is_the_one_name():
    assert tn.RangerError is tn.RangeError
    assert issubclass(tn.RangeNotFound, tn.RangerError) and issubclass(tn.InvalidRange, ValueError)
    assert error_class("range.invalid") is tn.InvalidRange
