from __future__ import annotations

import gzip
import shutil

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import genar
from genar._files import git_blob_sha1, sha256sum
from genar.datasets import HER2ST_SECTIONS
from genar.datasets._download import fetch
from genar.datasets._her2st import _source


def test_every_section_of_the_study_is_known():
    assert len(HER2ST_SECTIONS) == 36 and list(HER2ST_SECTIONS)[:2] == ["A1", "A2"]
    files = HER2ST_SECTIONS["C4"]
    assert files.image.path == "ST-imgs/C/C4/5714_HE_BT_D2.jpg" and files.image.sha256 is not None
    assert HER2ST_SECTIONS["A1"].counts.sha256 is None and len(HER2ST_SECTIONS["A1"].counts.git_blob_sha1) == 40
    with pytest.raises(ValueError, match=r"unknown her2st sections \['Z9'\]. Available sections: \['A1', 'A2'"):
        genar.datasets.her2st(sections=["Z9"])


def test_missing_files_are_listed(tmp_path):
    (tmp_path / "ST-cnts").mkdir()
    with pytest.raises(FileNotFoundError, match=r"The her2st file ST-cnts/C2.tsv.gz of section C2 is not in"):
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
    root, fetcher = _source(None, base_url=her2st_path.as_uri())
    assert root == tmp_path / "cache" / "her2st"
    for section in ("C2", "A1"):  # C2's files have a recorded sha256; A1's only their git blob id
        for file in HER2ST_SECTIONS[section][:2]:
            assert fetcher(file, section) == root / file.path
            assert git_blob_sha1(root / file.path) == file.git_blob_sha1
            assert file.sha256 is None or sha256sum(root / file.path) == file.sha256


def test_download_refuses_tampered_remote(her2st_path, tmp_path, monkeypatch):
    remote = tmp_path / "remote"
    shutil.copytree(her2st_path / "ST-cnts", remote / "ST-cnts")
    monkeypatch.delenv("GENAR_DATA_DIR", raising=False)
    monkeypatch.setenv("GENAR_CACHE_DIR", str(tmp_path / "cache"))
    _, fetcher = _source(None, base_url=remote.as_uri())
    for section, check in (("C2", "sha256"), ("A1", "git blob id")):
        path = remote / HER2ST_SECTIONS[section].counts.path
        path.chmod(0o644)
        with gzip.open(path, "ab") as fh:
            fh.write(b"tampered")
        with pytest.raises(OSError, match=f"Checksum mismatch.*{check}"):
            fetcher(HER2ST_SECTIONS[section].counts, section)
    assert not any((tmp_path / "cache" / "her2st" / "ST-cnts").iterdir())  # nothing partly written is left


@pytest.mark.her2st
def test_expression_only_sections_and_a_missing_image(her2st_path, tmp_path):
    sdata = genar.datasets.her2st(her2st_path, ["A1", "B1", "C4"], images=False)
    assert not sdata.images and sorted(sdata.shapes) == ["A1_spots", "B1_spots", "C4_spots"]
    table = sdata.tables["table"]
    assert table.obs["section"].value_counts().to_dict() == {"A1": 346, "B1": 295, "C4": 184}
    scale = table.uns["spatial"]["A1"]["scalefactors"]
    assert 0.5 < scale["microns_per_pixel"] < 1.0  # from the spot pitch in pixels of A1's (absent) smaller image
    union = genar.datasets.her2st(her2st_path, ["A1", "B1"], images=False, genes="union").tables["table"]
    assert union.n_vars > table.n_vars and set(union.uns["genar_missing_genes"]) == {"A1", "B1"}
    with pytest.raises(
        FileNotFoundError, match=r"H&E image of section A1 .* neither here nor downloadable.*images=False"
    ):
        genar.datasets.her2st(her2st_path, "A1")
    with pytest.raises(FileNotFoundError, match=r"ST-cnts/C5.tsv.gz of section C5 is not in"):
        genar.datasets.her2st(her2st_path, "C5", images=False)


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
    assert set(sdata.coordinate_systems) == {"B4", "C2", "C3", "C4", "B4_um", "C2_um", "C3_um", "C4_um"}


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


def test_fetch_over_http_goes_through_pooch(tmp_path):
    """An http:// download (pooch's HTTP downloader) from a local server: kept when it matches, refused when not."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    served = tmp_path / "served"
    served.mkdir()
    (served / "counts.tsv.gz").write_bytes(gzip.compress(b"gene\tcount\n" * 100))
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *args: None
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/counts.tsv.gz"
        target = tmp_path / "cache" / "counts.tsv.gz"
        source = served / "counts.tsv.gz"
        assert fetch(url, target, sha256sum(source), git_blob=git_blob_sha1(source)) == target
        assert target.read_bytes() == source.read_bytes()
        other = tmp_path / "cache" / "other.tsv.gz"
        with pytest.raises(OSError, match="Checksum mismatch.*git blob id"):
            fetch(url, other, git_blob="0" * 40)
        with pytest.raises(OSError, match="Checksum mismatch"):
            fetch(url, other, "0" * 64)
        assert sorted(p.name for p in other.parent.iterdir()) == ["counts.tsv.gz"]  # nothing else kept
        with pytest.raises(OSError, match="Could not download .*absent.gz"):
            fetch(url.replace("counts.tsv.gz", "absent.gz"), other, "0" * 64)
        server.shutdown()
