"""The README's Python quick start runs as written (embedded, and against a node)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Server

README = Path(__file__).resolve().parents[2] / "README.md"


# A single node each: the cluster backend adds nothing to what these programs show.
@pytest.mark.parametrize("backend", ["embedded", "remote"])
def test_readme_quick_start_runs(backend, tmp_path):
    section = README.read_text().split("## Python quick start")[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    server = Server(tmp_path / "data") if backend == "remote" else None
    if server is not None:
        code = code.replace('tn.open("stand-data")', f'tn.connect("{server.url}")')
    try:
        r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    finally:
        if server is not None:
            server.stop()
    assert r.returncode == 0, r.stderr
    assert "[14.7 15.2 15.9]" in r.stdout
    assert "live 16.1" in r.stdout
    assert "pressurised: True" in r.stdout
    assert "{'operator': 'ada'}" in r.stdout
