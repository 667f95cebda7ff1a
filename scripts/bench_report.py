#!/usr/bin/env python3
"""Run the engine benchmarks (`telemetron bench ... --json`) and print a Markdown table of
medians, one row per scenario, with the exact command used. Used for docs/benchmarks.md.

Usage: python3 scripts/bench_report.py [--runs N] [--bin target/release/telemetron] [--only NAME]
"""
import argparse
import json
import statistics
import subprocess
import sys

SCENARIOS = [
    ("ingest 100 ch x 10k, interval", ["ingest", "--channels", "100", "--batch", "10000", "--durability", "interval"], "samples_per_s", "100 M samples/s"),
    ("ingest 10k ch x 1k, interval", ["ingest", "--channels", "10000", "--batch", "1000", "--durability", "interval"], "samples_per_s", ">= 70% of the row above"),
    ("ingest 1 ch, 1-sample frames, commit every 1000", ["ingest", "--channels", "1", "--batch", "1", "--commit-every", "1000"], "frames_per_s", "1 M frames/s"),
    ("ingest 1 ch, 1-sample frames, commit every frame", ["ingest", "--channels", "1", "--batch", "1", "--frames", "300000"], "frames_per_s", "(no target)"),
    ("read 100 M samples of one channel", ["read", "--samples", "100000000"], "bytes_per_s", "3 GB/s"),
    ("commit, durability=commit", ["commit", "--durability", "commit"], "p50_us", "p50 < 400 us"),
    ("stream-latency at 1 kHz", ["stream-latency", "--rate", "1000"], "p99_us", "p99 < 20 us"),
    ("fanout, 100 subscribers", ["fanout", "--subscribers", "100"], "samples_per_s", "50 M samples/s delivered"),
    ("fanout, 100 subscribers at 1 kHz", ["fanout", "--subscribers", "100", "--rate", "1000"], "p99_us", "baseline for the slow-subscriber row"),
    ("fanout, 100 subscribers at 1 kHz + 1 slow", ["fanout", "--subscribers", "100", "--rate", "1000", "--slow-ms", "20"], "p99_us", "<= 2x the row above"),
    ("control-handoff", ["control-handoff"], "p99_us", "p99 < 50 us"),
]


def fmt(key, v):
    if key.endswith("_us"):
        return f"{v:.1f} us"
    if key == "bytes_per_s":
        return f"{v / 1e9:.2f} GB/s"
    if v >= 1e9:
        return f"{v / 1e9:.2f} G/s"
    if v >= 1e6:
        return f"{v / 1e6:.1f} M/s"
    return f"{v / 1e3:.1f} k/s"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bin", default="target/release/telemetron")
    ap.add_argument("--only", default=None, help="substring of a scenario name")
    a = ap.parse_args()
    print("| scenario | median | runs (each) | target | command |")
    print("|---|---|---|---|---|")
    for name, args, key, target in SCENARIOS:
        if a.only and a.only not in name:
            continue
        cmd = [a.bin, "bench", *args, "--runs", str(a.runs), "--json"]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"| {name} | FAILED: {out.stderr.strip()[:120]} | | {target} | `{' '.join(cmd)}` |")
            continue
        rows = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
        vals = [r[key] for r in rows]
        extra = ""
        if key in ("p50_us", "p99_us") and "p99_us" in rows[0]:
            extra = f" (p50 {statistics.median(r['p50_us'] for r in rows):.1f} us)" if key == "p99_us" else f" (p99 {statistics.median(r['p99_us'] for r in rows):.1f} us)"
        each = ", ".join(fmt(key, v) for v in vals)
        print(f"| {name} | **{fmt(key, statistics.median(vals))}**{extra} | {each} | {target} | `telemetron bench {' '.join(args)} --runs {a.runs}` |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
