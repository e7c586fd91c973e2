"""Baselines go through the same data, layers and evaluate as GenAR."""

from __future__ import annotations

import numpy as np
import pytest

import genar


@pytest.mark.parametrize("kind", ["ridge", "mlp"])
def test_feature_baselines_learn_from_the_histology(prepared, kind):
    genar.tl.baseline(prepared, kind, train_sections=["S0"], sections=["S1"])
    genar.tl.baseline(prepared, "mean", train_sections=["S0"], sections=["S1"])
    table = prepared.tables["genar"]
    layer = table.layers[f"{kind}_counts"]
    assert layer.dtype == np.float32 and (layer >= 0).all()
    assert table.obs[f"{kind}_counts_predicted"].tolist() == [False] * 40 + [True] * 40
    assert not layer[:40].any()  # training spots are not predicted
    learned = genar.tl.evaluate(prepared, predicted_layer=f"{kind}_counts", sections="S1", key_added="learned").loc[
        "S1"
    ]
    mean = genar.tl.evaluate(prepared, predicted_layer="mean_counts", sections="S1", key_added="mean").loc["S1"]
    assert learned["pcc_all"] > 0.3  # the synthetic image encodes position, which drives expression
    assert np.isnan(mean["pcc_all"]) and learned["mse"] < mean["mse"]


def test_mlp_is_seeded(prepared):
    a = genar.tl.baseline(prepared, "mlp", train_sections=["S0"], sections=["S1"], random_state=1, copy=True)
    b = genar.tl.baseline(prepared, "mlp", train_sections=["S0"], sections=["S1"], random_state=1, copy=True)
    c = genar.tl.baseline(prepared, "mlp", train_sections=["S0"], sections=["S1"], random_state=2, copy=True)
    layer = lambda s: s.tables["genar"].layers["mlp_counts"]  # noqa: E731
    np.testing.assert_array_equal(layer(a), layer(b))
    assert not np.array_equal(layer(a), layer(c))


def test_unknown_baseline(prepared):
    with pytest.raises(ValueError, match=r"`kind` must be 'ridge', 'mlp' or 'mean'; got 'lasso'"):
        genar.tl.baseline(prepared, "lasso")
