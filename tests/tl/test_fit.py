"""genar.tl.fit: training from the panel table, its checks, its ablation switches, resuming."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import genar


def test_log_normalised_counts_passed_as_raw(prepared, tiny_config):
    table = prepared.tables["genar"]
    table.layers["lognorm"] = np.log1p(table.layers["counts"].toarray() / 3.0)
    with pytest.raises(ValueError, match=r"layers\['lognorm'\] does not hold raw counts.*normalised or log"):
        genar.tl.fit(prepared, layer="lognorm", config=tiny_config, max_epochs=1)


def test_nan_features(prepared, tiny_config):
    prepared.tables["genar"].obsm["X_histology"][3, 0] = np.nan
    with pytest.raises(ValueError, match=r"obsm\['X_histology'\] has NaN or infinite values for 1 spots"):
        genar.tl.fit(prepared, config=tiny_config, max_epochs=1)


def test_missing_table_lists_the_tables(sdata, tiny_config):
    with pytest.raises(KeyError, match=r"Table 'genar' not found.*Available tables: \['table'\].*select_genes"):
        genar.tl.fit(sdata, config=tiny_config)


def test_fewer_spots_than_a_batch(prepared, tiny_config):
    table = prepared.tables["genar"]
    keep = np.r_[np.arange(3), np.arange(40, 43)]  # three spots per section, batches of 32
    prepared.tables["genar"] = table[keep].copy()
    model = genar.tl.fit(prepared, train_sections=["S0"], config=tiny_config.replace(cap=100), max_epochs=2)
    assert model.train_info["n_train_spots"] == 3
    genar.tl.predict(prepared, model, sections="S1", batch_size=256)
    assert prepared.tables["genar"].obs["genar_counts_predicted"].sum() == 3


def test_fit_records_history_and_training_sections(trained, prepared):
    model = trained
    assert model.is_trained
    assert model.genes == prepared.tables["genar"].var_names.tolist()
    assert model.scales == (1, 4, 16)
    assert len(model.history) == 3
    assert {"train/loss", "train/loss_scale0", "train/loss_scale2"} <= set(model.history[0])
    assert model.train_info["train_sections"] == ["S0"] and model.train_info["n_train_spots"] == 40
    assert model.encoder["name"] == "color_texture"


def test_training_reduces_the_loss(prepared, tiny_config):
    model = genar.tl.fit(prepared, config=tiny_config.replace(lr=1e-2), max_epochs=15, show_progress_bar=False)
    losses = model.history_frame()["train/loss"].to_numpy()
    assert losses[-1] < 0.7 * losses[0]


def test_fit_is_deterministic_on_cpu(prepared, tiny_config):
    a = genar.tl.fit(prepared, config=tiny_config, max_epochs=2, random_state=7, show_progress_bar=False)
    b = genar.tl.fit(prepared, config=tiny_config, max_epochs=2, random_state=7, show_progress_bar=False)
    for (name, pa), pb in zip(a.module.state_dict().items(), b.module.state_dict().values(), strict=True):
        assert np.array_equal(pa.numpy(), pb.numpy()), name
    c = genar.tl.fit(prepared, config=tiny_config, max_epochs=2, random_state=8, show_progress_bar=False)
    assert not np.array_equal(a.module.head.weight.detach().numpy(), c.module.head.weight.detach().numpy())


def test_validation_sections_enable_best_weights(prepared, tiny_config):
    model = genar.tl.fit(
        prepared,
        train_sections=["S0"],
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


def test_fit_checks(prepared, tiny_config):
    with pytest.raises(ValueError, match=r"both `train_sections` and `val_sections`"):
        genar.tl.fit(prepared, train_sections=["S0"], val_sections=["S0"], config=tiny_config)
    with pytest.raises(ValueError, match=r"config.scales \(1, 16\) differ"):
        genar.tl.fit(prepared, config=tiny_config.replace(scales=(1, 16)))
    del prepared.tables["genar"].obsm["X_histology"]
    with pytest.raises(KeyError, match=r"Run `genar.pp.embed_patches` first"):
        genar.tl.fit(prepared, config=tiny_config)


def test_counts_above_cap_are_clipped_with_a_warning(prepared, tiny_config):
    with pytest.warns(UserWarning, match=r"exceed the cap of 3 and are clipped"):
        model = genar.tl.fit(prepared, config=tiny_config.replace(cap=3), max_epochs=1, show_progress_bar=False)
    assert model.cap == 3


def test_ablation_switches_train_save_and_load(prepared, tiny_config, tmp_path):
    config = tiny_config.replace(gene_film=False, final_loss="ce", cap=100)
    model = genar.tl.fit(prepared, train_sections=["S0"], config=config, max_epochs=2, show_progress_bar=False)
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
        prepared, train_sections=["S0"], config=tiny_config.replace(head="regression", cap=100, lr=1e-2), max_epochs=8
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
    genar.pp.cluster_genes(prepared, scales=(16,), overwrite=True)  # the "no hierarchy" ablation: every gene at once
    model = genar.tl.fit(prepared, train_sections=["S0"], config=tiny_config.replace(cap=100), max_epochs=2)
    assert model.scales == (16,) and np.isfinite(model.history_frame()["train/loss"]).all()
    genar.tl.predict(prepared, model, sections="S1", n_samples=3, show_progress_bar=False)
    assert prepared.tables["genar"].layers["genar_counts_q95"].shape == (80, 16)


def _fit(prepared, config, **kwargs):
    return genar.tl.fit(
        prepared,
        train_sections=["S0"],
        val_sections=["S1"],
        config=config,
        random_state=3,
        show_progress_bar=False,
        **kwargs,
    )


def test_resumed_fit_equals_the_uninterrupted_one(prepared, tiny_config, tmp_path):
    config = tiny_config.replace(batch_size=16, cap=100)  # several steps per epoch: the shuffling order matters
    whole = _fit(prepared, config, max_epochs=4, checkpoint_dir=tmp_path / "whole")
    assert (tmp_path / "whole" / "last.ckpt").is_file()

    _fit(prepared, config, max_epochs=2, checkpoint_dir=tmp_path / "part")  # "interrupted" after two epochs
    resumed = _fit(prepared, config, max_epochs=4, checkpoint_dir=tmp_path / "part", resume_from=tmp_path / "part")

    for (name, a), b in zip(whole.module.state_dict().items(), resumed.module.state_dict().values(), strict=True):
        assert np.array_equal(a.numpy(), b.numpy()), name
    assert len(resumed.history) == 4  # the history of the first two epochs came back with the checkpoint
    assert resumed.history_frame()["train/loss"].tolist() == whole.history_frame()["train/loss"].tolist()
    assert resumed.train_info["best_epoch"] == whole.train_info["best_epoch"]
    assert resumed.train_info["resumed_from"].endswith("last.ckpt")


def test_resume_from_a_missing_checkpoint_says_what_to_pass(prepared, tiny_config, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"resume_from=.*no checkpoint at .*last\.ckpt.*checkpoint_dir"):
        _fit(prepared, tiny_config, max_epochs=1, resume_from=tmp_path)


def test_free_running_selection_keeps_the_epoch_with_the_best_validation_pearson(prepared, tiny_config):
    config = tiny_config.replace(selection="pcc", cap=100, lr=1e-2)
    model = genar.tl.fit(
        prepared, train_sections=["S0"], val_sections=["S1"], config=config, max_epochs=5, show_progress_bar=False
    )
    frame = model.history_frame()
    assert {"val/loss", "val/pcc", "val/mse"} <= set(frame.columns)
    best = model.train_info["best_epoch"]
    assert frame["val/pcc"].idxmax() == best and model.train_info["best_val_score"] == pytest.approx(
        frame["val/pcc"].max(), rel=1e-6
    )
    # the history's val/pcc is what evaluate reports for the estimate decoded at that epoch: check the kept weights
    genar.tl.predict(prepared, model, sections="S1", show_progress_bar=False)
    table = prepared.tables["genar"]
    summary = genar.tl.evaluate(prepared, predicted_layer="genar_counts_estimate", sections="S1")
    assert summary.loc["S1", "pcc_all"] == pytest.approx(frame.loc[best, "val/pcc"], abs=1e-4)
    assert table.uns["genar_predictions"]["genar_counts"]["layers"][1] == "genar_counts_estimate"
    with pytest.raises(ValueError, match=r"selection='pcc'.*pass `val_sections`"):
        genar.tl.fit(prepared, train_sections=["S0"], config=config, max_epochs=1)


def test_optimiser_settings_reach_training(prepared, tiny_config):
    from genar.train import lr_factor

    assert lr_factor(0, 100, schedule="cosine", warmup=0.1) == pytest.approx(0.1)
    assert lr_factor(10, 100, schedule="cosine", warmup=0.1) == pytest.approx(1.0)
    assert lr_factor(100, 100, schedule="cosine", warmup=0.1) == pytest.approx(0.05)
    assert lr_factor(57, 100, schedule="constant", warmup=0.1) == 1.0
    config = tiny_config.replace(weight_decay=0.1, grad_clip=0.5, lr_schedule="cosine", loss_weighting="position")
    model = genar.GenAR(config.replace(scales=(1, 4, 16)), genes=[f"g{i}" for i in range(16)], cap=9, feature_dim=3)
    plan = model._training_plan(model.module)
    assert plan.grad_clip == 0.5 and plan.lr_schedule == "cosine"
    np.testing.assert_allclose(plan.scale_weights.numpy(), np.array([1, 4, 16]) / 21)
    trained = genar.tl.fit(prepared, train_sections=["S0"], config=config.replace(cap=100), max_epochs=2)
    assert np.isfinite(trained.history_frame()["train/loss"]).all()


def test_a_seed_ensemble_averages_its_networks_in_log_space(prepared, tiny_config, tmp_path):
    config = tiny_config.replace(n_models=2, cap=100)
    model = genar.tl.fit(prepared, train_sections=["S0"], config=config, max_epochs=2, random_state=3)
    assert len(model.members) == 2 and len(model.train_info["members"]) == 2
    assert {r["member"] for r in model.history} == {0, 1} and len(model.history_frame(member=1)) == 2
    single = [genar.tl.fit(prepared, train_sections=["S0"], config=config.replace(n_models=1), max_epochs=2,
                           random_state=seed) for seed in (3, 4)]  # fmt: skip
    table = prepared.tables["genar"]
    X, xy = table.obsm["X_histology"], genar.tl._arrays.normalised_coords(table)
    logs = [np.log2(1 + m.predict_estimate(X, xy, show_progress_bar=False)) for m in single]
    ensemble = model.predict_estimate(X, xy, show_progress_bar=False)
    np.testing.assert_allclose(np.log2(1 + ensemble), np.mean(logs, axis=0), rtol=1e-5, atol=1e-5)
    # samples come from the mixture: sample s from network s % 2
    draws = model.predict_counts(X[:5], xy[:5], n_samples=2, greedy=False, random_state=0, show_progress_bar=False)
    assert draws.shape == (2, 5, 16)
    with pytest.raises(ValueError, match="ensemble of 2 networks: their most likely counts are not one prediction"):
        model.predict_counts(X[:5], xy[:5])
    model.save(tmp_path / "ensemble")
    back = genar.GenAR.load(tmp_path / "ensemble")
    np.testing.assert_array_equal(back.predict_estimate(X, xy, show_progress_bar=False), ensemble)


@pytest.mark.parametrize(
    ("argument", "fix"),
    [
        ({"gradient_clip_val": 1.0}, r"GenARConfig\(grad_clip=\.\.\.\)"),
        ({"accumulate_grad_batches": 4}, r"GenARConfig\(batch_size=\.\.\.\)"),
    ],
)
def test_trainer_arguments_genar_cannot_honour_are_refused_with_the_fix(prepared, tiny_config, argument, fix):
    name = next(iter(argument))
    with pytest.raises(ValueError, match=rf"`{name}=.*` does not apply to genar's training step: {fix}"):
        genar.tl.fit(prepared, train_sections=["S0"], config=tiny_config, max_epochs=1, **argument)


def test_a_lightning_logger_records_the_epochs(prepared, tiny_config, tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    genar.tl.fit(
        prepared,
        train_sections=["S0"],
        config=tiny_config,
        max_epochs=2,
        show_progress_bar=False,
        logger=CSVLogger(tmp_path, name="run"),
    )
    metrics = pd.read_csv(next(tmp_path.glob("run/version_*/metrics.csv")))
    assert {"train/loss", "epoch"} <= set(metrics.columns)
    assert sorted(metrics["epoch"].dropna().unique()) == [0, 1]


def test_bfloat16_mixed_precision_trains_close_to_float32(prepared, tiny_config):
    config = tiny_config.replace(width=64, heads=4)  # wide enough for the multiplies to round visibly in bfloat16
    kw = {"train_sections": ["S0"], "config": config, "max_epochs": 3, "show_progress_bar": False}
    full = genar.tl.fit(prepared, **kw)
    mixed = genar.tl.fit(prepared, precision="bf16-mixed", **kw)
    a, b = full.history_frame()["train/loss"].to_numpy(), mixed.history_frame()["train/loss"].to_numpy()
    assert not np.array_equal(a, b)  # the multiplies did run in bfloat16
    np.testing.assert_allclose(b, a, rtol=0.02)
    assert all(p.dtype == torch.float32 for p in mixed.module.parameters())  # float32 master weights
    assert (full.train_info["precision"], mixed.train_info["precision"]) == ("32-true", "bf16-mixed")
    streams = min(torch.get_num_threads(), config.batch_size, full.train_info["n_train_spots"])
    assert full.train_info["train_streams"] == mixed.train_info["train_streams"] == streams
    genar.tl.predict(prepared, mixed, sections="S1", layer_added="mixed", show_progress_bar=False)
    table = prepared.tables["genar"]
    assert np.isfinite(table[table.obs["section"] == "S1"].layers["mixed"].toarray()).all()
