"""Noise ceiling by binomial thinning, and a gene set fixed on the training sections."""

from __future__ import annotations

import numpy as np
import pytest

import genar
from genar.tl import split_half_reliability


def test_split_half_reliability_estimates_the_agreement_of_two_full_measurements():
    rng = np.random.default_rng(0)
    n = 4000
    rate = np.column_stack([np.exp(rng.normal(1.5, 1.0, n)), np.full(n, 3.0), np.exp(rng.normal(0.0, 0.5, n))])
    first, second = rng.poisson(rate), rng.poisson(rate)  # two independent full-depth measurements of each spot
    truth = [np.corrcoef(np.log2(first[:, j] + 1), np.log2(second[:, j] + 1))[0, 1] for j in range(3)]
    estimate = split_half_reliability(first, n_splits=10, seed=1)
    np.testing.assert_allclose(estimate, truth, atol=0.05)
    assert estimate[0] > 0.8 and abs(estimate[1]) < 0.05  # strong signal; no signal beyond Poisson noise


def test_split_half_reliability_is_undefined_for_an_undetected_gene():
    counts = np.column_stack([np.zeros(50, int), np.arange(50)])
    assert np.isnan(split_half_reliability(counts)[0])


def test_noise_ceiling_and_evaluate_report_pearson_against_it(prepared):
    ceiling = genar.tl.noise_ceiling(prepared, sections=["S1"])
    table = prepared.tables["genar"]
    reliability = table.uns["genar_noise_ceiling"]["reliability"]["S1"]
    np.testing.assert_allclose(ceiling["S1"], np.sqrt(reliability.where(reliability > 0)))
    assert ceiling["S1"].notna().sum() >= 12  # the synthetic genes follow spatial factors: most are reliable
    genar.tl.baseline(prepared, "ridge", sections=["S0"], predict_sections=["S1"])  # predictions that vary
    summary = genar.tl.evaluate(prepared, layer="ridge_counts", sections="S1")
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
    genar.tl.baseline(prepared, "ridge", sections=["S0"], predict_sections=["S1"])
    summary = genar.tl.evaluate(prepared, layer="ridge_counts", sections="S1")
    per_gene = table.uns["genar_evaluation"]["per_gene"]["S1"].to_numpy()
    assert np.isfinite(per_gene[[1, 4, 7]]).all()
    assert summary.loc["S1", "pcc_fixed50"] == pytest.approx(per_gene[[1, 4, 7]].mean())


def test_the_ceiling_follows_genes_reordered_after_it(prepared):
    genar.tl.noise_ceiling(prepared, sections=["S1"])
    before = prepared.tables["genar"].uns["genar_noise_ceiling"]["ceiling"]["S1"].copy()
    genar.pp.cluster_genes(prepared, scales=(1, 4, 16), method="random", random_state=5)  # reorders the genes
    genar.tl.baseline(prepared, "ridge", sections=["S0"], predict_sections=["S1"])
    genar.tl.evaluate(prepared, layer="ridge_counts", sections="S1")
    uns = prepared.tables["genar"].uns["genar_evaluation"]
    expected = uns["per_gene"]["S1"] / before.reindex(uns["per_gene"].index)
    np.testing.assert_allclose(uns["per_gene_vs_ceiling"]["S1"], expected)
