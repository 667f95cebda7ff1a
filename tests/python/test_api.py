"""The public API is documented and typed (no engine involved)."""

import inspect
from pathlib import Path

import telemetron as tn


def _public_members(obj):
    for name, member in inspect.getmembers(obj):
        if name.startswith("_"):
            continue
        if inspect.isfunction(member) or inspect.ismethoddescriptor(member) or isinstance(member, property):
            yield name, member


def test_every_public_item_has_a_docstring():
    missing = []
    for name in tn.__all__:
        obj = getattr(tn, name)
        if name.startswith("__") or isinstance(obj, str):
            continue
        if not (inspect.getdoc(obj) or "").strip():
            missing.append(name)
        if inspect.isclass(obj) and not issubclass(obj, BaseException):
            for mname, member in _public_members(obj):
                doc = member.__doc__ if not isinstance(member, property) else member.fget.__doc__
                if not (doc or "").strip():
                    missing.append(f"{name}.{mname}")
    assert not missing, f"undocumented: {missing}"


def test_native_classes_are_documented():
    for cls in (tn._native.Client, tn._native.Writer, tn._native.Streamer, tn._native.Iterator, tn._native.NativeFrame):
        assert cls.__doc__
        for name, member in _public_members(cls):
            assert (member.__doc__ or "").strip(), f"{cls.__name__}.{name}"


def test_package_ships_type_information():
    pkg = Path(tn.__file__).parent
    assert (pkg / "py.typed").exists() and (pkg / "_native.pyi").exists()
    stub = (pkg / "_native.pyi").read_text()
    for cls in ("Client", "Writer", "Streamer", "Iterator", "NativeFrame", "Channel", "SeriesBuffer"):
        assert f"class {cls}" in stub
