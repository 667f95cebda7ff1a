#!/usr/bin/env python3
"""Cluster figures for docs/benchmarks.md and docs/cluster.md, measured side by side in one run.

Starts its own etcd and three `telemetron serve --cluster` nodes (A, B, C) on loopback,
then measures:

- **cross-node write -> streamer latency**: a writer on node B (which stores the channel),
  a streamer on node A (fed by A's peer tap on B), against the single-node remote figure
  (writer and streamer both on B), interleaved run by run;
- **aggregate ingest**: one `bench ingest --url` process against one node, then three at
  once against three nodes, and three at once against one node (so the ratio separates
  what the cluster adds from what three client processes on two shared cores cost);
- **control handoff across nodes** (`bench control-handoff --url B --holder-url A
  --taker-url C`): a writer through A at authority 10 holds a channel stored on B; a writer
  through C takes it at 200 (set_authorities 1 -> 200) and hands it back (200 -> 1). Per
  handoff, the time from the taker's call until both writers know: the call has returned
  with control, and the holder has seen the authority notice of its loss. Against the
  single-node figure (both writers through B), interleaved run by run;
- **catalog costs** (`--parts catalog`, not run by default): channels created through B in
  batches of 100 (each batch one etcd transaction), the time until A mirrors them all, A's
  memory per mirrored channel, and ranges created through B one by one until A mirrors
  them: the figures the capacity model of docs/cluster.md is checked against.

Usage: python3 scripts/bench_cluster.py [--runs 5] [--frames 2000] [--ingest-frames 200]
       [--handoffs 1000] [--catalog-channels 20000] [--parts latency,ingest,handoff,catalog]
(`cargo build --release -p telemetron` first; etcd from scripts/ensure-deps.sh).
"""

import argparse
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from typing import Optional

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "release", "telemetron")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, what: str, secs: float = 20.0) -> None:
    deadline = time.time() + secs
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"bench_cluster: {what} did not listen on {port} within {secs} s")


