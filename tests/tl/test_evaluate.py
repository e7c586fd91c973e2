"""genar.tl.evaluate and its metrics: Pearson per gene, PCC-k, errors, intervals, RPS, PIT coverage, ceilings."""

from __future__ import annotations

import numpy as np
import pytest

import genar
from genar.tl import ranked_probability_score


def test_evaluate_scores_per_section(prepared, trained):
    genar.tl.predict(prepared, trained, show_progress_bar=False)
    summary = genar.tl.evaluate(prepared)
    assert list(summary.index) == ["S0", "S1"]
    assert {"pcc_10", "pcc_50", "pcc_200", "pcc_all", "mse", "mae"} <= set(summary.columns)
    per_gene = prepared.tables["genar"].uns["genar_evaluation"]["per_gene"]
    assert per_gene.shape == (16, 2)
    assert summary.loc["S1", "mse"] >= 0
    # only 16 genes: PCC-50 averages the genes there are, and says how many
    estimates = genar.tl.evaluate(prepared, predicted_layer="genar_counts_estimate", key_added="estimate")
    per_gene = prepared.tables["genar"].uns["estimate"]["per_gene"]
    for s in ("S0", "S1"):
        defined = per_gene[s].dropna().sort_values(ascending=False)
        assert len(defined) >= 10  # the estimate varies across spots for most genes
        assert estimates.loc[s, "n_pcc_10"] == 10 and estimates.loc[s, "n_pcc_50"] == len(defined) <= 16
        assert estimates.loc[s, "pcc_10"] == pytest.approx(defined.iloc[:10].mean())
        assert estimates.loc[s, "pcc_50"] == pytest.approx(defined.mean()) == estimates.loc[s, "pcc_all"]


def test_the_estimate_is_scored_as_a_companion_of_its_prediction(prepared, trained):
    genar.tl.predict(prepared, trained, sections="S1", show_progress_bar=False)
    table = prepared.tables["genar"]
    summary = genar.tl.evaluate(prepared, predicted_layer="genar_counts_estimate")
    assert list(summary.index) == ["S1"]  # the sections its prediction covers, found through the provenance
    rows = (table.obs["section"] == "S1").to_numpy()
    truth = np.log2(table.layers["counts"][rows].toarray() + 1.0)
    estimate = np.log2(table.layers["genar_counts_estimate"][rows] + 1.0)
    assert summary.loc["S1", "mse"] == pytest.approx(((truth - estimate) ** 2).mean(), rel=1e-6)
    with pytest.raises(ValueError, match=r"Section 'S0' has spots without predictions in 'genar_counts_estimate'"):
        genar.tl.evaluate(prepared, predicted_layer="genar_counts_estimate", sections="S0", overwrite=True)


def test_evaluate_undefined_gene_is_nan(prepared, trained):
    genar.tl.predict(prepared, trained, show_progress_bar=False)
    table = prepared.tables["genar"]
    truth = table.layers["counts"].toarray()
    truth[:, 0] = 4  # constant truth
    table.layers["counts"] = truth
    genar.tl.evaluate(prepared)
    per_gene = table.uns["genar_evaluation"]["per_gene"]
    assert per_gene.iloc[0].isna().all()


def test_ranked_probability_score_equals_its_definition():
    rng = np.random.default_rng(0)
    samples = rng.poisson(3.0, size=(7, 40, 5))
    truth = rng.poisson(3.0, size=(7, 5))
    support = np.arange(samples.max() + truth.max() + 2)
    cdf = (samples[:, :, :, None] <= support).mean(axis=1)  # (spots, genes, k)
    step = (truth[:, :, None] <= support).astype(float)
    expected = ((cdf - step) ** 2).sum(axis=-1)
    np.testing.assert_allclose(ranked_probability_score(samples, truth, chunk=3), expected)


def test_a_point_mass_on_the_truth_scores_zero():
    truth = np.array([[0, 4, 9]])
    samples = np.repeat(truth[:, None, :], 10, axis=1)
    np.testing.assert_allclose(ranked_probability_score(samples, truth), 0.0)


def test_evaluate_reports_coverage_width_and_rps(prepared, trained):
    table = prepared.tables["genar"]
    genar.tl.predict(prepared, trained, sections="S1", n_samples=20, show_progress_bar=False)
    summary = genar.tl.evaluate(prepared, sections="S1")
    rows = (table.obs["section"] == "S1").to_numpy()
    truth = table.layers["counts"][rows].toarray()
    lo, hi = table.layers["genar_counts_q05"][rows], table.layers["genar_counts_q95"][rows]
    assert summary.loc["S1", "coverage_90"] == pytest.approx(((lo <= truth) & (truth <= hi)).mean())
    assert summary.loc["S1", "interval_width_90"] == pytest.approx((hi - lo).mean())
    rps = ranked_probability_score(table.obsm["genar_counts_samples"][rows], truth)
    assert summary.loc["S1", "rps"] == pytest.approx(rps.mean())
    per_gene = table.uns["genar_evaluation"]["per_gene_rps"]["S1"]
    np.testing.assert_allclose(per_gene, rps.mean(axis=0))


def test_without_samples_there_is_no_rps_and_no_interval(prepared, trained):
    genar.tl.predict(prepared, trained, sections="S1", n_samples=5, keep_samples=False, show_progress_bar=False)
    summary = genar.tl.evaluate(prepared, sections="S1")
    assert "coverage_90" in summary and "rps" not in summary
    genar.tl.predict(prepared, trained, sections="S1", layer_added="point_only", show_progress_bar=False)
    assert "coverage_90" not in genar.tl.evaluate(prepared, predicted_layer="point_only", sections="S1", overwrite=True)


