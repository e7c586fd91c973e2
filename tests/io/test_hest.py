"""HEST-1k's layout (st/*.h5ad, wsis/*.tif, metadata/*.json), written from shared her2st sections and read back."""

from __future__ import annotations

import json
import shutil

import anndata as ad
import numpy as np
import pandas as pd
import pytest

import genar

pytestmark = pytest.mark.her2st


@pytest.fixture(scope="module")
def hest_folder(her2st_sdata, c4_slides, c4_rgb, slide_tools, tmp_path_factory):
    """A HEST-1k folder: C4 (the session's TIFF) and C4B (C4 again, cropped by 400 px, one spot off tissue)."""
    write_slide, make_pyramid, _ = slide_tools
    root = tmp_path_factory.mktemp("hest")
    for sub in ("st", "wsis", "metadata"):
        (root / sub).mkdir()
    table = her2st_sdata.tables["table"]
    c4 = table[(table.obs["section"] == "C4").to_numpy()]
    for sample, offset in (("C4", 0), ("C4B", 400)):
        obs = pd.DataFrame(
            {
                "in_tissue": np.r_[np.ones(c4.n_obs - 1, int), 0 if sample == "C4B" else 1],
                "pxl_col_in_fullres": c4.obsm["spatial"][:, 0] - offset,
                "pxl_row_in_fullres": c4.obsm["spatial"][:, 1] - offset,
                "array_row": c4.obs["array_row"].to_numpy(),
                "array_col": c4.obs["array_col"].to_numpy(),
            },
            index=c4.obs["spot"].to_numpy(),
        )
        ad.AnnData(X=c4.X.copy(), obs=obs, var=pd.DataFrame(index=c4.var_names)).write_h5ad(
            root / "st" / f"{sample}.h5ad"
        )
        meta = {
            "id": sample,
            "pixel_size_um_estimated": c4_slides["pixel_size_um"],
            "pixel_size_um_embedded": None,
            "spot_diameter": 100.0,
            "inter_spot_dist": 200.0,
            "st_technology": "Spatial Transcriptomics",
            "organ": "Breast",
            "spots_under_tissue": int(obs["in_tissue"].sum()),
        }
        (root / "metadata" / f"{sample}.json").write_text(json.dumps(meta))
    shutil.copy(c4_slides["tiff"], root / "wsis" / "C4.tif")
    write_slide(root / "wsis" / "C4B.tif", make_pyramid(np.ascontiguousarray(c4_rgb[400:, 400:]), 3))
    return root


def test_hest_samples_become_sections(hest_folder, her2st_sdata, c4_slides):
    sdata = genar.io.read_hest(hest_folder)
    table = sdata.tables["table"]
    assert table.obs["section"].cat.categories.tolist() == ["C4", "C4B"]
    assert (table.obs["section"] == "C4B").sum() == 183  # the spot not under tissue is left out
    source = her2st_sdata.tables["table"]
    c4 = source[(source.obs["section"] == "C4").to_numpy()]
    rows = (table.obs["section"] == "C4").to_numpy()
    np.testing.assert_array_equal(table[rows].X.toarray(), c4[:, table.var_names].X.toarray())
    np.testing.assert_allclose(table.obsm["spatial"][~rows], c4.obsm["spatial"][:-1] - 400)
    meta = table.uns["spatial"]["C4B"]["metadata"]
    assert meta["source"] == "HEST-1k" and meta["organ"] == "Breast"
    assert table.uns["spatial"]["C4B"]["scalefactors"]["microns_per_pixel"] == pytest.approx(c4_slides["pixel_size_um"])
    # the chain finds each sample's image and pixel size
    genar.pp.select_genes(sdata, 20, flavor="total_counts")
    genar.pp.extract_patches(sdata)
    params = sdata.tables["genar"].uns["genar_patches"]["params"]["sections"]
    assert {s: p["image_key"] for s, p in params.items()} == {"C4": "C4_image", "C4B": "C4B_image"}
    patches = genar.pp.read_patches(sdata, [0, int(np.flatnonzero(~rows)[0])])
    assert np.abs(patches[0].astype(int) - patches[1].astype(int)).mean() < 12  # the same spot, in both slides


def test_a_missing_hest_file_is_listed(hest_folder, tmp_path):
    broken = tmp_path / "hest"
    shutil.copytree(hest_folder, broken)
    (broken / "metadata" / "C4B.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks \['metadata/C4B.json'\]"):
        genar.io.read_hest(broken)
    assert genar.io.read_hest(broken, "C4").tables["table"].n_obs == 184
    meta = json.loads((broken / "metadata" / "C4.json").read_text())
    (broken / "metadata" / "C4.json").write_text(json.dumps({**meta, "pixel_size_um_estimated": None}))
    with pytest.raises(ValueError, match=r"metadata/C4.json records no pixel size"):
        genar.io.read_hest(broken, "C4")
    with pytest.raises(FileNotFoundError, match="is not a HEST folder"):
        genar.io.read_hest(tmp_path)