def run_json(args: list) -> list:
    r = subprocess.run([BIN, *args, "--json"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"bench_cluster: {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    out = r.stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def latency(a: argparse.Namespace, urls: dict) -> str:
    single, cross = [], []
    for run in range(a.runs):
        lat = ["bench", "stream-latency", "--runs", "1", "--frames", str(a.frames), "--url", urls["B"]]
        s = run_json(lat)[0]
        c = run_json([*lat, "--stream-url", urls["A"]])[0]
        single.append(s)
        cross.append(c)
        print(
            f"latency run {run}: single-node p50 {s['p50_us']:.1f} us p99 {s['p99_us']:.1f} us "
            f"({s['received']} frames) | cross-node p50 {c['p50_us']:.1f} us p99 {c['p99_us']:.1f} us "
            f"({c['received']} frames)",
            flush=True,
        )
    sp50 = statistics.median(r["p50_us"] for r in single)
    cp50 = statistics.median(r["p50_us"] for r in cross)
    sp99 = statistics.median(r["p99_us"] for r in single)
    cp99 = statistics.median(r["p99_us"] for r in cross)
    return (
        f"write -> streamer p50: single-node {sp50:.1f} us, cross-node {cp50:.1f} us, ratio {cp50 / sp50:.2f} "
        f"(p99 {sp99:.1f} vs {cp99:.1f} us); medians of {a.runs} runs of {a.frames} frames at 1 kHz"
    )


def ingest_args(a: argparse.Namespace, url: str) -> list:
    return [BIN, "bench", "ingest", "--url", url, "--channels", "100", "--batch", "10000",
            "--frames", str(a.ingest_frames), "--runs", "1", "--json"]  # fmt: skip


def ingest(a: argparse.Namespace, targets: list) -> float:
    ps = [subprocess.Popen(ingest_args(a, u), stdout=subprocess.PIPE, text=True) for u in targets]
    total = 0.0
    for p in ps:
        out, _ = p.communicate()
        if p.returncode != 0:
            sys.exit("bench_cluster: bench ingest failed")
        total += sum(json.loads(line)["samples_per_s"] for line in out.splitlines() if line.startswith("{"))
    return total


def aggregate_ingest(a: argparse.Namespace, urls: dict) -> str:
    one, three_nodes, three_one = [], [], []
    for run in range(3):
        one.append(ingest(a, [urls["B"]]))
        three_nodes.append(ingest(a, [urls["A"], urls["B"], urls["C"]]))
        three_one.append(ingest(a, [urls["B"]] * 3))
        print(
            f"ingest run {run}: 1 client -> 1 node {one[-1] / 1e6:.0f} M samples/s | "
            f"3 clients -> 3 nodes {three_nodes[-1] / 1e6:.0f} M/s | 3 clients -> 1 node {three_one[-1] / 1e6:.0f} M/s",
            flush=True,
        )
    o, t3, t1 = statistics.median(one), statistics.median(three_nodes), statistics.median(three_one)
    return (
        f"aggregate ingest: 1 node {o / 1e6:.0f} M samples/s; 3 nodes {t3 / 1e6:.0f} M/s ({t3 / o:.2f}x); "
        f"3 clients on 1 node {t1 / 1e6:.0f} M/s ({t1 / o:.2f}x); medians of 3"
    )


def cpu_ticks() -> tuple:
    """(busy, total) jiffies of the whole machine from /proc/stat (None off Linux)."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
    except OSError:
        return (None, None)
    return (sum(v) - v[3] - v[4], sum(v))


def proc_ticks(pid: int) -> int:
    """utime + stime of a live process, in jiffies (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


class Load:
    """The machine's CPU time that is not this benchmark's, over a span: /proc/stat's busy
    time minus what this script, its waited-for children and the live processes `procs`
    (etcd and the nodes) used. On two shared cores it says whether a run had company."""

    def __init__(self, procs: list) -> None:
        self.procs = procs
        self.start = self.sample()

    def sample(self) -> Optional[tuple]:
        busy, total = cpu_ticks()
        if busy is None or total is None:
            return None
        k, me = resource.getrusage(resource.RUSAGE_CHILDREN), resource.getrusage(resource.RUSAGE_SELF)
        ours = (k.ru_utime + k.ru_stime + me.ru_utime + me.ru_stime) * os.sysconf("SC_CLK_TCK")
        return busy, total, ours + sum(proc_ticks(p.pid) for p in self.procs)

    def other(self) -> float:
        """Percent of the machine (all cores) busy with other work since the start."""
        end = self.sample()
        if self.start is None or end is None or end[1] <= self.start[1]:
            return float("nan")
        busy, total, ours = (e - s for e, s in zip(end, self.start))
        return 100 * max(0.0, busy - ours) / total


def call(url: str, path: str, body: dict) -> dict:
    """One unary request to a node (the protocol's JSON API)."""
    req = urllib.request.Request(f"{url}/api/v1/{path}", data=json.dumps(body).encode(), method="POST")
    req.add_header("content-type", "application/json")
    req.add_header("telemetron-protocol", "1")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def catalog(a: argparse.Namespace, urls: dict, procs: list) -> str:
    """The catalog's costs for the capacity model: channels created through one node (etcd
    transactions), the time until another node mirrors them, the memory a mirror costs, and
    ranges published and mirrored the same way."""
    node_a = procs[1]  # etcd, then A, B, C
    n, batch = a.catalog_channels, 100
    rss0 = rss_kib(node_a.pid)
    t0 = time.perf_counter()
    last = ""
    for i in range(0, n, batch):
        chans = [{"name": f"cap_{j}", "data_type": "f64", "virtual": True} for j in range(i, min(n, i + batch))]
        last = call(urls["B"], "channels/create", {"channels": chans})["channels"][-1]["name"]
    created = time.perf_counter() - t0
    while True:
        try:
            call(urls["A"], "channels/retrieve", {"refs": [last]})
            break
        except urllib.error.HTTPError:
            time.sleep(0.005)
    mirrored = time.perf_counter() - t0
    time.sleep(1.0)
    per_channel = (rss_kib(node_a.pid) - rss0) * 1024 / n
    r = n // 10
    t0 = time.perf_counter()
    keys = [call(urls["B"], "ranges/create", {"range": {"name": f"run {i}", "time_range": {"start": i, "end": i + 1}}})["range"]["key"]
            for i in range(r)]  # fmt: skip
    made = time.perf_counter() - t0
    while True:
        try:
            call(urls["A"], "ranges/retrieve", {"key": keys[-1]})
            break
        except urllib.error.HTTPError:
            time.sleep(0.005)
    seen = time.perf_counter() - t0
    return (
        f"catalog: {n} channels created through B in batches of {batch}: {n / created:.0f} channels/s, "
        f"all mirrored on A after {mirrored:.2f} s; A's memory +{per_channel:.0f} bytes per mirrored channel; "
        f"{r} ranges created one by one: {r / made:.0f} ranges/s, all on A after {seen:.2f} s"
    )


HANDOFF_FIELDS = ["p50_us", "p99_us", "notice_p50_us", "notice_p99_us", "ack_p50_us", "ack_p99_us", "back_p50_us", "back_p99_us"]


def handoff(a: argparse.Namespace, urls: dict, procs: list) -> list:
    """Control handoff, single-node (both writers through B) and cross-node (holder through A,
    taker through C, channel on B), alternating which goes first run by run."""
    base = ["bench", "control-handoff", "--runs", "1", "--handoffs", str(a.handoffs), "--url", urls["B"]]
    if a.open_taker:
        base.append("--open-taker")
    kinds = {"single": base, "cross": [*base, "--holder-url", urls["A"], "--taker-url", urls["C"]]}
    rows: dict = {"single": [], "cross": []}

    def show(r: dict) -> str:
        return (
            f"handoff p50 {r['p50_us']:.1f} p99 {r['p99_us']:.1f} us (notice p99 {r['notice_p99_us']:.1f}, "
            f"ack p99 {r['ack_p99_us']:.1f}, back p99 {r['back_p99_us']:.1f}; poll {r['poll_period_us']:.0f} us; "
            f"other load {r['other_load']:.0f} %)"
        )

    for run in range(a.runs):
        order = ["single", "cross"] if run % 2 == 0 else ["cross", "single"]
        for kind in order:
            load = Load(procs)
            row = run_json(kinds[kind])[0]
            row["other_load"] = load.other()
            rows[kind].append(row)
        print(f"handoff run {run}: single-node {show(rows['single'][-1])} | cross-node {show(rows['cross'][-1])}", flush=True)
    med = {k: {f: statistics.median(r[f] for r in rows[k]) for f in [*HANDOFF_FIELDS, "other_load"]} for k in rows}
    s, c = med["single"], med["cross"]
    met = "met" if c["p99_us"] <= 2000 else "NOT met"
    take = "open 200 / close" if a.open_taker else "set_authorities 1 -> 200 -> 1"
    return [
        f"control handoff ({take}; medians of {a.runs} runs of {a.handoffs} handoffs): "
        f"single-node p50 {s['p50_us']:.1f} p99 {s['p99_us']:.1f} us; cross-node p50 {c['p50_us']:.1f} p99 {c['p99_us']:.1f} us; "
        f"ratio p50 {c['p50_us'] / s['p50_us']:.2f}, p99 {c['p99_us'] / s['p99_us']:.2f}; target p99 <= 2 ms cross-node: {met}",
        f"  of which: notice (holder saw its loss) p50/p99 single {s['notice_p50_us']:.1f}/{s['notice_p99_us']:.1f}, "
        f"cross {c['notice_p50_us']:.1f}/{c['notice_p99_us']:.1f} us; ack (taker's call returned with control) "
        f"single {s['ack_p50_us']:.1f}/{s['ack_p99_us']:.1f}, cross {c['ack_p50_us']:.1f}/{c['ack_p99_us']:.1f} us; "
        f"hand back single {s['back_p50_us']:.1f}/{s['back_p99_us']:.1f}, cross {c['back_p50_us']:.1f}/{c['back_p99_us']:.1f} us; "
        f"other load (median) single {s['other_load']:.0f} %, cross {c['other_load']:.0f} % of the machine",
    ]


def main() -> None:
    global BIN
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="latency and handoff runs of each kind (interleaved)")
    ap.add_argument("--frames", type=int, default=2000, help="frames per latency run (1 kHz)")
    ap.add_argument("--ingest-frames", type=int, default=200, help="frames of 100 x 10,000 samples per ingest run")
    ap.add_argument("--handoffs", type=int, default=1000, help="control handoffs per handoff run")
    ap.add_argument("--open-taker", action="store_true", help="the taker opens a writer at 200 per handoff instead of raising")
    ap.add_argument("--catalog-channels", type=int, default=20000, help="channels the catalog part creates (and a tenth as many ranges)")
    ap.add_argument("--parts", default="latency,ingest,handoff", help="comma-separated: latency, ingest, handoff, catalog")
    ap.add_argument("--bin", default=BIN, help="the telemetron binary (default: target/release/telemetron)")
    a = ap.parse_args()
    BIN = a.bin
    parts = [p.strip() for p in a.parts.split(",") if p.strip()]
    if any(p not in ("latency", "ingest", "handoff", "catalog") for p in parts):
        sys.exit(f"bench_cluster: unknown part in --parts {a.parts!r} (latency, ingest, handoff, catalog)")
    if not os.access(BIN, os.X_OK):
        sys.exit(f"bench_cluster: build the node first: cargo build --release -p telemetron ({BIN} is missing)")
    if shutil.which("etcd") is None:
        sys.exit("bench_cluster: etcd is missing; run scripts/ensure-deps.sh")
    tmp = tempfile.mkdtemp(prefix="telemetron-cluster-bench-")
    procs = []
    whole = Load(procs)
    try:
        cport, pport = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{cport}"
        etcd = ["etcd", "--data-dir", os.path.join(tmp, "etcd"), "--listen-client-urls", etcd_url,
                "--advertise-client-urls", etcd_url, "--listen-peer-urls", f"http://127.0.0.1:{pport}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{pport}",
                "--initial-cluster", f"default=http://127.0.0.1:{pport}"]  # fmt: skip
        procs.append(subprocess.Popen(etcd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(cport, "etcd")
        urls = {}
        for name in ["A", "B", "C"]:
            port = free_port()
            serve = [BIN, "serve", "--data", os.path.join(tmp, name), "--listen", f"127.0.0.1:{port}",
                     "--cluster", etcd_url, "--name", name, "--durability", "interval"]  # fmt: skip
            procs.append(subprocess.Popen(serve, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_port(port, f"node {name}")
            urls[name] = f"http://127.0.0.1:{port}"
        print(f"etcd {etcd_url}; nodes {urls}", flush=True)

        summary = []
        if "latency" in parts:
            summary.append(latency(a, urls))
        if "ingest" in parts:
            summary.append(aggregate_ingest(a, urls))
        if "handoff" in parts:
            summary.extend(handoff(a, urls, procs))
        if "catalog" in parts:
            summary.append(catalog(a, urls, procs))
        print()
        for line in summary:
            print(line)
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(tmp, ignore_errors=True)
    # Other work on the machine during the whole run (the nodes, etcd and bench processes
    # have all been waited for by now, so their time is in RUSAGE_CHILDREN).
    print(f"other load on the machine during the run: {whole.other():.0f} % of {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
