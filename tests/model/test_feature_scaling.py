"""Standardising the histology features: constant training features are centred, not blown up."""

from __future__ import annotations

import logging

import numpy as np

from genar.model._genar import feature_scaling


def test_constant_training_features_are_centred_not_scaled(caplog):
    rng = np.random.default_rng(0)
    train = np.stack(
        [
            rng.normal(3.0, 2.0, 50),  # an ordinary feature
            np.zeros(50),  # a grey-level bin training never saw, or a channel that never fired
            np.full(50, 0.50196087) + rng.choice([0.0, 6e-8], 50),  # constant up to float rounding
            rng.normal(0.0, 1e-4, 50),  # small but real spread: still scaled
        ],
        axis=1,
    ).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="genar"):
        mean, scale = feature_scaling(train)
    assert "2 of 4 histology features are constant on the training spots" in caplog.text
    np.testing.assert_allclose(scale, [train[:, 0].std(), 1.0, 1.0, train[:, 3].std()], rtol=1e-6)
    np.testing.assert_allclose(mean, train.mean(0), rtol=1e-6)
    new_slide = np.array([[3.0, 0.02, 0.5059, 0.0]], np.float32)  # the constants moved a little on a new slide
    standardised = (new_slide - mean) / scale
    assert np.abs(standardised[0, 1:3]).max() < 0.05  # was 2e4 and 4e3 with the old 1e-6 floor
