from __future__ import annotations

import numpy as np
import pytest

from genar._cli import main


def test_version_and_help_with_examples(capsys):
    from genar._version import __version__

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.strip() == f"genar {__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "genar demo --out genar_out" in out and "genar predict slide.svs --model" in out


def test_demo_without_data_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENAR_CACHE_DIR", str(tmp_path / "cache"))
    code = main(["demo", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")])
    assert code == 2
    out = capsys.readouterr().out
    assert "could not be found or downloaded" in out and "--data DIR" in out and "GENAR_DATA_DIR" in out


def test_demo_does_not_overwrite_output(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    assert main(["demo", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().out
    assert (out / "mine.txt").read_text() == "keep me"


@pytest.mark.her2st
def test_predict_a_slide_with_a_saved_model(c4_slides, prepared, tiny_config, tmp_path, capsys):
    """The README's command: a TIFF and a model folder in, predicted counts out."""
    import spatialdata

    import genar

    model = genar.tl.fit(prepared, train_sections=["S0"], config=tiny_config, max_epochs=1, show_progress_bar=False)
    model.train_info["spot_diameter_um"] = 100.0  # as fit records it for the her2st sections
    model.save(tmp_path / "model")
    out = tmp_path / "C4_genar.zarr"
    assert main(["predict", str(c4_slides["tiff"]), "--model", str(tmp_path / "model"), "--out", str(out)]) == 0
    assert "st pseudo-spots × 16 genes predicted" in capsys.readouterr().out
    table = spatialdata.read_zarr(out).tables["genar"]
    assert table.var_names.tolist() == model.genes and 150 < table.n_obs < 250
    assert table.layers["genar_counts"].dtype == np.int32 and "genar_counts_estimate" in table.layers
    assert main(["predict", str(c4_slides["tiff"]), "--model", str(tmp_path / "model"), "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().out
    assert main(["predict", str(tmp_path / "absent.tif"), "--model", str(tmp_path / "model")]) == 2
    assert "No slide or zarr store at" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:zarr v3 autosharding:UserWarning", "ignore:.*exceed the cap:UserWarning")
def test_embed_fit_predict_on_zarr_stores(sdata, tmp_path, capsys):
    """The three commands on a SpatialData zarr with measured counts; the input store is never written to."""
    import spatialdata

    source = tmp_path / "sections.zarr"
    sdata.write(source)
    panel = ["--n-genes", "16", "--train-sections", "S0", "--scales", "1", "4", "16", "--encoder", "color_texture"]

    embedded = tmp_path / "embedded.zarr"
    assert main(["embed", str(source), "--out", str(embedded), *panel, "--embed-precision", "32"]) == 0
    assert "80 spots embedded with 'color_texture'" in capsys.readouterr().out
    table = spatialdata.read_zarr(embedded).tables["genar"]
    assert table.n_vars == 16 and table.obsm["X_histology"].shape[0] == 80
    assert table.uns["X_histology"]["params"]["precision"] == "32"
    assert table.varm["genar_gene_group"].shape == (16, 3)
    assert table.uns["genar"]["params"]["train_sections"] == ["S0"]

    # fit prepares what its input lacks (here everything) and can write the prepared store
    model_dir, prepared = tmp_path / "model", tmp_path / "prepared.zarr"
    fit = ["fit", str(source), "--model-out", str(model_dir), "--out", str(prepared), "--val-sections", "S1"]
    assert main([*fit, "--max-epochs", "2", "--precision", "bf16-mixed", *panel]) == 0
    said = capsys.readouterr().out
    assert "precision bf16-mixed) trained on ['S0'] for 2 epochs" in said and "lowest validation loss" in said
    assert set(spatialdata.read_zarr(source).tables) == {"table"}  # the input is untouched
    assert main([*fit, "--max-epochs", "2", *panel]) == 2
    assert "--overwrite" in capsys.readouterr().out

    predicted = tmp_path / "predicted.zarr"
    assert main(["predict", str(embedded), "--model", str(model_dir), "--sections", "S1", "--out", str(predicted)]) == 0
    said = capsys.readouterr().out
    assert "80 spots × 16 genes predicted" in said and "measured counts found" in said and "pcc_10" in said
    table = spatialdata.read_zarr(predicted).tables["genar"]
    s1 = (table.obs["section"] == "S1").to_numpy()
    assert table.layers["genar_counts"].dtype == np.int32
    assert table.uns["genar_evaluation"]["summary"].index.tolist() == ["S1"]
    assert np.isfinite(table.layers["genar_counts_estimate"][s1]).all()


def test_commands_refuse_what_they_cannot_do(sdata, tmp_path, capsys):
    missing = tmp_path / "absent.zarr"
    assert main(["embed", str(missing), "--out", str(tmp_path / "x.zarr")]) == 2
    assert f"No slide or zarr store at {missing}" in capsys.readouterr().out
    folder = tmp_path / "folder"
    folder.mkdir()
    assert main(["embed", str(folder), "--out", str(tmp_path / "x.zarr")]) == 2
    assert "not a SpatialData zarr store" in capsys.readouterr().out
    assert main(["predict", str(folder), "--model", str(tmp_path / "m"), "--out", str(folder)]) == 2
    assert "is the input; write to a new path" in capsys.readouterr().out
    slide = tmp_path / "slide.tif"
    slide.write_bytes(b"")
    assert main(["fit", str(slide), "--model-out", str(tmp_path / "m")]) == 2
    assert "trains on a SpatialData zarr store with measured counts" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["fit", "--help"])
    assert "genar fit sections.zarr --train-sections" in capsys.readouterr().out
