"""genar.tl.predict: point predictions, sampled distributions, H&E-only tables, and the checks that guard them."""

from __future__ import annotations

import numpy as np
import pytest
import scanpy as sc
import torch
from spatialdata import SpatialData

import genar
from genar.tl import pit_coverage


def test_infinite_coordinates(prepared, trained):
    prepared.tables["genar"].obsm["spatial"][5, 1] = np.inf
    with pytest.raises(ValueError, match=r"obsm\['spatial'\] has NaN or infinite coordinates for 1 spots"):
        genar.tl.predict(prepared, trained)


def test_feature_dimension_differs_from_the_model(prepared, trained):
    table = prepared.tables["genar"]
    table.obsm["X_histology"] = table.obsm["X_histology"][:, :10]
    with pytest.raises(ValueError, match=r"has 10 features per spot; the model needs 46 \(encoder 'color_texture'\)"):
        genar.tl.predict(prepared, trained)


def test_unknown_section(prepared, trained):
    with pytest.raises(ValueError, match=r"`sections` names unknown sections \['S9'\]. Available sections"):
        genar.tl.predict(prepared, trained, sections="S9")


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
        genar.tl.fit(new, train_sections=["S0"], config=tiny_config, max_epochs=1)


def _coords(table, rows):
    return genar.tl._arrays.normalised_coords(table)[rows]


def test_predict_writes_the_estimate_and_the_counts_nearest_it_in_log_space(prepared, trained):
    genar.tl.predict(prepared, trained, show_progress_bar=False)
    table = prepared.tables["genar"]
    layer, estimate = table.layers["genar_counts"], table.layers["genar_counts_estimate"]
    assert layer.dtype == np.int32 and layer.shape == table.shape and estimate.dtype == np.float32
    assert layer.min() >= 0 and layer.max() <= trained.cap and estimate.min() >= 0
    # the estimate is 2^E[log2(1+X)] - 1 of the finest scale given the greedy coarse path
    values = torch.log2(1 + torch.arange(trained.cap + 1.0))
    feats = torch.as_tensor(table.obsm["X_histology"], dtype=torch.float32)
    _, expected = trained.module.decode_expectation(feats, torch.as_tensor(_coords(table, slice(None))), values)
    np.testing.assert_allclose(np.log2(1 + estimate), expected.numpy(), rtol=1e-5, atol=1e-5)
    # every count is the one nearest the estimate in log2(x + 1), never farther than the other neighbour
    distance = np.abs(np.log2(1 + layer) - np.log2(1 + estimate))
    other = np.where(layer > estimate, np.floor(estimate), np.floor(estimate) + 1)
    assert (distance <= np.abs(np.log2(1 + other) - np.log2(1 + estimate)) + 1e-6).all()
    assert table.obs["genar_counts_predicted"].all()
    record = table.uns["genar_predictions"]["genar_counts"]
    assert record["model_config_hash"] == trained.config.hash()
    assert record["point"] == "estimate" and record["genar_version"] == genar.__version__
    assert record["layers"] == ["genar_counts", "genar_counts_estimate"]


def test_point_mode_is_greedy_decoding(prepared, trained):
    genar.tl.predict(prepared, trained, point="mode", show_progress_bar=False)
    table = prepared.tables["genar"]
    greedy = trained.predict_counts(table.obsm["X_histology"], _coords(table, slice(None)), show_progress_bar=False)
    np.testing.assert_array_equal(table.layers["genar_counts"], greedy[0])
    with pytest.raises(ValueError, match="`point` must be 'estimate' or 'mode'; got 'mean'"):
        genar.tl.predict(prepared, trained, point="mean", layer_added="x")


def test_the_estimate_over_sampled_paths_is_seeded_and_near_the_greedy_one(prepared, trained):
    kw = {"show_progress_bar": False}
    genar.tl.predict(prepared, trained, layer_added="a", **kw)
    genar.tl.predict(prepared, trained, layer_added="b", **kw)
    table = prepared.tables["genar"]
    assert np.array_equal(table.layers["a_estimate"], table.layers["b_estimate"])  # deterministic on one path
    genar.tl.predict(prepared, trained, layer_added="p1", n_paths=8, random_state=1, **kw)
    genar.tl.predict(prepared, trained, layer_added="p1b", n_paths=8, random_state=1, **kw)
    genar.tl.predict(prepared, trained, layer_added="p2", n_paths=8, random_state=2, **kw)
    assert np.array_equal(table.layers["p1_estimate"], table.layers["p1b_estimate"])
    assert not np.array_equal(table.layers["p1_estimate"], table.layers["p2_estimate"])
    log = {k: np.log2(1 + table.layers[f"{k}_estimate"]) for k in ("a", "p1", "p2")}
    spread = np.abs(log["p1"] - log["p2"]).mean()
    assert spread < np.abs(log["p1"] - log["a"]).mean() + 0.5  # sampled paths average near each other


