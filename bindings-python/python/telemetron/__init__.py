"""Telemetron: a real-time telemetry and control engine, from Python.

>>> import numpy as np, telemetron as tn
>>> client = tn.open("./data")                       # or tn.connect("ws://host:9090", token=...)
>>> client.channels.create(name="time", is_index=True, retrieve_if_name_exists=True)
>>> client.channels.create(name="pressure", data_type="f64", index="time", retrieve_if_name_exists=True)
>>> start = tn.TimeStamp.now()
>>> ts = start + np.arange(1000) * tn.TimeSpan.MILLISECOND
>>> client.write(start, {"time": ts, "pressure": np.random.rand(1000)})
>>> frame = client.read(tn.TimeRange(start, start + tn.TimeSpan.SECOND), ["pressure"])
>>> frame.to_pandas().describe()

Submodules mirror the engine: :mod:`telemetron.telem` (time, data types),
:mod:`telemetron.channel`, :mod:`telemetron.framer` (writers, iterators),
:mod:`telemetron.relay` (streamers), :mod:`telemetron.control` (control sequences),
:mod:`telemetron.ranger` (ranges), :mod:`telemetron.changes` (change capture), :mod:`telemetron.flows` (dataflow pipelines),
:mod:`telemetron.errors`.
"""

from . import errors
from ._native import Channel, __version__
from .changes import Change, ChangeWatcher
from .channel import Channels, NewChannel
from .client import Client, connect, open
from .control import Control, Controller, Loop, NoValue, Tick, loop
from .errors import *  # noqa: F403  (the exception hierarchy, rooted at TelemetronError)
from .errors import LagWarning, TelemetronError
from .export import ExportProgress, ExportReport
from .flows import FlowInfo, FlowNode, Flows, Reconfigured
from .frame import Frame
from .framer import Iterator, Writer
from .observe import Levels, Observe, SeriesSummary, Summary
from .ranger import MetaData, Range, Ranges
from .relay import Streamer
from .telem import DataType, TimeRange, TimeSpan, TimeStamp

__all__ = [
    "__version__",
    "open",
    "connect",
    "Client",
    "Channel",
    "Channels",
    "NewChannel",
    "Change",
    "ChangeWatcher",
    "Frame",
    "Writer",
    "Iterator",
    "Streamer",
    "Control",
    "Controller",
    "NoValue",
    "Loop",
    "Tick",
    "loop",
    "Range",
    "Ranges",
    "Flows",
    "Levels",
    "Observe",
    "Summary",
    "SeriesSummary",
    "FlowInfo",
    "FlowNode",
    "Reconfigured",
    "ExportProgress",
    "ExportReport",
    "MetaData",
    "TimeStamp",
    "TimeSpan",
    "TimeRange",
    "DataType",
    "TelemetronError",
    "LagWarning",
    "errors",
] + list(errors.__all__)
