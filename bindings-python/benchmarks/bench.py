"""Python SDK benchmarks (a program, not a test), next to the Rust figures.

    python bindings-python/benchmarks/bench.py [--runs 3] [--only ingest,write-one,read]

Build first with a release build (`pip install .` or `maturin develop --release`) and
`cargo build --release -p telemetron` (the Rust figures come from `target/release/telemetron
bench ...`, run by this script with the same parameters). Prints one line per run and the
medians, and with --json one JSON object per scenario.

Scenarios:
- ingest: 100 float64 channels x 10,000-sample numpy frames through ``Writer.write``
  (commit after every frame, durability interval) vs the same loop in Rust on the same
  client (``_native._bench_core_ingest``, runs alternating in one process), and vs
  ``telemetron bench ingest --channels 100 --batch 10000``. Target: >= 80% of the Rust
  samples/s. With ``--url`` the same runs go to a ``telemetron serve`` node (vs
  ``telemetron bench ingest --url``). This machine's disk makes single runs noisy (bimodal: page-cache writeback
  stalls); compare medians of many runs, and the best runs.
- frame-overhead: the same frames with nothing stored (``mode="stream"``): what Python
  and the binding add per frame, free of disk noise.
- write-one: one-sample ``w.write({"time": t, "pressure": x})`` vs the same loop in Rust
  through the core's writer (``_native._bench_core_write_one``); the difference is the
  Python-side overhead. Target: < 5 us.
- read: 100 M float64 samples into numpy (``client.read`` then ``frame.series`` zero-copy
  views, and ``frame[...]`` concatenated, one copy) vs ``telemetron bench read``.
- pandas (not in the default list; needs ``pip install '.[bench]'``): 100 float64 channels x
  500,000 samples on one index, written in 10,000-sample frames, read back whole into pandas
  (``client.read(...).to_pandas()``), Arrow and polars, and one channel into numpy, side by
  side with ArcticDB (LMDB backend, the same data appended in the same 10,000-row chunks,
  ``lib.read``), runs interleaved after one untimed read of each (the page cache warm for
  both). Target: ``to_pandas`` at least as fast as ArcticDB.
- loop (not in the default list): a closed loop at 1 kHz from Python, ``for tick in
  ctrl.loop(hz=1000)``: each tick reads a sensor (``ctrl["press"]``, written at 1 kHz by
  another writer) and commands a valve (a confirmed write, index and value), for
  ``--loop-seconds`` per run. Jitter is measured in Python: how far each tick's body
  starts from its schedule (the first tick's start plus ``tick.scheduled``), p50/p99/max,
  with the core's own wake-up lateness (``loop.stats()``) and overruns beside it. Run
  embedded and against a ``telemetron serve`` node this script starts on loopback; against
  the node, a streamer in another process receives every valve command and reports how
  long after the command's timestamp it arrived. Targets: jitter p99 <= 50 us embedded,
  <= 500 us remote.
- remote-read (with ``--url``, not in the default list): 50 M float64 samples and their
  index written to a node, then read back in one ``client.read`` (800 MB over loopback).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import telemetron as tn

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "target" / "release" / "telemetron"


def rust(args: list, runs: int) -> list:
    """Rows of `telemetron bench <args> --json`."""
    out = subprocess.run([str(BIN), "bench", *args, "--runs", str(runs), "--json"], check=True, capture_output=True, text=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="telemetron-pybench-"))


_RUN = [0]


def _ingest_once(durability: str, channels: int, batch: int, frames: int, data: list, core: bool, url: str = "") -> float:
    """Seconds for one ingest run on a fresh engine (or fresh channels of the node at
    ``url``): through ``Writer.write`` (Python) or the same loop in Rust on the same
    client (``core=True``)."""
    d = scratch()
    try:
        client = tn.connect(url) if url else tn.open(d, durability=durability)
        _RUN[0] += 1
        prefix = f"pybench{os.getpid()}_{_RUN[0]}_" if url else ""
        names = [f"{prefix}ch_{i}" for i in range(channels)]
        index = f"{prefix}time"
        client.channels.create([tn.NewChannel(index, is_index=True)] + [tn.NewChannel(n, "f64", index=index) for n in names])
        if core:
            secs = tn._native._bench_core_ingest(client._native, index, names, batch, frames)
        else:
            w = client.open_writer(0, names, auto_commit=False)
            t0 = time.perf_counter()
            ts = 0
            for _ in range(frames):
                frame = {index: np.arange(ts, ts + batch, dtype=np.int64)}
                ts += batch
                for n, arr in zip(names, data):
                    frame[n] = arr
                w.write(frame)
                w.commit()
            w.close()
            secs = time.perf_counter() - t0
        client.close()
        return secs
    finally:
        shutil.rmtree(d, ignore_errors=True)


def ingest(runs: int, durability: str = "interval", url: str = "", channels: int = 100, batch: int = 10_000, frames: int = 200) -> dict:
    samples = frames * batch * channels
    data = [np.arange(batch, dtype=np.float64) * 0.5 + c for c in range(channels)]  # shared by all frames, as in Rust
    py_s, core_s = [], []
    _ingest_once(durability, channels, batch, 20, data, False, url)  # warm-up (first mappings of the process)
    for run in range(runs):
        # Python and the Rust loop alternate in this process, so both see the same conditions.
        py_s.append(_ingest_once(durability, channels, batch, frames, data, False, url))
        core_s.append(_ingest_once(durability, channels, batch, frames, data, True, url))
        print(
            f"  ingest run {run}: python {samples / py_s[-1] / 1e6:.1f} M samples/s, rust loop {samples / core_s[-1] / 1e6:.1f} M samples/s"
        )
    target = ["--url", url] if url else ["--durability", durability]
    cli = rust(["ingest", "--channels", str(channels), "--batch", str(batch), "--frames", str(frames), *target], runs)
    cli_rates = [r["samples_per_s"] for r in cli]
    print("  telemetron bench ingest runs: " + ", ".join(f"{r / 1e6:.1f}" for r in cli_rates) + " M samples/s")
    py, rs = samples / statistics.median(py_s), samples / statistics.median(core_s)
    best_py, best_rs = samples / min(py_s), samples / min(core_s)
    cl = statistics.median(cli_rates)
    print(
        f"ingest ({url or durability}): median python {py / 1e6:.1f} M/s vs rust loop {rs / 1e6:.1f} M/s ({100 * py / rs:.0f}%); "
        f"best {best_py / 1e6:.1f} vs {best_rs / 1e6:.1f} ({100 * best_py / best_rs:.0f}%); CLI median {cl / 1e6:.1f} M/s ({100 * py / cl:.0f}%)"
    )
    return {
        "scenario": "ingest",
        "durability": durability,
        "url": url,
        "python_samples_per_s": py,
        "rust_loop_samples_per_s": rs,
        "ratio": py / rs,
        "best_ratio": best_py / best_rs,
        "cli_samples_per_s": cl,
        "runs": runs,
    }


def frame_overhead(runs: int, channels: int = 100, batch: int = 10_000, frames: int = 200) -> dict:
    """Per-frame cost of ``Writer.write`` with nothing stored (``mode="stream"``, no
    streamer): numpy -> Rust conversion, the GIL round trip and the core's validation.
    An upper bound on what Python adds to each ingest frame, free of disk noise."""
    data = [np.arange(batch, dtype=np.float64) * 0.5 + c for c in range(channels)]
    names = [f"ch_{i}" for i in range(channels)]
    per = []
    for run in range(runs):
        d = scratch()
        try:
            client = tn.open(d)
            client.channels.create([tn.NewChannel("time", is_index=True)] + [tn.NewChannel(n, "f64", index="time") for n in names])
            w = client.open_writer(0, names, mode="stream")
            t0 = time.perf_counter()
            ts = 0
            for _ in range(frames):
                frame = {"time": np.arange(ts, ts + batch, dtype=np.int64)}
                ts += batch
                for n, arr in zip(names, data):
                    frame[n] = arr
                w.write(frame)
            per.append((time.perf_counter() - t0) / frames * 1e6)
            w.close()
            client.close()
        finally:
            shutil.rmtree(d, ignore_errors=True)
        print(f"  frame-overhead run {run}: {per[-1]:.1f} us per 101-series frame")
    m = statistics.median(per)
    print(f"frame-overhead median: {m:.1f} us per frame of {channels} x {batch} samples")
    return {"scenario": "frame_overhead", "us_per_frame": m, "runs": runs}


def write_one(runs: int, n: int = 200_000) -> dict:
    per_py, per_rs = [], []
    for run in range(runs):
        d = scratch()
        try:
            client = tn.open(d)
            client.channels.create([tn.NewChannel("time", is_index=True), tn.NewChannel("pressure", "f64", index="time")])
            # Rust loop first (its own writer), then the Python loop after its data.
            rs = tn._native._bench_core_write_one(client._native, "time", "pressure", 0, n)
            w = client.open_writer(n, ["pressure"], auto_commit=False)
            write = w.write
            t0 = time.perf_counter()
            for i in range(n):
                write({"time": n + i, "pressure": 1.5})
            py = time.perf_counter() - t0
            w.close()
            client.close()
        finally:
            shutil.rmtree(d, ignore_errors=True)
        per_py.append(py / n * 1e6)
        per_rs.append(rs / n * 1e6)
        print(
            f"  write-one run {run}: python {py / n * 1e6:.2f} us/write, rust {rs / n * 1e6:.2f} us/write, overhead {(py - rs) / n * 1e6:.2f} us"
        )
    p, r = statistics.median(per_py), statistics.median(per_rs)
    print(f"write-one median: python {p:.2f} us, rust {r:.2f} us, python-side overhead {p - r:.2f} us")
    return {"scenario": "write_one", "python_us": p, "rust_us": r, "overhead_us": p - r, "writes": n, "runs": runs}


def read(runs: int, samples: int = 100_000_000, batch: int = 100_000) -> dict:
    d = scratch()
    views, concat, series_counts = [], [], []
    try:
        client = tn.open(d)
        client.channels.create([tn.NewChannel("time", is_index=True), tn.NewChannel("value", "f64", index="time")])
        with client.open_writer(0, ["value"], auto_commit=False) as w:
            for k, at in enumerate(range(0, samples, batch)):
                m = min(batch, samples - at)
                w.write({"time": np.arange(at, at + m, dtype=np.int64), "value": np.arange(at, at + m, dtype=np.float64)})
                if (k + 1) % 16 == 0:
                    w.commit()
        client.close()
        for run in range(runs):
            client = tn.open(d)  # reopened each run, like the Rust bench (checksums verified again)
            t0 = time.perf_counter()
            frame = client.read(None, ["value"], include_index=False)
            parts = frame.series("value")
            t1 = time.perf_counter()
            whole = frame["value"]
            t2 = time.perf_counter()
            assert len(whole) == samples and sum(len(p) for p in parts) == samples
            assert float(whole[-1]) == samples - 1
            views.append(t1 - t0)
            concat.append(t2 - t0)
            series_counts.append(len(parts))
            print(f"  read run {run}: zero-copy views {t1 - t0:.4f} s ({len(parts)} series), one array (concatenated) {t2 - t0:.4f} s")
            del frame, parts, whole
            client.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    rust_rows = rust(["read", "--samples", str(samples), "--batch", str(batch)], runs)
    rs = statistics.median([r["seconds"] for r in rust_rows])
    for r in rust_rows:
        print(f"  rust read run {r['run']}: {r['seconds']:.4f} s ({r['series']} series)")
    v, c = statistics.median(views), statistics.median(concat)
    print(
        f"read median: rust {rs:.4f} s; python views {v:.4f} s (+{(v - rs) * 1e3:.1f} ms); python one array {c:.4f} s (+{(c - rs) * 1e3:.1f} ms)"
    )
    return {
        "scenario": "read",
        "samples": samples,
        "rust_s": rs,
        "python_views_s": v,
        "python_concat_s": c,
        "series": series_counts[0],
        "runs": runs,
    }


def pandas_vs_arcticdb(runs: int, channels: int = 100, samples: int = 500_000, batch: int = 10_000) -> dict:
    """Many channels into pandas: Telemetron vs ArcticDB on the same data, interleaved."""
    import pandas as pd
    from arcticdb import Arctic

    names = [f"c{i}" for i in range(channels)]
    rng = np.random.default_rng(3)
    values = rng.normal(size=(samples, channels))
    stamps = np.arange(samples, dtype=np.int64) * 1_000_000 + 1_700_000_000_000_000_000
    d = scratch()
    try:
        client = tn.open(d / "telemetron")
        client.channels.create([tn.NewChannel("time", is_index=True)] + [tn.NewChannel(n, "f64", index="time") for n in names])
        lib = Arctic(f"lmdb://{d / 'arctic'}").create_library("bench")
        with client.open_writer(int(stamps[0]), names) as w:  # a commit per frame, the SDK default
            for at in range(0, samples, batch):
                cols = {n: np.ascontiguousarray(values[at : at + batch, i]) for i, n in enumerate(names)}
                w.write({"time": stamps[at : at + batch], **cols})
                chunk = pd.DataFrame(values[at : at + batch], columns=names, index=pd.to_datetime(stamps[at : at + batch], unit="ns"))
                if at == 0:
                    lib.write("run", chunk)
                else:
                    lib.append("run", chunk)
        # One untimed read of each first: both then read from the page cache (a first read
        # here also verifies every chunk's checksum and maps the segments in).
        client.read(None, names).to_pandas()
        lib.read("run").data
        want = float(values[:, -1].sum())
        got: dict = {k: [] for k in ("tn_pandas", "tn_arrow", "tn_polars", "tn_one", "adb_pandas", "adb_one")}
        for run in range(runs):
            t0 = time.perf_counter()
            df = client.read(None, names).to_pandas()
            got["tn_pandas"].append(time.perf_counter() - t0)
            assert df.shape == (samples, channels) and abs(float(df[names[-1]].sum()) - want) < 1e-6 * abs(want) + 1e-6
            del df
            t0 = time.perf_counter()
            df = lib.read("run").data
            got["adb_pandas"].append(time.perf_counter() - t0)
            assert df.shape == (samples, channels)
            del df
            t0 = time.perf_counter()
            table = client.read(None, ["time", *names]).to_arrow()
            got["tn_arrow"].append(time.perf_counter() - t0)
            assert table.num_rows == samples
            del table
            t0 = time.perf_counter()
            pl_df = client.read(None, ["time", *names]).to_polars()
            got["tn_polars"].append(time.perf_counter() - t0)
            assert pl_df.height == samples
            del pl_df
            t0 = time.perf_counter()
            one = client.read(None, [names[0]])[names[0]]
            got["tn_one"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            one_adb = lib.read("run", columns=[names[0]]).data[names[0]].to_numpy()
            got["adb_one"].append(time.perf_counter() - t0)
            assert len(one) == len(one_adb) == samples
            print("  pandas run %d: " % run + ", ".join(f"{k} {v[-1] * 1e3:.1f} ms" for k, v in got.items()))
        client.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in got.items()}
    print(
        f"pandas median ({channels} ch x {samples:,}): telemetron to_pandas {med['tn_pandas'] * 1e3:.1f} ms, "
        f"ArcticDB read {med['adb_pandas'] * 1e3:.1f} ms (ArcticDB / Telemetron = {med['adb_pandas'] / med['tn_pandas']:.2f}); "
        f"to_arrow {med['tn_arrow'] * 1e3:.1f} ms, to_polars {med['tn_polars'] * 1e3:.1f} ms; one channel: "
        f"telemetron {med['tn_one'] * 1e3:.1f} ms, ArcticDB {med['adb_one'] * 1e3:.1f} ms"
    )
    return {"scenario": "pandas", "channels": channels, "samples": samples, "runs": runs, **{f"{k}_s": v for k, v in med.items()}}


def remote_read(runs: int, url: str, samples: int = 50_000_000, batch: int = 2_000_000) -> dict:
    """Write `samples` f64 values (plus their index) to a node, then time reading them all
    back in one `read` call (2 x 8 bytes per sample over loopback)."""
    if not url:
        sys.exit("remote-read needs --url (a running `telemetron serve`)")
    client = tn.connect(url)
    tag = f"rread_{os.getpid()}_{int(time.time())}"
    client.channels.create([tn.NewChannel(f"{tag}_t", is_index=True), tn.NewChannel(f"{tag}_v", "f64", index=f"{tag}_t")])
    with client.open_writer(0, [f"{tag}_v"]) as w:
        for at in range(0, samples, batch):
            m = min(batch, samples - at)
            w.write({f"{tag}_t": np.arange(at, at + m, dtype=np.int64), f"{tag}_v": np.arange(at, at + m, dtype=np.float64)})
    secs = []
    for run in range(runs):
        t0 = time.perf_counter()
        frame = client.read(None, [f"{tag}_v"])
        dt = time.perf_counter() - t0
        assert sum(len(p) for p in frame.series(f"{tag}_v")) == samples
        secs.append(dt)
        print(
            f"  remote read run {run}: {samples:,} samples + index ({samples * 16 / 1e6:.0f} MB) in {dt:.3f} s = {samples * 16 / dt / 1e9:.2f} GB/s"
        )
        del frame
    client.channels.delete([f"{tag}_v", f"{tag}_t"])
    m = statistics.median(secs)
    print(f"remote read median: {m:.3f} s = {samples * 16 / m / 1e9:.2f} GB/s")
    return {"scenario": "remote-read", "samples": samples, "seconds": m, "bytes_per_s": samples * 16 / m, "runs": runs}


_OBSERVER = r"""
import json, sys, time
import telemetron as tn
url, index, valve, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
c = tn.connect(url)
lat, n = [], 0
with c.open_streamer([index, valve]) as s:
    print("ready", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        f = s.read(timeout=0.2)
        if f is None or index not in f:
            continue
        now = time.time_ns()
        for t in f[index]:
            lat.append(now - int(t))
        n += len(f[valve])
print(json.dumps({"commands": n, "latency_ns": sorted(lat)}), flush=True)
"""


def _serve() -> tuple:
    """A `telemetron serve` node on a free loopback port: (process, url, data dir)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    data = scratch()
    proc = subprocess.Popen(
        [str(BIN), "serve", "--data", str(data), "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            tn.connect(url).close()
            return proc, url, data
        except tn.TelemetronError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                sys.exit("telemetron serve did not start")
            time.sleep(0.1)


def _pct(values: list, q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))] if values else float("nan")


def _loop_once(client: "tn.Client", url: str, seconds: float, hz: float, run: int) -> dict:
    """One closed-loop run: sensor writer thread, the sequence's loop, and (remote) an
    observer process streaming the valve."""
    import threading

    tag = f"loop_{os.getpid()}_{run}"
    client.channels.create(
        [
            tn.NewChannel(f"{tag}_press", "f64", virtual=True),
            tn.NewChannel(f"{tag}_t", is_index=True),
            tn.NewChannel(f"{tag}_valve", "u8", index=f"{tag}_t"),
        ]
    )
    press, valve, index = f"{tag}_press", f"{tag}_valve", f"{tag}_t"
    stop = threading.Event()

    def sensor() -> None:
        with client.open_writer(tn.TimeStamp.now(), [press], mode="stream", name="daq") as w:
            x = 0.0
            for _ in tn.loop(hz=hz, spin=0):
                if stop.is_set():
                    return
                x = (x + 1.0) % 200.0
                w.write({press: x})

    observer = None
    if url:
        observer = subprocess.Popen(
            [sys.executable, "-c", _OBSERVER, url, index, valve, str(seconds + 3)], stdout=subprocess.PIPE, text=True
        )
        assert observer.stdout is not None and observer.stdout.readline().strip() == "ready"
    th = threading.Thread(target=sensor, daemon=True)
    th.start()
    jitter, commands = [], 0
    with client.control.acquire(name=tag, write=[valve], read=[press], safe={valve: 0}, record=False) as ctrl:
        ctrl.wait_until_defined([press], timeout=5)
        lp = ctrl.loop(hz=hz, duration=seconds)
        t0 = s0 = None
        for tick in lp:
            now = time.perf_counter_ns()
            if t0 is None:
                t0, s0 = now, tick.scheduled
            else:
                jitter.append(now - (t0 + round((tick.scheduled - s0) * 1e9)))
            ctrl[valve] = 1 if ctrl[press] < 100.0 else 0
            commands += 1
        stats = lp.stats()
    stop.set()
    th.join()
    seen = None
    if observer is not None:
        out, _ = observer.communicate(timeout=60)
        seen = json.loads(out.strip().splitlines()[-1])
    client.channels.delete([valve, index, press])
    jitter.sort()
    row = {
        "ticks": len(jitter) + 1,
        "commands": commands,
        "overruns": int(stats["overruns"]),
        "jitter_p50_us": _pct(jitter, 0.5) / 1e3,
        "jitter_p99_us": _pct(jitter, 0.99) / 1e3,
        "jitter_max_us": jitter[-1] / 1e3 if jitter else float("nan"),
        "wake_late_p99_us": stats["late_p99"] * 1e6,
    }
    if seen is not None:
        lat = seen["latency_ns"]
        row.update(seen_commands=seen["commands"], seen_latency_p50_us=_pct(lat, 0.5) / 1e3, seen_latency_p99_us=_pct(lat, 0.99) / 1e3)
    return row


def closed_loop(runs: int, seconds: float = 10.0, hz: float = 1000.0) -> dict:
    """The 1 kHz closed loop, embedded and against a loopback node (see the module docs)."""
    out: dict = {"scenario": "loop", "hz": hz, "seconds": seconds, "runs": runs}
    proc, url, data = _serve()
    try:
        for backend in ("embedded", "remote"):
            rows = []
            for run in range(runs):
                if backend == "embedded":
                    d = scratch()
                    client = tn.open(d)
                else:
                    client = tn.connect(url)
                try:
                    row = _loop_once(client, url if backend == "remote" else "", seconds, hz, run)
                finally:
                    client.close()
                    if backend == "embedded":
                        shutil.rmtree(d, ignore_errors=True)
                extra = ""
                if "seen_commands" in row:
                    extra = (
                        f"; other process saw {row['seen_commands']}/{row['commands']} commands,"
                        f" {row['seen_latency_p50_us']:.0f}/{row['seen_latency_p99_us']:.0f} us after their timestamp (p50/p99)"
                    )
                print(
                    f"  loop {backend} run {run}: {row['ticks']} ticks at {hz:g} Hz, jitter p50 {row['jitter_p50_us']:.1f} us,"
                    f" p99 {row['jitter_p99_us']:.1f} us, max {row['jitter_max_us']:.0f} us; core wake p99"
                    f" {row['wake_late_p99_us']:.0f} us; {row['overruns']} overruns{extra}"
                )
                rows.append(row)
            med = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
            print(
                f"loop {backend} median of {runs}: jitter p99 {med['jitter_p99_us']:.1f} us"
                f" (target {'50' if backend == 'embedded' else '500'} us), max {med['jitter_max_us']:.0f} us,"
                f" overruns {med['overruns']:.0f}"
                + (f", seen by another process p99 {med['seen_latency_p99_us']:.0f} us" if "seen_latency_p99_us" in med else "")
            )
            out[backend] = med
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(data, ignore_errors=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default="ingest,frame-overhead,write-one,read")
    ap.add_argument("--read-samples", type=int, default=100_000_000)
    ap.add_argument("--durability", default="interval", help="ingest durability: none | interval | commit")
    ap.add_argument("--url", default="", help="ingest into a `telemetron serve` node instead of an embedded engine; needed by remote-read")
    ap.add_argument("--loop-seconds", type=float, default=10.0, help="length of each closed-loop run")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    if not BIN.exists():
        sys.exit(f"{BIN} is missing: run `cargo build --release -p telemetron`")
    out = []
    for s in a.only.split(","):
        if s == "ingest":
            out.append(ingest(a.runs, a.durability, a.url))
        elif s == "frame-overhead":
            out.append(frame_overhead(a.runs))
        elif s == "write-one":
            out.append(write_one(a.runs))
        elif s == "read":
            out.append(read(a.runs, a.read_samples))
        elif s == "pandas":
            out.append(pandas_vs_arcticdb(a.runs))
        elif s == "loop":
            out.append(closed_loop(a.runs, a.loop_seconds))
        elif s == "remote-read":
            out.append(remote_read(a.runs, a.url))
        else:
            sys.exit(f"unknown scenario {s!r}")
    if a.json:
        for row in out:
            print(json.dumps(row))


if __name__ == "__main__":
    main()