def test_predict_one_section_and_refuse_overwrite(prepared, trained):
    genar.tl.predict(prepared, trained, sections="S1", show_progress_bar=False)
    table = prepared.tables["genar"]
    s1 = (table.obs["section"] == "S1").to_numpy()
    assert table.obs["genar_counts_predicted"].to_numpy().tolist() == s1.tolist()
    assert (table.layers["genar_counts"][~s1] == 0).all()
    with pytest.raises(
        ValueError,
        match=r"prediction in table.layers \['genar_counts', 'genar_counts_estimate'\] for sections \['S1'\] exists "
        r"already.*`overwrite=True`",
    ):
        genar.tl.predict(prepared, trained, sections="S1", show_progress_bar=False)
    genar.tl.predict(prepared, trained, sections="S0", show_progress_bar=False)  # other rows: fine
    genar.tl.predict(prepared, trained, sections="S1", overwrite=True, show_progress_bar=False)
    assert table.obs["genar_counts_predicted"].all()


def test_predict_needs_no_ground_truth(prepared, trained):
    table = prepared.tables["genar"]
    del table.layers["counts"]
    table.X = None
    genar.tl.predict(prepared, trained, show_progress_bar=False)
    assert table.layers["genar_counts"].shape == (table.n_obs, 16)


def test_predictions_chain_into_scanpy(prepared, trained):
    genar.tl.predict(prepared, trained, show_progress_bar=False)
    adata = prepared.tables["genar"]
    raw = adata.layers["genar_counts"].copy()
    sc.pp.normalize_total(adata, layer="genar_counts", target_sum=100)
    sc.pp.log1p(adata, layer="genar_counts")
    sc.pp.pca(adata, n_comps=5, layer="genar_counts")
    sc.pp.neighbors(adata, n_neighbors=10)
    sc.tl.leiden(adata, resolution=0.5, flavor="igraph", n_iterations=2, directed=False)
    assert adata.obs["leiden"].nunique() >= 1
    assert adata.obsm["X_pca"].shape == (adata.n_obs, 5)
    nonzero = raw.sum(axis=1) > 0
    expected = np.log1p(raw[nonzero] / raw[nonzero].sum(axis=1, keepdims=True) * 100)
    np.testing.assert_allclose(adata.layers["genar_counts"][nonzero], expected, rtol=1e-5)


def test_predict_refuses_other_encoder_and_missing_genes(prepared, trained):
    table = prepared.tables["genar"]
    table.uns["X_histology"]["encoder"]["name"] = "uni"
    with pytest.raises(ValueError, match=r"come from encoder 'uni', but the model was trained on 'color_texture'"):
        genar.tl.predict(prepared, trained)
    table.uns["X_histology"]["encoder"]["name"] = "color_texture"
    prepared.tables["genar"] = table[:, table.var_names[1:]].copy()
    with pytest.raises(KeyError, match=rf"lacks 1 of the model's 16 genes: \['{table.var_names[0]}'\]"):
        genar.tl.predict(prepared, trained)


@pytest.mark.filterwarnings("ignore:zarr v3 autosharding:UserWarning")
def test_predictions_survive_a_zarr_round_trip(prepared, trained, tmp_path, same):
    import spatialdata

    genar.tl.predict(prepared, trained, show_progress_bar=False)
    genar.tl.evaluate(prepared)
    prepared.write(tmp_path / "sdata.zarr")
    back = spatialdata.read_zarr(tmp_path / "sdata.zarr").tables["genar"]
    table = prepared.tables["genar"]
    assert back.layers.keys() == table.layers.keys()
    for name in table.layers:
        assert same(
            np.asarray(back.layers[name].todense() if hasattr(back.layers[name], "todense") else back.layers[name]),
            np.asarray(table.layers[name].todense() if hasattr(table.layers[name], "todense") else table.layers[name]),
        ), name
    assert back.uns["genar_predictions"]["genar_counts"]["model_config_hash"] == trained.config.hash()
    for key in ("genar", "genar_gene_group", "genar_patches", "X_histology", "genar_evaluation"):
        assert same(table.uns[key], back.uns[key]), key


