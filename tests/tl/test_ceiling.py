"""Split-half reliability by binomial thinning, the basis of genar.tl.noise_ceiling."""

from __future__ import annotations

import numpy as np

from genar.tl import split_half_reliability


def test_split_half_reliability_estimates_the_agreement_of_two_full_measurements():
    rng = np.random.default_rng(0)
    n = 4000
    rate = np.column_stack([np.exp(rng.normal(1.5, 1.0, n)), np.full(n, 3.0), np.exp(rng.normal(0.0, 0.5, n))])
    first, second = rng.poisson(rate), rng.poisson(rate)  # two independent full-depth measurements of each spot
    truth = [np.corrcoef(np.log2(first[:, j] + 1), np.log2(second[:, j] + 1))[0, 1] for j in range(3)]
    estimate = split_half_reliability(first, n_splits=10, random_state=1)
    np.testing.assert_allclose(estimate, truth, atol=0.05)
    assert estimate[0] > 0.8 and abs(estimate[1]) < 0.05  # strong signal; no signal beyond Poisson noise


def test_split_half_reliability_is_undefined_for_an_undetected_gene():
    counts = np.column_stack([np.zeros(50, int), np.arange(50)])
    assert np.isnan(split_half_reliability(counts)[0])
