"""The tutorials are stored without outputs and run from top to bottom (with a tiny configuration) on the real data."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
TUTORIALS = sorted((REPO / "tutorials").glob("*.ipynb"))

#: Replaces the quickstart's parameters so that it runs in about a minute: a tiny model, three epochs, a fast
#: encoder. The high learning rate makes the predictions vary between spots (measured: ~95 of 200 genes), which
#: the clustering step needs; at lr 3e-3 two epochs predict the same counts everywhere.
QUICK = """
MAX_EPOCHS = 3
ENCODER = "color_texture"
CONFIG = genar.GenARConfig(width=16, depth=1, heads=2, mlp_ratio=2.0, batch_size=64, lr=1e-2)
""".strip()


def test_there_are_tutorials():
    assert [p.name for p in TUTORIALS][:2] == ["01_quickstart.ipynb", "02_hne_only.ipynb"]


@pytest.mark.parametrize("path", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_is_stored_without_outputs(path):
    # The her2st data have no stated licence: nothing derived from them (figures, tables) may enter the repository.
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} holds outputs; clear them (tutorials/execute.py writes elsewhere)"
            assert cell.execution_count is None


def _with_parameters(notebook, code: str):
    """Insert ``code`` after the cell tagged ``parameters`` (as papermill does); it must exist exactly once."""
    tagged = [i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "the tutorial needs exactly one cell tagged 'parameters'"
    cell = nbformat.v4.new_code_cell("import genar\n" + code)
    notebook.cells.insert(tagged[0] + 1, cell)
    return notebook


def _outputs(cell, kind: str) -> list:
    return [o for o in cell.outputs if kind in o.get("data", {})]


def _run(name: str, her2st_path, genar_cache, tmp_path):
    """Execute a tutorial with the quick parameters; return it with its outputs."""
    from nbclient import NotebookClient

    notebook = _with_parameters(nbformat.read(REPO / "tutorials" / name, as_version=4), QUICK)
    env = dict(os.environ)
    env.pop("MPLBACKEND", None)  # the inline backend, as in Jupyter, so figures become outputs
    env.update(GENAR_DATA_DIR=str(her2st_path.parent), GENAR_CACHE_DIR=str(genar_cache), TMPDIR=str(tmp_path))
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": tmp_path}})
    client.execute(env=env)  # raises CellExecutionError, with the cell and traceback, if any cell fails
    assert not any(o.get("output_type") == "error" for c in notebook.cells for o in c.get("outputs", []))
    return notebook


@pytest.mark.slow
def test_hne_only_tutorial_predicts_pseudo_spots_and_compares_domains(her2st_sdata, her2st_path, genar_cache, tmp_path):
    notebook = _run("02_hne_only.ipynb", her2st_path, genar_cache, tmp_path)
    cells = {c.source: c for c in notebook.cells if c.cell_type == "code"}
    plotting = [c for source, c in cells.items() if "plt.subplots" in source]
    assert len(plotting) == 3
    for cell in plotting:
        assert _outputs(cell, "image/png"), f"no figure from:\n{cell.source}"
    table = next(c for s, c in cells.items() if "ARI vs measured" in s)
    text = _outputs(table, "text/plain")[0]["data"]["text/plain"]
    assert "GenAR counts (pseudo-spots)" in text and "shuffled" in text
    shown = next(c for s, c in cells.items() if "genar.tl.predict(hne, model)" in s)
    result = next(o for o in shown.outputs if o["output_type"] == "execute_result")  # not the progress bars
    assert "genar_counts" in result["data"]["text/plain"] and "200" in result["data"]["text/plain"]


@pytest.mark.slow
def test_quickstart_runs_and_shows_its_results(her2st_sdata, her2st_path, genar_cache, tmp_path):
    notebook = _run("01_quickstart.ipynb", her2st_path, genar_cache, tmp_path)
    cells = {c.source: c for c in notebook.cells if c.cell_type == "code"}
    plotting = [c for source, c in cells.items() if "genar.pl." in source or "plt.subplots" in source]
    assert len(plotting) >= 6
    for cell in plotting:
        assert _outputs(cell, "image/png"), f"no figure from:\n{cell.source}"
    metrics = next(c for s, c in cells.items() if "tl.evaluate(sdata, predicted_layer=layer" in s)
    table = _outputs(metrics, "text/plain")[0]["data"]["text/plain"]
    for word in ("genar, estimate", "genar, counts", "ridge, estimate", "mean", "pcc_10", "pcc_50", "n_pcc_200", "mse"):
        assert word in table
    domains = next(c for s, c in cells.items() if "ARI vs measured" in s)
    table = _outputs(domains, "text/plain")[0]["data"]["text/plain"]
    assert "ARI vs measured" in table and "genar_counts" in table
    svg = next(c for s, c in cells.items() if "sq.gr.spatial_autocorr" in s)
    said = "".join(o.get("text", "") for o in svg.outputs if o.get("output_type") == "stream")
    assert "of the 20 most spatially variable measured genes" in said and "Spearman of Moran's I" in said
    assert "genar_counts" in _outputs(svg, "text/plain")[0]["data"]["text/plain"]
    saved = next(c for s, c in cells.items() if "model.save" in s)
    assert "her2st_genar.zarr" in _outputs(saved, "text/plain")[0]["data"]["text/plain"]
    assert not any(o.get("output_type") == "error" for c in notebook.cells for o in c.get("outputs", []))
