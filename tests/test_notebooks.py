"""Every notebook under notebooks/ runs top to bottom in a real Jupyter kernel on the embedded data
(no stale examples): nbclient executes it as `jupyter nbconvert --execute` would, cell by cell, and
fails on the first cell that raises."""

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.name for n in NOTEBOOKS])
def test_notebook_runs_in_a_kernel(notebook, tmp_path, monkeypatch):
    import nbformat  # the test extra: pip install -e ".[test]"
    from nbclient import NotebookClient

    monkeypatch.setenv("MPLBACKEND", "Agg")
    # the kernel imports this checkout's harness, whatever an editable install points to
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert code_cells and all(cell.outputs for cell in code_cells), "every code cell prints something"
    assert not any(output.output_type == "error" for cell in code_cells for output in cell.outputs)


def test_there_is_a_notebook():
    assert NOTEBOOKS
    for notebook in NOTEBOOKS:
        assert json.loads(notebook.read_text())["metadata"]["kernelspec"]["name"] == "python3"
