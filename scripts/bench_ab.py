#!/usr/bin/env python3
"""Compare two builds of `telemetron` on the engine benchmarks, interleaved run by run.

On a shared machine, load drifts over minutes; running base and head alternately (base, head,
base, head, ...) exposes both to the same drift, so the ratio of their medians is meaningful
even when the absolute figures are not. Scenarios are those of scripts/bench_report.py.
Prints one Markdown table: medians, head/base ratio, every run, and the load seen.

Usage: python3 scripts/bench_ab.py --base OLD/telemetron --head target/release/telemetron [--runs 5] [--only NAME]
Build the base in a worktree: git worktree add /tmp/base REV && cargo build --release -p telemetron (there).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_report import SCENARIOS, fmt  # noqa: E402


def one_run(binary: str, args: list, key: str, cwd: str) -> float:
    out = subprocess.run([binary, "bench", *args, "--runs", "1", "--json"], capture_output=True, text=True, cwd=cwd)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not rows:
        sys.exit(f"bench_ab: {binary} bench {' '.join(args)} failed: {out.stderr.strip()[-400:]}")
    return rows[0][key]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True, help="the telemetron binary to compare against")
    ap.add_argument("--head", required=True, help="the telemetron binary under test")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--only", default=None, help="substring of a scenario name")
    a = ap.parse_args()
    bins = {"base": os.path.abspath(a.base), "head": os.path.abspath(a.head)}
    loads = []
    print("| scenario | base median | head median | head / base | base runs | head runs |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="telemetron-ab-") as cwd:
        for name, args, key, _target in SCENARIOS:
            if a.only and a.only not in name:
                continue
            got = {"base": [], "head": []}
            for i in range(a.runs):
                print(f"bench_ab: {name}: run {i + 1}/{a.runs}", file=sys.stderr, flush=True)
                for which in ("base", "head"):
                    got[which].append(one_run(bins[which], args, key, cwd))
                    loads.append(os.getloadavg()[0])
            mb, mh = statistics.median(got["base"]), statistics.median(got["head"])
            each = {w: ", ".join(fmt(key, v) for v in got[w]) for w in got}
            print(f"| {name} ({key}) | {fmt(key, mb)} | {fmt(key, mh)} | {mh / mb:.2f} | {each['base']} | {each['head']} |", flush=True)
    if loads:
        print(f"\n1-minute load during the runs: median {statistics.median(loads):.1f}, range {min(loads):.1f}-{max(loads):.1f}.")


if __name__ == "__main__":
    main()
