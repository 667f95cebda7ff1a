#!/usr/bin/env python3
"""Cluster figures for docs/benchmarks.md and docs/cluster.md, measured side by side in one run.

Starts its own etcd and three `telemetron serve --cluster` nodes (A, B, C) on loopback,
then measures:

- **cross-node write -> streamer latency**: a writer on node B (which stores the channel),
  a streamer on node A (fed by A's peer tap on B), against the single-node remote figure
  (writer and streamer both on B), interleaved run by run;
- **aggregate ingest**: one `bench ingest --url` process against one node, then three at
  once against three nodes, and three at once against one node (so the ratio separates
  what the cluster adds from what three client processes on two shared cores cost).

Usage: python3 scripts/bench_cluster.py [--runs 5] [--frames 2000] [--ingest-frames 200]
(`cargo build --release -p telemetron` first; etcd from scripts/ensure-deps.sh).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

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
    out = subprocess.run([BIN, *args, "--json"], check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="latency runs of each kind (interleaved)")
    ap.add_argument("--frames", type=int, default=2000, help="frames per latency run (1 kHz)")
    ap.add_argument("--ingest-frames", type=int, default=200, help="frames of 100 x 10,000 samples per ingest run")
    a = ap.parse_args()
    if not os.access(BIN, os.X_OK):
        sys.exit(f"bench_cluster: build the node first: cargo build --release -p telemetron ({BIN} is missing)")
    if shutil.which("etcd") is None:
        sys.exit("bench_cluster: etcd is missing; run scripts/ensure-deps.sh")
    tmp = tempfile.mkdtemp(prefix="telemetron-cluster-bench-")
    procs = []
    try:
        cport, pport = free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{cport}"
        procs.append(
            subprocess.Popen(
                ["etcd", "--data-dir", os.path.join(tmp, "etcd"), "--listen-client-urls", etcd_url,
                 "--advertise-client-urls", etcd_url, "--listen-peer-urls", f"http://127.0.0.1:{pport}",
                 "--initial-advertise-peer-urls", f"http://127.0.0.1:{pport}",
                 "--initial-cluster", f"default=http://127.0.0.1:{pport}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
        wait_port(cport, "etcd")
        urls = {}
        for name in ["A", "B", "C"]:
            port = free_port()
            procs.append(
                subprocess.Popen(
                    [BIN, "serve", "--data", os.path.join(tmp, name), "--listen", f"127.0.0.1:{port}",
                     "--cluster", etcd_url, "--name", name, "--durability", "interval"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
            wait_port(port, f"node {name}")
            urls[name] = f"http://127.0.0.1:{port}"
        print(f"etcd {etcd_url}; nodes {urls}", flush=True)

        single, cross = [], []
        for run in range(a.runs):
            lat = ["bench", "stream-latency", "--runs", "1", "--frames", str(a.frames), "--url", urls["B"]]
            s = run_json(lat)[0]
            c = run_json(lat + ["--stream-url", urls["A"]])[0]
            single.append(s)
            cross.append(c)
            print(f"latency run {run}: single-node p50 {s['p50_us']:.1f} us p99 {s['p99_us']:.1f} us "
                  f"({s['received']} frames) | cross-node p50 {c['p50_us']:.1f} us p99 {c['p99_us']:.1f} us "
                  f"({c['received']} frames)", flush=True)
        sp50 = statistics.median(r["p50_us"] for r in single)
        cp50 = statistics.median(r["p50_us"] for r in cross)
        sp99 = statistics.median(r["p99_us"] for r in single)
        cp99 = statistics.median(r["p99_us"] for r in cross)

        def ingest(targets: list) -> float:
            args = lambda u: [BIN, "bench", "ingest", "--url", u, "--channels", "100", "--batch", "10000",
                              "--frames", str(a.ingest_frames), "--runs", "1", "--json"]
            ps = [subprocess.Popen(args(u), stdout=subprocess.PIPE, text=True) for u in targets]
            total = 0.0
            for p in ps:
                out, _ = p.communicate()
                if p.returncode != 0:
                    sys.exit("bench_cluster: bench ingest failed")
                total += sum(json.loads(line)["samples_per_s"] for line in out.splitlines() if line.startswith("{"))
            return total

        one, three_nodes, three_one = [], [], []
        for run in range(3):
            one.append(ingest([urls["B"]]))
            three_nodes.append(ingest([urls["A"], urls["B"], urls["C"]]))
            three_one.append(ingest([urls["B"]] * 3))
            print(f"ingest run {run}: 1 client -> 1 node {one[-1] / 1e6:.0f} M samples/s | "
                  f"3 clients -> 3 nodes {three_nodes[-1] / 1e6:.0f} M/s | 3 clients -> 1 node {three_one[-1] / 1e6:.0f} M/s",
                  flush=True)
        o, t3, t1 = statistics.median(one), statistics.median(three_nodes), statistics.median(three_one)
        print()
        print(f"write -> streamer p50: single-node {sp50:.1f} us, cross-node {cp50:.1f} us, ratio {cp50 / sp50:.2f} "
              f"(p99 {sp99:.1f} vs {cp99:.1f} us); medians of {a.runs} runs of {a.frames} frames at 1 kHz")
        print(f"aggregate ingest: 1 node {o / 1e6:.0f} M samples/s; 3 nodes {t3 / 1e6:.0f} M/s ({t3 / o:.2f}x); "
              f"3 clients on 1 node {t1 / 1e6:.0f} M/s ({t1 / o:.2f}x); medians of 3")
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


if __name__ == "__main__":
    main()
