"""Sampling the predictive distribution: quantile layers, kept samples, coverage and the ranked probability score."""

from __future__ import annotations

import numpy as np
import pytest

import genar
from genar.tl import ranked_probability_score


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


def test_predict_samples_the_distribution_and_keeps_greedy_as_the_point(prepared, trained):
    table = prepared.tables["genar"]
    genar.tl.predict(prepared, trained, sections="S1", n_samples=30, seed=4, show_progress_bar=False)
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
    greedy = trained.predict_counts(
        table.obsm["X_histology"][rows],
        genar.tl._arrays.normalised_coords(table)[rows],
        show_progress_bar=False,
    )[0]
    np.testing.assert_array_equal(table.layers["genar_counts"][rows], greedy)  # the point stays greedy
    assert table.uns["genar"]["predict"]["genar_counts"]["point"] == "greedy"

    again = genar.tl.predict(prepared, trained, sections="S1", n_samples=30, seed=4, overwrite=True, copy=True)
    np.testing.assert_array_equal(
        again.tables["genar"].obsm["genar_counts_samples"], table.obsm["genar_counts_samples"]
    )
    other = genar.tl.predict(prepared, trained, sections="S1", n_samples=30, seed=5, overwrite=True, copy=True)
    assert not np.array_equal(other.tables["genar"].obsm["genar_counts_samples"], table.obsm["genar_counts_samples"])


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
    assert "coverage_90" not in genar.tl.evaluate(prepared, layer="point_only", sections="S1")


def test_stale_uncertainty_is_never_scored(prepared, trained):
    genar.tl.predict(prepared, trained, sections="S1", n_samples=10, show_progress_bar=False)
    genar.tl.predict(prepared, trained, sections="S1", overwrite=True, show_progress_bar=False)  # point only now
    summary = genar.tl.evaluate(prepared, sections="S1")
    assert "coverage_90" not in summary and "rps" not in summary  # the old quantiles and samples are not used
    table = prepared.tables["genar"]
    assert not table.obs["genar_counts_sampled"].any() and not table.obs["genar_counts_samples_kept"].any()
    genar.tl.predict(prepared, trained, sections="S0", n_samples=10, show_progress_bar=False)
    assert "rps" in genar.tl.evaluate(prepared, sections="S0")
    genar.tl.predict(prepared, trained, sections="S1", n_samples=4, overwrite=True, show_progress_bar=False)
    assert table.obsm["genar_counts_samples"].shape[1] == 4  # another sample count starts anew ...
    assert "rps" not in genar.tl.evaluate(prepared, sections="S0")  # ... so S0's samples are gone
