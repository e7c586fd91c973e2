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


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:zarr v3 autosharding")  # anndata announcing a future default while writing
def test_fit_with_two_cpu_processes(prepared, tmp_path):
    del prepared.images["S0_image"], prepared.images["S1_image"]  # the script needs the table only
    prepared.write(tmp_path / "prepared.zarr")
    (tmp_path / "train.py").write_text(SCRIPT)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    result = subprocess.run(
        [sys.executable, str(tmp_path / "train.py"), str(tmp_path / "prepared.zarr"), str(tmp_path / "model")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    model = genar.GenAR.load(tmp_path / "model")
    assert model.train_info["world_size"] == 2
    assert model.train_info["n_train_spots"] == 40
    losses = model.history_frame()["train/loss"].to_numpy()
    assert len(losses) == 2 and np.isfinite(losses).all()
    table = prepared.tables["genar"]
    genar.tl.predict(prepared, model, sections="S1", show_progress_bar=False)
    assert table.layers["genar_counts"].shape == table.shape