def test_stale_uncertainty_is_never_scored(prepared, trained):
    genar.tl.predict(prepared, trained, sections="S1", n_samples=10, show_progress_bar=False)
    genar.tl.predict(prepared, trained, sections="S1", overwrite=True, show_progress_bar=False)  # point only now
    summary = genar.tl.evaluate(prepared, sections="S1")
    assert "coverage_90" not in summary and "rps" not in summary  # the old quantiles and samples are not used
    table = prepared.tables["genar"]
    assert not table.obs["genar_counts_sampled"].any() and not table.obs["genar_counts_samples_kept"].any()
    genar.tl.predict(prepared, trained, sections="S0", n_samples=10, show_progress_bar=False)
    assert "rps" in genar.tl.evaluate(prepared, sections="S0", overwrite=True)
    genar.tl.predict(prepared, trained, sections="S1", n_samples=4, overwrite=True, show_progress_bar=False)
    assert table.obsm["genar_counts_samples"].shape[1] == 4  # another sample count starts anew ...
    assert "rps" not in genar.tl.evaluate(prepared, sections="S0", overwrite=True)  # ... so S0's samples are gone


def test_noise_ceiling_and_evaluate_report_pearson_against_it(prepared):
    ceiling = genar.tl.noise_ceiling(prepared, sections=["S1"])
    table = prepared.tables["genar"]
    reliability = table.uns["genar_noise_ceiling"]["reliability"]["S1"]
    np.testing.assert_allclose(ceiling["S1"], np.sqrt(reliability.where(reliability > 0)))
    assert ceiling["S1"].notna().sum() >= 12  # the synthetic genes follow spatial factors: most are reliable
    genar.tl.baseline(prepared, "ridge", train_sections=["S0"], sections=["S1"])  # predictions that vary
    summary = genar.tl.evaluate(prepared, predicted_layer="ridge_counts", sections="S1")
    per_gene = table.uns["genar_evaluation"]["per_gene"]["S1"]
    vs_ceiling = table.uns["genar_evaluation"]["per_gene_vs_ceiling"]["S1"]
    np.testing.assert_allclose(vs_ceiling, per_gene / ceiling["S1"])
    assert vs_ceiling.notna().sum() >= 12
    assert summary.loc["S1", "pcc_all_vs_ceiling"] == pytest.approx(vs_ceiling.mean())


def test_fixed_gene_set_comes_from_the_training_sections(prepared):
    table = prepared.tables["genar"]
    rank = table.var["genar_train_variance_rank"].to_numpy()
    train = table[table.obs["section"] == "S0"].layers["counts"].toarray()
    variance = np.log2(train + 1.0).var(axis=0)
    assert rank[np.argmax(variance)] == 0 and sorted(rank) == list(range(table.n_vars))
    table.var["genar_train_variance_rank"] = np.where(np.isin(np.arange(table.n_vars), [1, 4, 7]), 0, 100)
    genar.tl.baseline(prepared, "ridge", train_sections=["S0"], sections=["S1"])
    summary = genar.tl.evaluate(prepared, predicted_layer="ridge_counts", sections="S1")
    per_gene = table.uns["genar_evaluation"]["per_gene"]["S1"].to_numpy()
    assert np.isfinite(per_gene[[1, 4, 7]]).all()
    assert summary.loc["S1", "pcc_fixed50"] == pytest.approx(per_gene[[1, 4, 7]].mean())


def test_the_ceiling_follows_genes_reordered_after_it(prepared):
    genar.tl.noise_ceiling(prepared, sections=["S1"])
    before = prepared.tables["genar"].uns["genar_noise_ceiling"]["ceiling"]["S1"].copy()
    genar.pp.cluster_genes(
        prepared, scales=(1, 4, 16), method="random", random_state=5, overwrite=True
    )  # reorders the genes
    genar.tl.baseline(prepared, "ridge", train_sections=["S0"], sections=["S1"])
    genar.tl.evaluate(prepared, predicted_layer="ridge_counts", sections="S1")
    uns = prepared.tables["genar"].uns["genar_evaluation"]
    expected = uns["per_gene"]["S1"] / before.reindex(uns["per_gene"].index)
    np.testing.assert_allclose(uns["per_gene_vs_ceiling"]["S1"], expected)


@pytest.mark.parametrize("rate", [0.3, 2.0, 40.0])
def test_pit_coverage_is_nominal_for_a_calibrated_count_model_whatever_the_rate(rate):
    rng = np.random.default_rng(1)
    samples = rng.poisson(rate, size=(400, 200, 3))
    truth = rng.poisson(rate, size=(400, 3))  # drawn from the very distribution that is sampled
    assert genar.tl.pit_coverage(samples, truth, 0.9, chunk=64).mean() == pytest.approx(0.9, abs=0.015)
    lo, hi = np.quantile(samples, [0.05, 0.95], axis=1, method="inverted_cdf")
    closed = ((lo <= truth) & (truth <= hi)).mean()
    if rate < 1:
        assert closed > 0.95  # the closed interval of small counts overstates coverage
    overconfident = np.full_like(samples, round(rate))  # a point mass at the mean
    assert genar.tl.pit_coverage(overconfident, truth, 0.9).mean() < 0.8
