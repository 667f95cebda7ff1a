"""Conversions from user values to what the native writer takes.

The native layer passes a 1-D, C-contiguous numpy array of the channel's exact dtype to
the engine without copying. Everything else comes here once (:func:`coerce`): lists,
scalars, pandas/polars/pyarrow objects, other dtypes, datetimes. Frame-like inputs (dicts,
DataFrames, Frames, ``(channels, values)`` pairs) are normalised by :func:`to_mapping`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Dict, List

import numpy as np

from .errors import InvalidArgument, WriteTypeMismatch
from .telem import DataType, to_ns

_VARIABLE = ("string", "json", "bytes")


def _module(value: Any) -> str:
    return type(value).__module__.split(".", 1)[0]


def _unwrap(value: Any) -> Any:
    """numpy (or Python) values from pandas, polars and pyarrow containers."""
    mod = _module(value)
    if mod == "pandas":
        dtype = getattr(value, "dtype", None)
        if dtype is not None and getattr(dtype, "kind", "") == "M":
            # Any unit and time zone to UTC nanoseconds.
            return np.asarray(value.to_numpy(dtype="datetime64[ns]"))
        return value.to_numpy()
    if mod == "polars":
        return value.to_numpy()
    if mod == "pyarrow":
        return value.to_numpy(zero_copy_only=False)
    return value


def _timestamps(value: Any, channel: str) -> np.ndarray:
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "M":
            return np.ascontiguousarray(value.astype("datetime64[ns]", copy=False)).view(np.int64).reshape(-1)
        if value.dtype.kind in "iu":
            return np.ascontiguousarray(value, dtype=np.int64).reshape(-1)
        if value.dtype == object:
            return np.array([to_ns(v) for v in value.reshape(-1)], dtype=np.int64)
        raise WriteTypeMismatch(
            f"channel {channel!r} holds timestamps; got {value.dtype} values. Pass int64 nanoseconds, datetime64 or datetimes",
            code="write.type_mismatch",
        )
    if isinstance(value, (list, tuple)):
        if all(type(v) is int for v in value):
            return np.asarray(value, dtype=np.int64).reshape(-1)
        return np.array([to_ns(v) for v in value], dtype=np.int64)
    return np.array([to_ns(value)], dtype=np.int64)


def _castable(arr: np.ndarray, target: np.dtype) -> bool:
    src = arr.dtype
    if np.can_cast(src, target, "safe"):
        return True
    if src.kind in "biuf" and target.kind in "iub":
        if arr.size == 0:
            return True
        if src.kind == "f" and not bool(np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
            return False
        if target.kind == "b":
            return bool(np.all((arr == 0) | (arr == 1)))
        info = np.iinfo(target)
        return bool(arr.min() >= info.min and arr.max() <= info.max)
    # int -> float, f64 -> f32: the usual numeric conversions
    return src.kind in "iuf" and target.kind == "f"


def coerce(value: Any, data_type: str, channel: str) -> Any:
    """Values for a channel of ``data_type``: a 1-D C-contiguous numpy array of the
    channel's dtype for fixed-size types, a ``uint8`` array of 16-byte UUIDs for
    ``uuid``, a list of ``str`` (string, json) or ``bytes`` otherwise.

    Raises:
        WriteTypeMismatch: values that would lose information (e.g. 1.5 for an integer
            channel), with a hint on how to convert them.
    """
    value = _unwrap(value)
    if data_type in _VARIABLE:
        return _variable(value, data_type, channel)
    if data_type == "uuid":
        items = value if isinstance(value, (list, tuple, np.ndarray)) else [value]
        raw = b"".join((v if isinstance(v, uuid.UUID) else uuid.UUID(str(v))).bytes for v in items)
        return np.frombuffer(raw, dtype=np.uint8).copy()
    if data_type == "timestamp":
        return _timestamps(value, channel)
    target = DataType.numpy(data_type)
    if target is None:
        raise InvalidArgument(f"unknown data type {data_type!r}", code="invalid_argument")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise WriteTypeMismatch(f"channel {channel!r}: cannot convert the values to {data_type}: {e}", code="write.type_mismatch") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    elif arr.ndim != 1:
        raise InvalidArgument(f"channel {channel!r}: values must be one-dimensional, got shape {arr.shape}", code="invalid_argument")
    if arr.dtype != target:
        if not _castable(arr, target):
            raise WriteTypeMismatch(
                f"channel {channel!r} holds {data_type} samples; {arr.dtype} values would be changed by the conversion. "
                f"Convert them yourself (e.g. np.round(x).astype(np.{target.name}))",
                code="write.type_mismatch",
            )
        arr = arr.astype(target)
    return np.ascontiguousarray(arr)


def _variable(value: Any, data_type: str, channel: str) -> List[Any]:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if data_type == "json":
        items = value if isinstance(value, (list, tuple)) else [value]
        return [v if isinstance(v, str) else json.dumps(v) for v in items]
    if data_type == "string":
        items = [value] if isinstance(value, str) else list(value)
        for v in items:
            if not isinstance(v, str):
                raise WriteTypeMismatch(f"channel {channel!r} holds strings; got {type(v).__name__}", code="write.type_mismatch")
        return items
    items = [value] if isinstance(value, (bytes, bytearray, memoryview)) else list(value)
    return [bytes(v) for v in items]


def to_mapping(data: Any, values: Any = None) -> Dict[Any, Any]:
    """``{channel: values}`` from the forms writers accept:

    - a dict ``{name_or_key: values}``;
    - ``(channel, values)`` or ``([channels], [values])`` as two arguments;
    - a pandas DataFrame (columns are channels; a named ``DatetimeIndex`` is written to
      the index channel of that name) or a named pandas Series;
    - a :class:`telemetron.Frame` (e.g. read from another engine).
    """
    if values is not None:
        if isinstance(data, (list, tuple)):
            if not isinstance(values, (list, tuple)) or len(values) != len(data):
                raise InvalidArgument("pass one array of values per channel", code="invalid_argument")
            return dict(zip(data, values))
        return {data: values}
    if isinstance(data, dict):
        return data
    mod = _module(data)
    if mod == "pandas" and hasattr(data, "columns"):
        out: Dict[Any, Any] = {}
        idx = data.index
        if getattr(idx, "name", None) is not None and getattr(idx.dtype, "kind", "") == "M" and idx.name not in data.columns:
            out[idx.name] = idx
        for c in data.columns:
            out[c] = data[c]
        return out
    if mod == "pandas" and getattr(data, "name", None) is not None:
        return {data.name: data}
    to_dict = getattr(data, "to_dict", None)
    if to_dict is not None and hasattr(data, "_native"):
        return to_dict(by="key")
    raise TypeError(f"cannot write a {type(data).__name__}; pass a dict {{channel: values}}, a pandas DataFrame or (channels, values)")
