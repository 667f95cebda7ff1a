"""How long a self-telemetry summary takes (docs/observability.md §7), a program, not a test.

    python bindings-python/benchmarks/observe_summary.py [--hours 24] [--runs 5]

Writes a node's worth of self-telemetry history into a fresh embedded engine (the 59
series a node at the defaults stores: 27 scalars and two 16-part latency histograms, one
reading a second, committed once per simulated hour) and times
``client.observe.summary`` over windows of 5 minutes, 1 hour and the whole history. Prints
the median of ``--runs`` per window. On a remote client the node does the same work and
sends only the summary.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

import telemetron as tn

BOUNDS = ["1e-05", "2.5e-05", "5e-05", "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.1", "1", "10", "+Inf"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d, tn.open(d) as e:
        names = [f"_telemetron/storage/x{i}" for i in range(27)]
        for h in ("_telemetron/storage/sync.duration", "_telemetron/server/request.duration"):
            names += [f"{h}/count", f"{h}/sum"] + [f"{h}/bucket/{b}" for b in BOUNDS]
        e.channels.create(name="_telemetron/time", is_index=True)
        for n in names:
            e.channels.create(name=n, data_type="float64", index="_telemetron/time")
        n = a.hours * 3600
        ts = time.time_ns() - n * 1_000_000_000 + np.arange(n, dtype=np.int64) * 1_000_000_000
        cols = {"_telemetron/time": ts} | {c: np.cumsum(np.random.default_rng(1).random(n)) for c in names}
        with e.open_writer(int(ts[0]), list(cols)) as w:
            for h in range(a.hours):
                w.write({k: v[h * 3600 : (h + 1) * 3600] for k, v in cols.items()})
                w.commit()
        print(f"{len(names)} series, {n * (len(names) + 1):,} samples over {a.hours} h")
        for window in ("5m", "1h", f"{a.hours}h"):
            runs = []
            for _ in range(a.runs):
                t = time.perf_counter()
                s = e.observe.summary(window)
                runs.append(time.perf_counter() - t)
            print(f"summary over {window:>4}: median {1000 * sorted(runs)[len(runs) // 2]:.1f} ms ({len(s)} series)")


if __name__ == "__main__":
    main()
