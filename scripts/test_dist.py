#!/usr/bin/env python3
"""Install the packages `make dist` built as a user would, and run the README examples.

`make dist` leaves in dist/ an abi3 manylinux wheel (maturin) and an npm tarball that carries
the prebuilt addon (npm pack). This script installs each into a fresh environment whose PATH
has no Rust toolchain (so nothing can quietly compile from source), then runs the README's
Python and TypeScript quick starts from that environment, unmodified, and checks what they
print. `make test-dist` (part of `make test`) builds the packages and runs it.

Usage: python3 scripts/test_dist.py [--dist dist]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# What a user downloads: the wheel and the npm tarball measured 11 MB each when this
# limit was set (2026-12-06).
MAX_PACKAGE_MB = 60


def fail(msg: str) -> None:
    print(f"test_dist: FAILED: {msg}", file=sys.stderr)
    sys.exit(1)


def only(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    if len(found) != 1:
        fail(f"expected exactly one {pattern} in {dist}, found {[p.name for p in found]}; run `make dist`")
    return found[0]


def toolchain_free_env(home: Path) -> dict:
    """The caller's environment with every directory holding cargo or rustc off PATH."""
    keep = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not any((Path(d) / t).exists() for t in ("cargo", "rustc", "rustup"))]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CARGO", "RUSTUP", "RUSTC", "VIRTUAL_ENV", "PYTHON"))}
    env.update(PATH=os.pathsep.join(keep), HOME=str(home), CARGO_HOME=str(home / "no-cargo"), RUSTUP_HOME=str(home / "no-rustup"))
    for tool in ("cargo", "rustc", "maturin"):
        if shutil.which(tool, path=env["PATH"]):
            fail(f"{tool} is still on the clean PATH ({shutil.which(tool, path=env['PATH'])})")
    return env


def readme_code(heading: str, fence: str) -> str:
    section = README.read_text().split(heading)[1]
    m = re.search(rf"```{fence}\n(.*?)```", section, re.S)
    if m is None:
        fail(f"README has no ```{fence} block under {heading!r}")
    return m.group(1)


def run(cmd: list, env: dict, cwd: Path, what: str) -> str:
    shown = " ".join("<code>" if "\n" in str(c) else str(c) for c in cmd)
    print(f"test_dist: {what}: {shown}", flush=True)
    r = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        fail(f"{what} exited with {r.returncode}\n--- stdout\n{r.stdout}\n--- stderr\n{r.stderr}")
    return r.stdout


def expect(out: str, wanted: list, what: str) -> None:
    missing = [w for w in wanted if w not in out]
    if missing:
        fail(f"{what} did not print {missing}; it printed:\n{out}")


def check_wheel(wheel: Path, work: Path, env: dict) -> None:
    if not re.search(r"-cp3\d+-abi3-manylinux[^-]*_x86_64\.whl$", wheel.name):
        fail(f"{wheel.name} is not an abi3 manylinux wheel")
    venv = work / "venv"
    run([sys.executable, "-m", "venv", str(venv)], env, work, "fresh virtualenv")
    py = str(venv / "bin" / "python")
    # --only-binary: numpy and our package must install without compiling anything.
    # The quick start prints a pandas frame: the `pandas` extra, as the README says.
    run([py, "-m", "pip", "install", "--quiet", "--only-binary", ":all:", f"{wheel}[pandas]"], env, work, "pip install the wheel")
    app = work / "py-app"
    app.mkdir()
    out = run([py, "-c", readme_code("## Python quick start", "python")], env, app, "README Python quick start")
    expect(out, ["[14.7 15.2 15.9]", "live 16.1", "pressurised: True", "{'operator': 'ada'}"], "the Python quick start")
    where = run([py, "-c", "import telemetron, sys; print(telemetron.__file__)"], env, app, "where telemetron was imported from")
    if not where.strip().startswith(str(venv)):
        fail(f"telemetron was imported from {where.strip()}, not from the fresh virtualenv")


def check_tarball(tarball: Path, work: Path, env: dict) -> None:
    app = work / "node-app"
    app.mkdir()
    (app / "package.json").write_text('{"name": "stand-app", "version": "1.0.0", "private": true, "type": "module"}\n')
    run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", str(tarball)], env, app, "npm install the tarball")
    addons = list((app / "node_modules" / "telemetron").rglob("*.node"))
    if not addons:
        fail("the installed npm package carries no prebuilt .node addon")
    # The README's snippet as written: `from 'telemetron'` resolves to the installed package.
    (app / "quickstart.mjs").write_text(readme_code("## TypeScript quick start", "ts"))
    out = run(["node", "quickstart.mjs"], env, app, "README TypeScript quick start")
    expect(out, ["Float64Array(3) [ 14.7, 15.2, 15.9 ]", "live 16.1", "pressurised: true"], "the TypeScript quick start")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dist", default=str(ROOT / "dist"), help="where `make dist` put the packages")
    a = ap.parse_args()
    dist = Path(a.dist)
    wheel = only(dist, "telemetron-*.whl")
    tarball = only(dist, "telemetron-*.tgz")
    for pkg in (wheel, tarball):
        # Debug info is stripped from the extension and the addon (Cargo.toml); with it each
        # package is about 250 MB, which every user would download.
        mb = pkg.stat().st_size / 1e6
        if mb > MAX_PACKAGE_MB:
            fail(f"{pkg.name} is {mb:.0f} MB (at most {MAX_PACKAGE_MB}): is debug info stripped from the native library?")
    with tempfile.TemporaryDirectory(prefix="telemetron-dist-") as tmp:
        work = Path(tmp)
        (work / "home").mkdir()
        env = toolchain_free_env(work / "home")
        check_wheel(wheel, work, env)
        check_tarball(tarball, work, env)
    print(f"test_dist: ok: {wheel.name} and {tarball.name} install without a Rust toolchain and run the README examples")


if __name__ == "__main__":
    main()
