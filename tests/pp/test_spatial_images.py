"""genar's tables carry scanpy/squidpy's ``uns['spatial']`` images, and squidpy's tools run on them with defaults."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

import genar
from genar.pp import _spatial_images

sq = pytest.importorskip("squidpy")


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


def test_hires_image_and_scale_factor_put_each_spot_on_its_pixel(sdata, monkeypatch):
    # the synthetic image encodes position (red = x, green = y); force a coarser level and a stride to test the factor
    monkeypatch.setattr(_spatial_images, "HIRES_MAX_EDGE_PX", 100)
    genar.pp.select_genes(sdata, 8)
    panel = sdata.tables["genar"]
    for section in ("S0", "S1"):
        entry = panel.uns["spatial"][section]
        hires = entry["images"]["hires"]
        scalef = entry["scalefactors"]["tissue_hires_scalef"]
        assert hires.shape == (64, 64, 3) and hires.dtype == np.uint8  # level 1 (128 px), every 2nd pixel
        assert scalef == pytest.approx(0.25)
        assert entry["scalefactors"]["spot_diameter_fullres"] == pytest.approx(10.0)  # the circles' radius is 5
        xy = panel.obsm["spatial"][(panel.obs["section"] == section).to_numpy()]
        px = np.floor(xy * scalef).astype(int)
        red, green = hires[px[:, 1], px[:, 0], 0], hires[px[:, 1], px[:, 0], 1]
        np.testing.assert_allclose(red, xy[:, 0], atol=4)  # one hires pixel spans 4 full-resolution pixels
        np.testing.assert_allclose(green, xy[:, 1], atol=4)
    assert "images" not in sdata.tables["table"].uns.get("spatial", {}).get("S0", {})  # the source is left alone


def test_no_image_where_a_scale_factor_cannot_place_the_spots(sdata, caplog):
    from spatialdata.transformations import Sequence, Translation, get_transformation, set_transformation

    shifted = Sequence([get_transformation(sdata.images["S1_image"], "S1"), Translation([7.0, 0.0], axes=("x", "y"))])
    set_transformation(sdata.images["S1_image"], shifted, "S1")
    with caplog.at_level("INFO", logger="genar"):
        genar.pp.select_genes(sdata, 8)
    spatial = sdata.tables["genar"].uns["spatial"]
    assert "hires" in spatial["S0"]["images"]
    assert "images" not in spatial["S1"]
    assert "not a plain scaling of image 'S1_image'" in caplog.text


def test_an_existing_hires_image_is_kept(sdata):
    own = np.zeros((5, 5, 3), np.uint8)
    sdata.tables["table"].uns["spatial"]["S0"]["images"] = {"hires": own}
    sdata.tables["table"].uns["spatial"]["S0"]["scalefactors"]["tissue_hires_scalef"] = 0.02
    genar.pp.select_genes(sdata, 8)
    entry = sdata.tables["genar"].uns["spatial"]["S0"]
    assert entry["images"]["hires"] is not own and np.array_equal(entry["images"]["hires"], own)
    assert entry["scalefactors"]["tissue_hires_scalef"] == 0.02


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::PendingDeprecationWarning")  # squidpy's own
def test_squidpy_draws_and_analyses_predicted_counts_with_its_defaults(prepared, trained):
    genar.tl.predict(prepared, trained, show_progress_bar=False)
    table = prepared.tables["genar"]
    gene = table.var_names[0]
    sq.pl.spatial_scatter(table, color=gene, layer="genar_counts", library_key="section")
    axes = plt.gcf().axes
    drawn = [ax for ax in axes if ax.get_images()]
    assert len(drawn) == 2  # one panel per section, each with its H&E
    assert drawn[0].get_images()[0].get_array().shape[:2] == (256, 256)

    sq.gr.spatial_neighbors(table, library_key="section")
    assert table.obsp["spatial_connectivities"].shape == (table.n_obs, table.n_obs)
    # the estimate layer: this 3-epoch model's integer counts are constant for most genes
    sq.gr.spatial_autocorr(table, layer="genar_counts_estimate", mode="moran", n_perms=None)
    moran = table.uns["moranI"]
    assert set(moran.index) == set(table.var_names) and np.isfinite(moran["I"]).all()
