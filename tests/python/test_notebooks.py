"""Execute the notebooks in notebooks/ (outputs are not kept) against each backend, so they
cannot rot."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from conftest import Server

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS


# A single node each: the cluster backend adds nothing to what these programs show.
@pytest.mark.parametrize("backend", ["embedded", "remote"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, backend, tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    server = Server(tmp_path / "data") if backend == "remote" else None
    if server is not None:
        monkeypatch.setenv("TELEMETRON_URL", server.url)
    else:
        monkeypatch.delenv("TELEMETRON_URL", raising=False)
    try:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs, f"{path.name}: strip outputs before committing"
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        if server is not None:
            server.stop()
