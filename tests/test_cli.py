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
    assert "No slide at" in capsys.readouterr().out
