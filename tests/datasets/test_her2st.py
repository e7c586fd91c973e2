from __future__ import annotations

import gzip
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import genar
from genar.datasets import HER2ST_SECTIONS
from genar.datasets._download import fetch, sha256sum
from genar.datasets._her2st import _resolve_root


def test_sections_are_validated():
    with pytest.raises(ValueError, match=r"Available sections: \['B4', 'C2', 'C3', 'C4'\]"):
        genar.datasets.her2st(sections=["A1"])


def test_missing_files_are_listed(tmp_path):
    (tmp_path / "ST-cnts").mkdir()
    with pytest.raises(FileNotFoundError, match=r"missing: \['ST-cnts/C2.tsv.gz'"):
        genar.datasets.her2st(tmp_path, sections="C2")


def test_env_var_folder_must_hold_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAR_DATA_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"GENAR_DATA_DIR"):
        genar.datasets.her2st(sections="C2")


def test_fetch_checks_sha256_and_keeps_nothing_on_mismatch(tmp_path):
    src = tmp_path / "remote.bin"
    src.write_bytes(b"genar" * 1000)
    good = sha256sum(src)
    target = tmp_path / "cache" / "file.bin"
    with pytest.raises(OSError, match="Checksum mismatch"):
        fetch(src.as_uri(), target, "0" * 64)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []  # no partial file left behind
    assert fetch(src.as_uri(), target, good) == target
    assert target.read_bytes() == src.read_bytes()
    # a cached file with the right checksum is not fetched again, even when the source is gone
    src.unlink()
    assert fetch(src.as_uri(), target, good) == target
    # a corrupted cached file is fetched again (here it cannot be: the error shows a re-download was tried)
    target.write_bytes(b"corrupt")
    with pytest.raises(OSError, match="remote.bin"):  # urllib: the source is gone
        fetch(src.as_uri(), target, good)


def test_download_into_cache_from_file_url(her2st_path, tmp_path, monkeypatch):
    monkeypatch.delenv("GENAR_DATA_DIR", raising=False)
    monkeypatch.setenv("GENAR_CACHE_DIR", str(tmp_path / "cache"))
    root = _resolve_root(None, ["C2"], base_url=her2st_path.as_uri())
    assert root == tmp_path / "cache" / "her2st"
    files = HER2ST_SECTIONS["C2"]
    for rel, sha in zip(files[0::2], files[1::2], strict=True):
        assert sha256sum(root / rel) == sha


def test_download_refuses_tampered_remote(her2st_path, tmp_path, monkeypatch):
    remote = tmp_path / "remote"
    shutil.copytree(her2st_path, remote)
    path = remote / HER2ST_SECTIONS["C2"].counts
    path.chmod(0o644)
    with gzip.open(path, "ab") as fh:
        fh.write(b"tampered")
    monkeypatch.delenv("GENAR_DATA_DIR", raising=False)
    monkeypatch.setenv("GENAR_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(OSError, match="Checksum mismatch"):
        _resolve_root(None, ["C2"], base_url=remote.as_uri())


@pytest.mark.her2st
def test_her2st_layout(her2st_sdata):
    sdata = her2st_sdata
    table = sdata.tables["table"]
    assert sorted(sdata.images) == ["B4_image", "C2_image", "C3_image", "C4_image"]
    assert sorted(sdata.shapes) == ["B4_spots", "C2_spots", "C3_spots", "C4_spots"]
    assert table.n_obs == 283 + 187 + 180 + 184
    assert table.n_vars == 14107  # genes measured in all four sections
    assert sparse.issparse(table.X) and table.X.dtype == np.int32
    assert table.X.data.min() >= 0
    assert table.obs["section"].value_counts().to_dict() == {"B4": 283, "C2": 187, "C3": 180, "C4": 184}
    attrs = table.uns["spatialdata_attrs"]
    assert attrs["region_key"] == "region" and attrs["instance_key"] == "instance_id"
    assert sorted(attrs["region"]) == sorted(sdata.shapes)
    for section in ["B4", "C2", "C3", "C4"]:
        scale = table.uns["spatial"][section]["scalefactors"]
        assert 0.68 < scale["microns_per_pixel"] < 0.70
        assert 143 < scale["spot_diameter_fullres"] < 147
        shapes = sdata.shapes[f"{section}_spots"]
        np.testing.assert_allclose(shapes["radius"], scale["spot_diameter_fullres"] / 2)
        rows = (table.obs["section"] == section).to_numpy()
        np.testing.assert_allclose(
            np.column_stack([shapes.geometry.x, shapes.geometry.y])[table.obs["instance_id"][rows]],
            table.obsm["spatial"][rows],
        )
        image = sdata.images[f"{section}_image"]
        assert len(image.children) == 5  # full resolution + 4 downsampled levels
        assert type(image["scale0"].ds["image"].data).__name__ == "Array"  # dask: read lazily
    assert set(sdata.coordinate_systems) == {"B4", "C2", "C3", "C4"}


@pytest.mark.her2st
def test_her2st_counts_match_the_files(her2st_sdata, her2st_path):
    table = her2st_sdata.tables["table"]
    raw = pd.read_csv(her2st_path / "ST-cnts" / "C3.tsv.gz", sep="\t", index_col=0)
    genes = ["ERBB2", "KRT19", table.var_names[123]]
    rows = (table.obs["section"] == "C3").to_numpy()
    ours = pd.DataFrame(table[rows, genes].X.toarray(), index=table.obs["spot"][rows], columns=genes)
    pd.testing.assert_frame_equal(ours, raw.loc[ours.index, genes].astype(np.int32), check_names=False)
    only_some = raw.columns.difference(table.var_names)
    assert len(only_some) > 0  # C3 has genes not shared with all sections, and they are not padded with zeros


def test_data_and_cache_folders_from_the_environment_are_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GENAR_DATA_DIR", "../shared/data")  # relative, as the README writes it
    monkeypatch.setenv("GENAR_CACHE_DIR", "cache")
    assert genar.datasets.data_dir() == (tmp_path / "../shared/data").resolve()
    assert genar.datasets.cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("GENAR_DATA_DIR")
    assert genar.datasets.data_dir() is None
