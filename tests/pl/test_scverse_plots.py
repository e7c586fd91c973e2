"""spatialdata-plot draws what genar writes: the tissue mask (labels), patch boxes and spots (shapes), predictions."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from spatialdata import SpatialData

import genar

pytest.importorskip("spatialdata_plot")


@pytest.fixture(autouse=True)
def _close():
    yield
    plt.close("all")


# spatialdata-plot's own deprecations (matplotlib's Colormap.set_bad), not genar's
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning", "ignore::FutureWarning")
def test_spatialdata_plot_draws_mask_patches_and_predicted_counts(sdata, trained):
    hne = SpatialData(images={"he": sdata.images["S0_image"]})
    mask = np.zeros((16, 16), bool)
    mask[2:14, 2:14] = True
    genar.pp.make_spots(hne, "he", pixel_size_um=1.0, diameter_um=12, spacing_um=30, tissue_mask=mask, section="S0")
    genar.pp.extract_patches(hne, size_um=24.0, patch_px=24)
    genar.pp.embed_patches(hne, encoder="color_texture", show_progress_bar=False)
    genar.tl.predict(hne, trained, show_progress_bar=False)
    table = hne.tables["genar"]
    layer = "genar_counts_estimate"
    gene = table.var_names[int(np.argmax(np.var(table.layers[layer], axis=0)))]  # a gene that varies between spots

    _, ax = plt.subplots()
    (
        hne.pl.render_images("he")
        .pl.render_labels("S0_tissue", fill_alpha=0.3)
        .pl.render_shapes("S0_genar_patches", fill_alpha=0.0, outline_alpha=1.0)
        .pl.render_shapes("S0_pseudo_spots", color=gene, table_name="genar", table_layer=layer)
        .pl.show(coordinate_systems="S0", ax=ax)
    )
    assert len(ax.get_images()) == 2  # the H&E and the tissue mask over it
    assert ax.get_images()[1].get_array().shape[:2] == (256, 256)  # the 16 × 16 mask, scaled onto the image
    drawn = [c for c in ax.collections if len(c.get_paths()) == table.n_obs]
    sizes = [np.array([p.get_extents().bounds[2:] for p in c.get_paths()]) for c in drawn]
    boxes = [c for c, size in zip(drawn, sizes, strict=True) if np.allclose(size, 24.0, atol=1e-6)]
    assert boxes  # 24 µm patches at 1 µm per pixel, in the image's frame
    spots = next(c for c in drawn if c.norm.vmin is not None)
    values = np.asarray(table.layers[layer][:, table.var_names.get_loc(gene)], float).ravel()  # rows = shapes order
    expected = spots.get_cmap()(spots.norm(values))
    np.testing.assert_allclose(spots.get_facecolor()[:, :3], expected[:, :3], atol=1e-6)  # each spot its own value
    assert np.ptp(values) > 0
