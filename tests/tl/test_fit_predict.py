from __future__ import annotations

import numpy as np
import pytest
import scanpy as sc

import genar


def test_fit_records_history_and_training_sections(trained, prepared):
    model = trained
    assert model.is_trained
    assert model.genes == prepared.tables["genar"].var_names.tolist()
    assert model.scales == (1, 4, 16)
    assert len(model.history) == 3
    assert {"train/loss", "train/loss_scale0", "train/loss_scale2"} <= set(model.history[0])
    assert model.train_info["sections"] == ["S0"] and model.train_info["n_train_spots"] == 40
    assert model.encoder["name"] == "color_texture"


def test_training_reduces_the_loss(prepared, tiny_config):
    model = genar.tl.fit(prepared, config=tiny_config.replace(lr=1e-2), max_epochs=15, show_progress_bar=False)
    losses = model.history_frame()["train/loss"].to_numpy()
    assert losses[-1] < 0.7 * losses[0]


def test_fit_is_deterministic_on_cpu(prepared, tiny_config):
    a = genar.tl.fit(prepared, config=tiny_config, max_epochs=2, seed=7, show_progress_bar=False)
    b = genar.tl.fit(prepared, config=tiny_config, max_epochs=2, seed=7, show_progress_bar=False)
    for (name, pa), pb in zip(a.module.state_dict().items(), b.module.state_dict().values(), strict=True):
        assert np.array_equal(pa.numpy(), pb.numpy()), name
    c = genar.tl.fit(prepared, config=tiny_config, max_epochs=2, seed=8, show_progress_bar=False)
    assert not np.array_equal(a.module.head.weight.detach().numpy(), c.module.head.weight.detach().numpy())


def test_validation_sections_enable_best_weights(prepared, tiny_config):
    model = genar.tl.fit(
        prepared,
        sections=["S0"],
        val_sections=["S1"],
        config=tiny_config.replace(cap=100),
        max_epochs=4,
        early_stopping_patience=2,
        show_progress_bar=False,
    )
    frame = model.history_frame()
    assert "val/loss" in frame
    best = model.train_info["best_epoch"]
    assert frame["val/loss"].idxmin() == best
    assert model.train_info["best_val_loss"] == pytest.approx(frame["val/loss"].min(), rel=1e-5)


def test_predict_writes_integer_counts(prepared, trained):
    genar.tl.predict(prepared, trained, show_progress_bar=False)
    table = prepared.tables["genar"]
    layer = table.layers["genar_counts"]
    assert layer.dtype == np.int32 and layer.shape == table.shape
    assert layer.min() >= 0 and layer.max() <= trained.cap
    assert table.obs["genar_counts_predicted"].all()
    record = table.uns["genar"]["predict"]["genar_counts"]
    assert record["model_config_hash"] == trained.config.hash()
    assert record["greedy"] is True and record["genar_version"] == genar.__version__


def test_predict_is_deterministic_at_top1_and_seeded_when_sampling(prepared, trained):
    genar.tl.predict(prepared, trained, layer_added="a", show_progress_bar=False)
    genar.tl.predict(prepared, trained, layer_added="b", show_progress_bar=False)
    table = prepared.tables["genar"]
    assert np.array_equal(table.layers["a"], table.layers["b"])
    kw = {"n_samples": 1, "greedy": False, "temperature": 1.5, "show_progress_bar": False}
    genar.tl.predict(prepared, trained, layer_added="s1", seed=1, **kw)
    genar.tl.predict(prepared, trained, layer_added="s1b", seed=1, **kw)
    genar.tl.predict(prepared, trained, layer_added="s2", seed=2, **kw)
    assert np.array_equal(table.layers["s1"], table.layers["s1b"])
    assert not np.array_equal(table.layers["s1"], table.layers["s2"])


def test_predict_one_section_and_refuse_overwrite(prepared, trained):
    genar.tl.predict(prepared, trained, sections="S1", show_progress_bar=False)
    table = prepared.tables["genar"]
    s1 = (table.obs["section"] == "S1").to_numpy()
    assert table.obs["genar_counts_predicted"].to_numpy().tolist() == s1.tolist()
    assert (table.layers["genar_counts"][~s1] == 0).all()
    with pytest.raises(ValueError, match=r"already hold predictions for sections \['S1'\].*overwrite=True"):
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


def test_evaluate_scores_per_section(prepared, trained):
    genar.tl.predict(prepared, trained, show_progress_bar=False)
    summary = genar.tl.evaluate(prepared)
    assert list(summary.index) == ["S0", "S1"]
    assert {"pcc_10", "pcc_50", "pcc_200", "pcc_all", "mse", "mae"} <= set(summary.columns)
    assert np.isnan(summary.loc["S0", "pcc_50"])  # only 16 genes: PCC-50 is undefined, not made up
    per_gene = prepared.tables["genar"].uns["genar_evaluation"]["per_gene"]
    assert per_gene.shape == (16, 2)
    assert summary.loc["S1", "mse"] >= 0


