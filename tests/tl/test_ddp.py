"""Data-parallel training in two CPU processes (Lightning DDP, gloo backend), as a user script would run it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import genar

SCRIPT = textwrap.dedent(
    """
    import os, sys
    import spatialdata as sd
    import genar

    sdata = sd.read_zarr(sys.argv[1])
    config = genar.GenARConfig(width=16, depth=1, heads=2, mlp_ratio=2.0, batch_size=8, cap=100)
    model = genar.tl.fit(
        sdata, train_sections=["S0"], config=config, max_epochs=2, random_state=0, show_progress_bar=False,
        accelerator="cpu", devices=2, strategy="ddp",
    )
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:  # every process returns the model; one saves it
        model.save(sys.argv[2])
    """
)


def run_script(tmp_path, name: str, script: str, *args) -> str:
    """Run ``script`` as ``python name args`` in ``tmp_path`` (Lightning launches the other processes from it).

    Returns its standard error, after checking it succeeded.
    """
    (tmp_path / name).write_text(script)
    result = subprocess.run(
        [sys.executable, str(tmp_path / name), *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:zarr v3 autosharding")  # anndata announcing a future default while writing
def test_fit_with_two_cpu_processes(prepared, tmp_path):
    del prepared.images["S0_image"], prepared.images["S1_image"]  # the script needs the table only
    prepared.write(tmp_path / "prepared.zarr")
    run_script(tmp_path, "train.py", SCRIPT, tmp_path / "prepared.zarr", tmp_path / "model")
    model = genar.GenAR.load(tmp_path / "model")
    assert model.train_info["world_size"] == 2
    assert model.train_info["train_streams"] == 1  # each process trains on its own part already
    assert model.train_info["n_train_spots"] == 40
    losses = model.history_frame()["train/loss"].to_numpy()
    assert len(losses) == 2 and np.isfinite(losses).all()
    table = prepared.tables["genar"]
    genar.tl.predict(prepared, model, sections="S1", show_progress_bar=False)
    assert table.layers["genar_counts"].shape == table.shape


PREDICT_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import spatialdata as sd
    import genar

    genar.settings.verbosity = "info"  # the processes say what they gathered
    sdata = sd.read_zarr(sys.argv[1])
    model = genar.GenAR.load(sys.argv[2])
    genar.tl.predict(
        sdata, model, batch_size=7, show_progress_bar=False, accelerator="cpu", devices=2, strategy="ddp"
    )
    table = sdata.tables["genar"]
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:  # every process holds the whole result; one writes it
        np.savez(sys.argv[3], counts=table.layers["genar_counts"], estimate=table.layers["genar_counts_estimate"])
    """
)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:zarr v3 autosharding")
def test_predict_with_two_cpu_processes_equals_one_process(prepared, trained, tmp_path):
    del prepared.images["S0_image"], prepared.images["S1_image"]
    prepared.write(tmp_path / "prepared.zarr")
    trained.save(tmp_path / "model")
    out = tmp_path / "predicted.npz"
    said = run_script(tmp_path, "predict.py", PREDICT_SCRIPT, tmp_path / "prepared.zarr", tmp_path / "model", out)
    assert said.count("gathered 80 decoded spots from 2 processes") == 2  # both processes hold every spot
    distributed = np.load(out)
    genar.tl.predict(prepared, trained, batch_size=7, show_progress_bar=False)  # one process, no Lightning
    table = prepared.tables["genar"]
    np.testing.assert_array_equal(distributed["counts"], table.layers["genar_counts"])
    np.testing.assert_allclose(distributed["estimate"], table.layers["genar_counts_estimate"], rtol=1e-5, atol=1e-6)


def test_predict_through_the_trainer_in_one_process_and_its_limits(prepared, trained):
    genar.tl.predict(prepared, trained, show_progress_bar=False)
    table = prepared.tables["genar"]
    direct = table.layers["genar_counts_estimate"].copy(), table.layers["genar_counts"].copy()
    genar.tl.predict(
        prepared, trained, overwrite=True, batch_size=9, show_progress_bar=False, accelerator="cpu", devices=1
    )
    np.testing.assert_allclose(table.layers["genar_counts_estimate"], direct[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(table.layers["genar_counts"], direct[1])
    assert table.uns["genar_predictions"]["genar_counts"]["trainer"] == {"accelerator": "cpu", "devices": "1"}
    with pytest.raises(ValueError, match=r"`n_paths` and `n_samples` must be 1 and `device` unset.*n_samples=5"):
        genar.tl.predict(prepared, trained, overwrite=True, n_samples=5, devices=1, accelerator="cpu")


EMBED_SCRIPT = textwrap.dedent(
    """
    import os, sys
    import numpy as np
    import spatialdata as sd
    import genar

    genar.settings.verbosity = "info"
    sdata = sd.read_zarr(sys.argv[1])
    genar.pp.embed_patches(
        sdata, encoder="color_texture", key_added="X_ddp", batch_size=16, show_progress_bar=False,
        accelerator="cpu", devices=2, strategy="ddp",
    )
    if int(os.environ.get("LOCAL_RANK", "0")) == 0:
        np.save(sys.argv[2], sdata.tables["genar"].obsm["X_ddp"])
    """
)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:zarr v3 autosharding")
def test_embed_with_two_cpu_processes_equals_one_process(prepared, tmp_path):
    prepared.write(tmp_path / "prepared.zarr")  # with its images: the processes read the patches themselves
    out = tmp_path / "features.npy"
    said = run_script(tmp_path, "embed.py", EMBED_SCRIPT, tmp_path / "prepared.zarr", out)
    assert said.count("gathered 80 embedded patches from 2 processes") == 2
    table = prepared.tables["genar"]
    np.testing.assert_allclose(np.load(out), table.obsm["X_histology"], rtol=1e-5, atol=1e-6)  # one process's


def test_embed_through_the_trainer_in_one_process(prepared):
    table = prepared.tables["genar"]
    genar.pp.embed_patches(
        prepared, encoder="color_texture", key_added="X_trainer", show_progress_bar=False, accelerator="cpu", devices=1
    )
    np.testing.assert_allclose(table.obsm["X_trainer"], table.obsm["X_histology"], rtol=1e-5, atol=1e-6)
    assert table.uns["X_trainer"]["params"]["device"] == "cpu"
    with pytest.raises(ValueError, match=r"as `accelerator=`, not `device`='cpu'"):
        genar.pp.embed_patches(prepared, encoder="color_texture", key_added="X2", device="cpu", devices=1)