def test_predict_samples_the_distribution_beside_the_point(prepared, trained):
    table = prepared.tables["genar"]
    genar.tl.predict(prepared, trained, sections="S1", n_samples=30, random_state=4, show_progress_bar=False)
    rows = (table.obs["section"] == "S1").to_numpy()
    samples = table.obsm["genar_counts_samples"][rows]
    assert samples.shape == (40, 30, table.n_vars) and samples.dtype == np.uint16
    np.testing.assert_allclose(table.layers["genar_counts_mean"][rows], samples.mean(axis=1), rtol=1e-6)
    for q, name in ((0.05, "genar_counts_q05"), (0.95, "genar_counts_q95")):
        np.testing.assert_array_equal(
            table.layers[name][rows], np.quantile(samples, q, axis=1, method="inverted_cdf").astype(np.int32)
        )
    assert (table.layers["genar_counts_q05"] <= table.layers["genar_counts_q95"]).all()
    assert len(np.unique(samples, axis=1)) > 1  # the samples differ from each other
    point = genar.tl.predict(prepared, trained, sections="S1", overwrite=True, copy=True, show_progress_bar=False)
    for name in ("genar_counts", "genar_counts_estimate"):  # the point is the same with or without samples
        np.testing.assert_array_equal(table.layers[name][rows], point.tables["genar"].layers[name][rows])
    assert table.uns["genar_predictions"]["genar_counts"]["point"] == "estimate"

    again = genar.tl.predict(prepared, trained, sections="S1", n_samples=30, random_state=4, overwrite=True, copy=True)
    np.testing.assert_array_equal(
        again.tables["genar"].obsm["genar_counts_samples"], table.obsm["genar_counts_samples"]
    )
    other = genar.tl.predict(prepared, trained, sections="S1", n_samples=30, random_state=5, overwrite=True, copy=True)
    assert not np.array_equal(other.tables["genar"].obsm["genar_counts_samples"], table.obsm["genar_counts_samples"])


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


def test_predict_adds_the_model_genes_and_chains_into_scanpy(hne_only, prepared, tiny_config):
    # a model that has learnt the synthetic images' spatial pattern (red = x, green = y), so clusters can be found
    trained = genar.tl.fit(
        prepared, train_sections=["S0"], config=tiny_config.replace(lr=1e-2), max_epochs=10, show_progress_bar=False
    )
    assert hne_only.tables["genar"].n_vars == 0
    genar.tl.predict(hne_only, trained, show_progress_bar=False)
    table = hne_only.tables["genar"]
    assert list(table.var_names) == trained.genes and not table.var["genar_measured"].any()
    np.testing.assert_array_equal(
        table.X.toarray() if hasattr(table.X, "toarray") else table.X, table.layers["genar_counts"]
    )
    # the same spots' features through the model directly give the same estimate
    expected = trained.predict_estimate(table.obsm["X_histology"], _coords(table, slice(None)), show_progress_bar=False)
    np.testing.assert_array_equal(table.layers["genar_counts_estimate"], expected)
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


def test_other_quantiles_are_recorded_and_read_by_evaluate_and_the_plot(prepared, trained):
    import matplotlib.pyplot as plt

    genar.tl.predict(prepared, trained, sections="S1", n_samples=12, quantiles=(0.9, 0.1), show_progress_bar=False)
    table = prepared.tables["genar"]
    assert table.uns["genar_predictions"]["genar_counts"]["quantiles"] == [0.1, 0.9]
    assert {"genar_counts_q10", "genar_counts_q90"} <= set(table.layers) and "genar_counts_q05" not in table.layers
    summary = genar.tl.evaluate(prepared, sections="S1")
    rows = (table.obs["section"] == "S1").to_numpy()
    truth = table.layers["counts"][rows].toarray()
    lo, hi = table.layers["genar_counts_q10"][rows], table.layers["genar_counts_q90"][rows]
    assert summary.loc["S1", "coverage_80"] == pytest.approx(((lo <= truth) & (truth <= hi)).mean())
    assert summary.loc["S1", "interval_width_80"] == pytest.approx((hi - lo).mean())
    samples = table.obsm["genar_counts_samples"][rows]
    assert summary.loc["S1", "pit_coverage_80"] == pytest.approx(pit_coverage(samples, truth, 0.8).mean())
    assert "coverage_90" not in summary
    axes = genar.pl.uncertainty(prepared, table.var_names[2], section="S1", image=False)
    np.testing.assert_allclose(axes[2].collections[0].get_array(), hi[:, 2] - lo[:, 2])
    assert axes[2].get_title().endswith("80% interval width")
    plt.close("all")


def test_predict_refuses_mixed_precision_and_says_it_is_for_training(prepared, trained):
    table = prepared.tables["genar"]
    before = set(table.layers)
    with pytest.raises(ValueError, match=r"`precision='bf16-mixed'`: genar.tl.predict decodes in float32.*tl.fit"):
        genar.tl.predict(prepared, trained, sections="S1", accelerator="cpu", devices=1, precision="bf16-mixed")
    assert set(table.layers) == before  # nothing written