def test_fit_checks(prepared, tiny_config):
    with pytest.raises(ValueError, match=r"both `sections` and `val_sections`"):
        genar.tl.fit(prepared, sections=["S0"], val_sections=["S0"], config=tiny_config)
    with pytest.raises(ValueError, match=r"config.scales \(1, 16\) differ"):
        genar.tl.fit(prepared, config=tiny_config.replace(scales=(1, 16)))
    del prepared.tables["genar"].obsm["X_histology"]
    with pytest.raises(KeyError, match=r"Run `genar.pp.embed_patches` first"):
        genar.tl.fit(prepared, config=tiny_config)


def test_counts_above_cap_are_clipped_with_a_warning(prepared, tiny_config):
    with pytest.warns(UserWarning, match=r"exceed the cap of 3 and are clipped"):
        model = genar.tl.fit(prepared, config=tiny_config.replace(cap=3), max_epochs=1, show_progress_bar=False)
    assert model.cap == 3


def test_predict_refuses_other_encoder_and_missing_genes(prepared, trained):
    table = prepared.tables["genar"]
    table.uns["X_histology"]["encoder"]["name"] = "uni"
    with pytest.raises(ValueError, match=r"come from encoder 'uni', but the model was trained on 'color_texture'"):
        genar.tl.predict(prepared, trained)
    table.uns["X_histology"]["encoder"]["name"] = "color_texture"
    prepared.tables["genar"] = table[:, table.var_names[1:]].copy()
    with pytest.raises(KeyError, match=rf"lacks 1 of the model's 16 genes: \['{table.var_names[0]}'\]"):
        genar.tl.predict(prepared, trained)


def test_evaluate_undefined_gene_is_nan(prepared, trained):
    genar.tl.predict(prepared, trained, show_progress_bar=False)
    table = prepared.tables["genar"]
    truth = table.layers["counts"].toarray()
    truth[:, 0] = 4  # constant truth
    table.layers["counts"] = truth
    genar.tl.evaluate(prepared)
    per_gene = table.uns["genar_evaluation"]["per_gene"]
    assert per_gene.iloc[0].isna().all()


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
    assert back.uns["genar"]["predict"]["genar_counts"]["model_config_hash"] == trained.config.hash()
    for key in ("genar", "genar_gene_group", "genar_patches", "X_histology", "genar_evaluation"):
        assert same(table.uns[key], back.uns[key]), key


def test_ablation_switches_train_save_and_load(prepared, tiny_config, tmp_path):
    config = tiny_config.replace(gene_film=False, final_loss="ce", cap=100)
    model = genar.tl.fit(prepared, sections=["S0"], config=config, max_epochs=2, show_progress_bar=False)
    assert not model.module.gene_film and model.config.final_loss == "ce"
    model.save(tmp_path / "ablation")
    back = genar.GenAR.load(tmp_path / "ablation")
    assert back.config == model.config and not back.module.gene_film
    table = prepared.tables["genar"]
    args = (table.obsm["X_histology"][:5], np.zeros((5, 2), np.float32))
    np.testing.assert_array_equal(back.predict_counts(*args), model.predict_counts(*args))
    with pytest.raises(ValueError, match=r"invalid `final_loss`='mse'"):
        tiny_config.replace(final_loss="mse")


def test_regression_head_ablation_fits_predicts_and_refuses_to_sample(prepared, tiny_config, tmp_path):
    model = genar.tl.fit(
        prepared, sections=["S0"], config=tiny_config.replace(head="regression", cap=100), max_epochs=2
    )
    assert model.module.head_kind == "regression"
    model.save(tmp_path / "regression")
    back = genar.GenAR.load(tmp_path / "regression")
    assert back.config.head == "regression"
    genar.tl.predict(prepared, back, sections=["S1"])
    table = prepared.tables["genar"]
    predicted = table[table.obs["section"] == "S1"].layers["genar_counts"]
    assert predicted.min() >= 0 and predicted.max() <= 100 and predicted.std() > 0
    with pytest.raises(ValueError, match="regression head.*cannot be sampled"):
        genar.tl.predict(prepared, back, sections=["S1"], n_samples=5, layer_added="sampled")
    with pytest.raises(ValueError, match=r"invalid `head`='mse' \(must be 'tokens' or 'regression'\)"):
        tiny_config.replace(head="mse")


def test_a_single_scale_trains_and_predicts(prepared, tiny_config):
    genar.pp.cluster_genes(prepared, scales=(16,))  # the "no hierarchy" ablation: every gene at once
    model = genar.tl.fit(prepared, sections=["S0"], config=tiny_config.replace(cap=100), max_epochs=2)
    assert model.scales == (16,) and np.isfinite(model.history_frame()["train/loss"]).all()
    genar.tl.predict(prepared, model, sections="S1", n_samples=3, show_progress_bar=False)
    assert prepared.tables["genar"].layers["genar_counts_q95"].shape == (80, 16)
