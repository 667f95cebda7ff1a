#!/usr/bin/env python3
"""Fail when a dependency would be compiled with different features by the workspace's
separate cargo invocations (the CLI build, its tests, the Python and the Node SDK builds).

Each difference makes cargo compile that crate, and everything that depends on it, once
more in CI. hack/Cargo.toml asks for the union of the features; this script tells you what
to add there when a new dependency brings a new difference.
"""

import collections
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILDS = {
    "cargo build -p telemetron": ["-p", "telemetron", "-e", "normal,build"],
    "cargo test -p telemetron": ["-p", "telemetron", "-e", "normal,build,dev"],
    "maturin (telemetron-python)": ["-p", "telemetron-python", "-e", "normal,build"],
    "napi (telemetron-node)": ["-p", "telemetron-node", "-e", "normal,build"],
}


def features(args: list[str]) -> dict[str, set[str]]:
    out = subprocess.run(
        ["cargo", "tree", "--locked", "--prefix", "none", "-f", "{p} {f}", *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    found: dict[str, set[str]] = collections.defaultdict(set)
    for line in out.splitlines():
        parts = line.split(" ")
        if len(parts) < 2:
            continue
        feats = parts[2] if len(parts) > 2 and not parts[2].startswith("(") else ""
        found[f"{parts[0]} {parts[1]}"].add(feats)
    return found


def main() -> int:
    trees = {name: features(args) for name, args in BUILDS.items()}
    differing = 0
    for crate in sorted(set().union(*trees.values())):
        seen = {name: frozenset(tree[crate]) for name, tree in trees.items() if crate in tree}
        if len(set(seen.values())) > 1:
            differing += 1
            print(f"{crate} is compiled with different features:")
            for name, feats in seen.items():
                print(f"    {name}: {' | '.join(sorted(feats)) or '(none)'}")
    if differing:
        print(f"\n{differing} crate(s) differ: add the union of their features to hack/Cargo.toml")
        return 1
    print(f"one feature set per crate across {len(BUILDS)} cargo invocations")
    return 0


if __name__ == "__main__":
    sys.exit(main())
