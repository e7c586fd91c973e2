"""Prediction on a slide with an H&E image only: pseudo-spots, patches, features, predicted counts, scanpy."""

from __future__ import annotations

import numpy as np
import pytest
import scanpy as sc
from spatialdata import SpatialData

import genar


@pytest.fixture
def hne_only(prepared):
    """Section S1's image alone, with 12 µm pseudo-spots every 20 µm over all of it (1 µm per pixel)."""
    sdata = SpatialData(images={"S1_image": prepared.images["S1_image"]})
    genar.pp.make_spots(
        sdata, "S1_image", diameter_um=12, spacing_um=20, pixel_size_um=1.0, tissue_mask=np.ones((8, 8), bool)
    )
    genar.pp.extract_patches(sdata, size_um=24.0, patch_px=24)
    genar.pp.embed_patches(sdata, encoder="color_texture", show_progress_bar=False)
    return sdata


def test_predict_adds_the_model_genes_and_chains_into_scanpy(hne_only, trained):
    assert hne_only.tables["genar"].n_vars == 0
    genar.tl.predict(hne_only, trained, show_progress_bar=False)
    table = hne_only.tables["genar"]
    assert list(table.var_names) == trained.genes and not table.var["genar_measured"].any()
    np.testing.assert_array_equal(
        table.X.toarray() if hasattr(table.X, "toarray") else table.X, table.layers["genar_counts"]
    )
    # the same spots' features through the model directly give the same counts
    expected = trained.predict_counts(
        table.obsm["X_histology"], genar.tl._arrays.normalised_coords(table), show_progress_bar=False
    )[0]
    np.testing.assert_array_equal(table.layers["genar_counts"], expected)
    assert table.obs["genar_counts_predicted"].all()
    assert table.uns["spatialdata_attrs"]["region"] == "S1_image_pseudo_spots"
    adata = table.copy()
    sc.pp.normalize_total(adata)
    sc.pp.log1p(adata)
    sc.pp.pca(adata, n_comps=5)
    sc.pp.neighbors(adata, n_neighbors=10)
    sc.tl.leiden(adata, flavor="igraph", n_iterations=2, directed=False)
    assert adata.obs["leiden"].nunique() >= 2


def test_features_from_another_encoder_are_refused_before_the_table_changes(hne_only, trained):
    hne_only.tables["genar"].uns["X_histology"]["encoder"]["name"] = "efficientnet_lite0"
    with pytest.raises(ValueError, match="come from encoder 'efficientnet_lite0', but the model was trained on"):
        genar.tl.predict(hne_only, trained)
    assert hne_only.tables["genar"].n_vars == 0
