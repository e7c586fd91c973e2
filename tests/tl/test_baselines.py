"""Baselines go through the same data, layers and evaluate as GenAR, in both forms (float estimate, counts)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.linear_model import Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import genar


@pytest.mark.parametrize("kind", ["ridge", "mlp"])
def test_feature_baselines_learn_from_the_histology(prepared, kind):
    genar.tl.baseline(prepared, kind, train_sections=["S0"], sections=["S1"])
    genar.tl.baseline(prepared, "mean", train_sections=["S0"], sections=["S1"])
    table = prepared.tables["genar"]
    estimate, counts = table.layers[f"{kind}_counts_estimate"], table.layers[f"{kind}_counts"]
    assert estimate.dtype == np.float32 and (estimate >= 0).all() and counts.dtype == np.int32
    assert table.obs[f"{kind}_counts_predicted"].tolist() == [False] * 40 + [True] * 40
    assert not estimate[:40].any() and not counts[:40].any()  # training spots are not predicted
    # the counts are the whole numbers nearest the estimate in log space
    assert (np.abs(np.log2(1 + counts) - np.log2(1 + estimate)) <= 0.5 * np.log2(2 + estimate) + 1e-9).all()
    scores = {
        name: genar.tl.evaluate(prepared, predicted_layer=name, sections="S1", key_added=name).loc["S1"]
        for name in (f"{kind}_counts_estimate", f"{kind}_counts", "mean_counts_estimate")
    }
    assert scores[f"{kind}_counts_estimate"]["pcc_all"] > 0.3  # the synthetic image encodes position
    assert scores[f"{kind}_counts"]["pcc_all"] > 0.3
    mean = scores["mean_counts_estimate"]
    assert np.isnan(mean["pcc_all"]) and scores[f"{kind}_counts_estimate"]["mse"] < mean["mse"]


def test_hest_ridge_is_the_hest_benchmark_protocol(prepared):
    genar.tl.baseline(prepared, "hest_ridge", train_sections=["S0"], sections=["S1"])
    table = prepared.tables["genar"]
    X = table.obsm["X_histology"]
    y = np.log1p(table.layers["counts"][:40].toarray())
    n = min(256, X.shape[1], 39)
    hest = make_pipeline(
        StandardScaler(),
        PCA(n, random_state=0),
        Ridge(alpha=100 / (n * table.n_vars), solver="lsqr", fit_intercept=False, max_iter=1000, random_state=0),
    ).fit(X[:40], y)
    expected = np.maximum(np.expm1(hest.predict(X[40:])), 0)
    np.testing.assert_allclose(table.layers["hest_ridge_counts_estimate"][40:], expected, rtol=1e-5, atol=1e-6)
    assert np.abs(hest.predict(X[:40]).mean()) < 0.05  # no intercept: centred on 0 in log space, unlike the data
    assert y.mean() > 1


def test_mlp_is_seeded(prepared):
    a = genar.tl.baseline(prepared, "mlp", train_sections=["S0"], sections=["S1"], random_state=1, copy=True)
    b = genar.tl.baseline(prepared, "mlp", train_sections=["S0"], sections=["S1"], random_state=1, copy=True)
    c = genar.tl.baseline(prepared, "mlp", train_sections=["S0"], sections=["S1"], random_state=2, copy=True)
    layer = lambda s: s.tables["genar"].layers["mlp_counts_estimate"]  # noqa: E731
    np.testing.assert_array_equal(layer(a), layer(b))
    assert not np.array_equal(layer(a), layer(c))


def test_unknown_baseline(prepared):
    with pytest.raises(
        ValueError, match=r"`kind` must be one of \['ridge', 'hest_ridge', 'mlp', 'mean'\]; got 'lasso'"
    ):
        genar.tl.baseline(prepared, "lasso")
