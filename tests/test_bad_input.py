"""Bad input gets a clear error, or a warned and recorded choice — one test per case, each asserting the message.

Checkpoints that are truncated, tampered with or carry a pickle payload, and a model folder that exists, are covered
in tests/model/test_checkpoint.py; a feature dimension that differs from the model's here and there.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from spatialdata.transformations import Identity, set_transformation

import genar

# -- counts ---------------------------------------------------------------------------------------------------------


def test_log_normalised_counts_passed_as_raw(prepared, tiny_config):
    table = prepared.tables["genar"]
    table.layers["lognorm"] = np.log1p(table.layers["counts"].toarray() / 3.0)
    with pytest.raises(ValueError, match=r"layers\['lognorm'\] does not hold raw counts.*normalised or log"):
        genar.tl.fit(prepared, layer="lognorm", config=tiny_config, max_epochs=1)


def test_negative_counts(sdata):
    table = sdata.tables["table"]
    table.X = table.X.astype(np.int32)
    table.X[0, 0] = -2
    with pytest.raises(ValueError, match=r"adata.X contains negative values \(minimum -2\).*raw, non-negative"):
        genar.pp.select_genes(sdata, 8)


def test_duplicate_gene_names(sdata):
    table = sdata.tables["table"]
    table.var_names = ["g00", "g00", *table.var_names[2:]]
    with pytest.raises(ValueError, match=r"gene names of table 'table' are not unique: \['g00'\].*make_unique"):
        genar.pp.select_genes(sdata, 8)


def test_counts_above_the_cap_are_clipped_with_a_warning(prepared, tiny_config):
    with pytest.warns(UserWarning, match=r"training counts .* exceed the cap of 5 and are clipped.*GenARConfig\(cap="):
        genar.tl.fit(prepared, sections=["S0"], config=tiny_config.replace(cap=5), max_epochs=1)


# -- features and coordinates ---------------------------------------------------------------------------------------


def test_nan_features(prepared, tiny_config):
    prepared.tables["genar"].obsm["X_histology"][3, 0] = np.nan
    with pytest.raises(ValueError, match=r"obsm\['X_histology'\] has NaN or infinite values for 1 spots"):
        genar.tl.fit(prepared, config=tiny_config, max_epochs=1)


def test_infinite_coordinates(prepared, trained):
    prepared.tables["genar"].obsm["spatial"][5, 1] = np.inf
    with pytest.raises(ValueError, match=r"obsm\['spatial'\] has NaN or infinite coordinates for 1 spots"):
        genar.tl.predict(prepared, trained)


def test_feature_dimension_differs_from_the_model(prepared, trained):
    table = prepared.tables["genar"]
    table.obsm["X_histology"] = table.obsm["X_histology"][:, :10]
    with pytest.raises(ValueError, match=r"has 10 features per spot; the model needs 46 \(encoder 'color_texture'\)"):
        genar.tl.predict(prepared, trained)


# -- SpatialData structure ------------------------------------------------------------------------------------------


def test_missing_table_lists_the_tables(sdata, tiny_config):
    with pytest.raises(KeyError, match=r"Table 'genar' not found.*Available tables: \['table'\].*select_genes"):
        genar.tl.fit(sdata, config=tiny_config)


def test_missing_image_lists_the_images(sdata):
    del sdata.images["S1_image"]
    genar.pp.select_genes(sdata, 8)
    with pytest.raises(KeyError, match=r"No image shares a coordinate system with spots 'S1_spots'.*\['S0_image'\]"):
        genar.pp.extract_patches(sdata, size_um=24.0, patch_px=24)


def test_missing_shapes_lists_the_shapes(sdata):
    genar.pp.select_genes(sdata, 8)
    del sdata.shapes["S0_spots"]
    with pytest.raises(KeyError, match=r"'S0_spots' not found in sdata.shapes. Available keys: \['S1_spots'\]"):
        genar.pp.extract_patches(sdata, size_um=24.0, patch_px=24)


def test_table_region_that_names_no_shapes(sdata):
    genar.pp.select_genes(sdata, 8)
    table = sdata.tables["genar"]
    table.obs["region"] = table.obs["region"].cat.rename_categories({"S0_spots": "S0_spotz"})
    with pytest.raises(KeyError, match=r"'S0_spotz' not found in sdata.shapes.*region must name a shapes element"):
        genar.pp.extract_patches(sdata, size_um=24.0, patch_px=24)


def test_coordinate_systems_that_do_not_connect_image_and_spots(sdata):
    genar.pp.select_genes(sdata, 8)
    set_transformation(sdata.images["S0_image"], {"elsewhere": Identity()}, set_all=True)
    with pytest.raises(KeyError, match=r"No image shares a coordinate system with spots 'S0_spots' .*\['S0'\]"):
        genar.pp.extract_patches(sdata, size_um=24.0, patch_px=24)
    with pytest.raises(ValueError, match=r"Image 'S0_image' and spots 'S0_spots' share no coordinate system"):
        genar.pp.extract_patches(sdata, size_um=24.0, patch_px=24, image_key="S0_image")


def test_spots_outside_the_image_hold_no_tissue(sdata):
    genar.pp.select_genes(sdata, 8)
    shapes = sdata.shapes["S1_spots"]
    shapes.geometry = shapes.geometry.translate(xoff=5000)
    with pytest.warns(UserWarning, match=r"40 of the 40 spots of section 'S1' lie entirely outside image 'S1_image'"):
        genar.pp.extract_patches(sdata, size_um=24.0, patch_px=24)
    assert sdata.tables["genar"].obs["genar_patches_border"].to_numpy()[40:].all()


# -- sections -------------------------------------------------------------------------------------------------------


def test_unknown_section(prepared, trained):
    with pytest.raises(ValueError, match=r"`sections` names unknown sections \['S9'\]. Available sections"):
        genar.tl.predict(prepared, trained, sections="S9")


def test_fewer_spots_than_a_batch(prepared, tiny_config):
    table = prepared.tables["genar"]
    keep = np.r_[np.arange(3), np.arange(40, 43)]  # three spots per section, batches of 32
    prepared.tables["genar"] = table[keep].copy()
    model = genar.tl.fit(prepared, sections=["S0"], config=tiny_config.replace(cap=100), max_epochs=2)
    assert model.train_info["n_train_spots"] == 3
    genar.tl.predict(prepared, model, sections="S1", batch_size=256)
    assert prepared.tables["genar"].obs["genar_counts_predicted"].sum() == 3


# -- a new slide that lacks some of the model's genes ---------------------------------------------------------------


def test_model_genes_missing_from_a_new_slide(prepared, trained, tiny_config):
    new = prepared  # the "new slide": its source table lost two of the model's genes
    source = new.tables["table"]
    lost = trained.genes[:2]
    new.tables["table"] = source[:, ~source.var_names.isin(lost)].copy()
    with pytest.warns(UserWarning, match=r"2 of the 16 panel genes are not in table 'table': \[.*\]\. .*unmeasured"):
        genar.pp.select_genes(new, genes=trained.genes, overwrite=True)
    table = new.tables["genar"]
    assert table.var_names.tolist() == trained.genes
    assert table.var.loc[lost, "genar_measured"].eq(False).all()
    assert table.uns["genar"]["params"]["unmeasured_genes"] == lost
    genar.pp.extract_patches(new, size_um=24.0, patch_px=24)
    genar.pp.embed_patches(new, encoder="color_texture", show_progress_bar=False)

    genar.tl.predict(new, trained, sections="S1")  # predicting still works, for every gene
    summary = genar.tl.evaluate(new, sections="S1")
    assert summary.loc["S1", "n_genes_unmeasured"] == 2
    assert new.tables["genar"].uns["genar_evaluation"]["per_gene"].loc[lost, "S1"].isna().all()
    genar.pp.cluster_genes(new, scales=(1, 4, 16))
    with pytest.raises(ValueError, match=r"2 unmeasured genes .*must not learn them"):
        genar.tl.fit(new, sections=["S0"], config=tiny_config, max_epochs=1)


def test_sparse_float_counts_that_are_whole_numbers_are_accepted(sdata):
    sdata.tables["table"].X = sparse.csr_matrix(sdata.tables["table"].X.toarray().astype(np.float32))
    genar.pp.select_genes(sdata, 8)  # float storage of integer counts is common (e.g. after concatenation)
    assert sdata.tables["genar"].layers["counts"].dtype == np.int32
