"""Key names and the names derived from a prediction layer, in one place."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

from genar import _keys
from genar._keys import PredictionKeys, as_quantiles, quantile_suffix


@pytest.mark.parametrize(("q", "suffix"), [(0.05, "q05"), (0.95, "q95"), (0.5, "q50"), (0.025, "q2p5"), (1.0, "q100")])
def test_quantile_suffix(q, suffix):
    assert quantile_suffix(q) == suffix


def test_prediction_keys_name_every_companion():
    keys = PredictionKeys("pred", (0.1, 0.9))
    assert keys.mean == "pred_mean" and keys.samples == "pred_samples"
    assert keys.quantile_layers == {0.1: "pred_q10", 0.9: "pred_q90"}
    assert keys.interval == (0.1, 0.9) and keys.interval_level == 80
    assert (keys.predicted, keys.sampled, keys.samples_kept) == ("pred_predicted", "pred_sampled", "pred_samples_kept")
    assert keys.estimate == "pred_estimate"
    assert keys.layers(sampled=True) == ["pred", "pred_estimate", "pred_mean", "pred_q10", "pred_q90"]
    assert keys.layers(sampled=False) == ["pred", "pred_estimate"]
    assert PredictionKeys("pred").interval is None and PredictionKeys("pred", (0.5,)).interval_level is None


def test_prediction_keys_read_the_quantiles_from_the_provenance():
    table = ad.AnnData(np.zeros((2, 2)))
    assert PredictionKeys.of(table, "pred").quantiles == ()  # nothing recorded: no interval
    table.uns[_keys.PREDICTIONS] = {"pred": {"quantiles": [0.025, 0.5, 0.975], "layers": ["pred", "pred_estimate"]}}
    keys = PredictionKeys.of(table, "pred")
    assert keys.interval == (0.025, 0.975) and keys.interval_level == 95
    assert PredictionKeys.of(table, "pred_estimate") == keys  # a companion layer belongs to its prediction


def test_quantiles_are_checked_and_sorted():
    assert as_quantiles([0.95, 0.05, 0.05]) == (0.05, 0.95)
    with pytest.raises(ValueError, match=r"`quantiles` must lie in \[0, 1\]; got \[5, 95\]"):
        as_quantiles([5, 95])
