"""Export to Parquet and CSV files: :meth:`Client.export`, :meth:`Range.to_parquet` and
:meth:`Range.to_csv`.

The Rust core does the work (``Client::export``): it reads the channels in chunks sized from
``memory_budget``, converts each chunk to an Arrow record batch and appends it to the file,
so exporting a range far larger than memory uses a bounded amount of it. The file appears
under its name only when complete; a failed or cancelled export (an exception in the
``progress`` callback, or Ctrl-C) leaves no partial file and keeps any older one.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, List, Optional, Union

__all__ = ["ExportProgress", "ExportReport", "ProgressLike"]


@dataclass(frozen=True)
class ExportProgress:
    """Reported after every chunk written."""

    #: Rows written so far.
    rows: int
    #: Sample bytes read so far.
    bytes: int
    #: How far through the range's data, 0.0 to 1.0 (by time).
    fraction: float
    #: Seconds since the export started.
    elapsed: float


@dataclass(frozen=True)
class ExportReport:
    """What an export wrote."""

    path: Path
    #: ``"parquet"`` or ``"csv"``.
    format: str
    #: Column names, the index first.
    columns: List[str]
    rows: int
    #: Sample bytes read.
    bytes: int
    #: Size of the file written.
    file_bytes: int


#: ``True`` for a progress line on stderr, or a callable taking an :class:`ExportProgress`.
ProgressLike = Union[bool, None, Callable[[ExportProgress], Any]]


def _stderr_line(p: ExportProgress) -> None:
    mb = p.bytes / 1e6
    rate = mb / p.elapsed if p.elapsed > 0 else 0.0
    end = "\n" if p.fraction >= 1.0 else ""
    print(f"\rexport: {p.fraction * 100:5.1f}%  {p.rows:,} rows  {mb:.1f} MB  {rate:.1f} MB/s   ", end=end, file=sys.stderr, flush=True)


def run_export(
    native: Any,
    path: Union[str, Path],
    start: int,
    end: int,
    channels: Any,
    format: Optional[str],
    memory_budget: int,
    progress: ProgressLike,
) -> ExportReport:
    """Call the native export with a progress adapter; shared by Client and Range."""
    if progress is True:
        report: Optional[Callable[[ExportProgress], Any]] = _stderr_line
    elif progress is False or progress is None:
        report = None
    elif callable(progress):
        report = progress
    else:
        raise TypeError("progress must be True, False, None or a callable taking an ExportProgress")

    def cb(rows: int, nbytes: int, fraction: float, elapsed: float) -> None:
        if report is not None:
            report(ExportProgress(rows, nbytes, fraction, elapsed))

    if isinstance(channels, (str, int)):
        channels = [channels]
    d = native.export(str(path), start, end, channels, format, int(memory_budget), cb)
    return ExportReport(Path(d["path"]), d["format"], list(d["columns"]), d["rows"], d["bytes"], d["file_bytes"])
