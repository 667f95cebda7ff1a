"""Many writer sessions on one index (a program, not a test): issue 12 asks for time lookup
in O(log n) over domains.

    python bindings-python/benchmarks/many_domains.py [--writes 100000] [--reads 2000]

Every ``client.write`` is its own writer session, so it starts a new domain of the index:
a campaign written one sample at a time makes one domain per sample. This writes
``--writes`` one-sample frames that way (embedded, durability none), then reads a 1 ns
window around a random written sample ``--reads`` times and checks the value. Prints the
write time and the read latency p50/p90.
"""

import argparse
import statistics
import tempfile
import time

import numpy as np
import telemetron as tn


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--writes", type=int, default=100_000, help="one-sample writes, each its own domain")
    ap.add_argument("--reads", type=int, default=2_000, help="narrow reads to time")
    a = ap.parse_args()
    n = max(1, a.writes)
    with tempfile.TemporaryDirectory() as d:
        c = tn.open(d, durability="none")
        c.channels.create([tn.NewChannel("t", is_index=True), tn.NewChannel("v", "f64", index="t")])
        t0 = time.perf_counter()
        for i in range(n):
            c.write(i * 1_000_000, {"t": np.array([i * 1_000_000], dtype=np.int64), "v": np.array([float(i)])})
        wrote = time.perf_counter() - t0
        times = []
        for k in range(a.reads):
            i = (k * 7919) % n
            t = time.perf_counter()
            f = c.read((i * 1_000_000, i * 1_000_000 + 1), ["v"])
            times.append(time.perf_counter() - t)
            assert f["v"].tolist() == [float(i)], f"read {i} returned {f['v'].tolist()}"
        times.sort()
        p90 = times[int(len(times) * 0.9)]
        print(f"{n} domains: {n} writes in {wrote:.1f} s; 1 ns read p50 {statistics.median(times) * 1e6:.1f} us, p90 {p90 * 1e6:.1f} us")


if __name__ == "__main__":
    main()
