"""Calibrating the sampling temperature on held-out sections, and predicting with it."""

from __future__ import annotations

import numpy as np
import pytest

import genar


def test_calibrate_measures_the_coverage_that_evaluate_reports(prepared, trained):
    frame = genar.tl.calibrate(
        prepared, trained, sections="S1", temperatures=[0.05, 1.0, 3.0], n_samples=20, max_spots=None, random_state=2
    )
    assert list(frame["temperature"]) == [0.05, 1.0, 3.0]
    # a hotter distribution gives wider intervals; the nearly greedy one holds much less of the truth
    assert frame["interval_width"].is_monotonic_increasing
    assert frame["coverage"].iloc[0] < frame["coverage"].iloc[-1] - 0.2
    # the same spots, seed and temperature through predict + evaluate give the same coverage
    genar.tl.predict(
        prepared, trained, sections="S1", n_samples=20, random_state=2, temperature=1.0, show_progress_bar=False
    )
    summary = genar.tl.evaluate(prepared, sections="S1")
    at_one = frame.set_index("temperature").loc[1.0]
    assert at_one["coverage"] == pytest.approx(summary.loc["S1", "coverage_90"])
    assert at_one["pit_coverage"] == pytest.approx(summary.loc["S1", "pit_coverage_90"])
    assert at_one["interval_width"] == pytest.approx(summary.loc["S1", "interval_width_90"])
    best = frame.loc[frame["chosen"]].iloc[0]
    assert abs(best["pit_coverage"] - 0.9) == (frame["pit_coverage"] - 0.9).abs().min()
    assert trained.calibration["temperature"] == best["temperature"]


def test_predict_samples_at_the_calibrated_temperature_and_saving_keeps_it(prepared, trained, tmp_path):
    frame = genar.tl.calibrate(prepared, trained, sections="S1", n_samples=10, max_spots=25)
    assert list(frame["temperature"]) == list(genar.tl._calibrate.DEFAULT_TEMPERATURES)
    assert frame["chosen"].sum() == 1
    assert trained.calibration["n_spots"] == 25 and trained.calibration["sections"] == ["S1"]
    temperature = trained.calibration["temperature"]
    calibrated = genar.tl.predict(prepared, trained, sections="S1", n_samples=10, copy=True)
    explicit = genar.tl.predict(prepared, trained, sections="S1", n_samples=10, temperature=temperature, copy=True)
    np.testing.assert_array_equal(
        calibrated.tables["genar"].obsm["genar_counts_samples"], explicit.tables["genar"].obsm["genar_counts_samples"]
    )
    record = calibrated.tables["genar"].uns["genar_predictions"]["genar_counts"]
    assert record["temperature"] == temperature and record["temperature_source"] == "calibrated"
    trained.save(tmp_path / "model")
    assert genar.GenAR.load(tmp_path / "model").calibration == trained.calibration


def test_a_choice_at_the_end_of_the_grid_is_warned(prepared, trained):
    # nearly greedy sampling: intervals far too narrow at both temperatures, so the hotter end is chosen
    with pytest.warns(UserWarning, match=r"temperature 0.1 is the larger end .* Pass `temperatures=` with larger"):
        frame = genar.tl.calibrate(prepared, trained, sections="S1", temperatures=[0.05, 0.1], n_samples=10)
    assert frame["chosen"].iloc[-1] and frame["pit_coverage"].iloc[-1] < 0.9


def test_calibrate_refuses_training_sections_and_bad_arguments(prepared, trained):
    with pytest.raises(ValueError, match=r"trained on sections \['S0'\].*held-out sections"):
        genar.tl.calibrate(prepared, trained, sections=["S0", "S1"])
    with pytest.raises(ValueError, match="`level` must lie strictly between 0 and 1; got 90"):
        genar.tl.calibrate(prepared, trained, sections="S1", level=90)
    with pytest.raises(ValueError, match="`temperatures` must be positive numbers; got \\[0.0, 1.0\\]"):
        genar.tl.calibrate(prepared, trained, sections="S1", temperatures=[0.0, 1.0])
    with pytest.raises(ValueError, match="`criterion` must be 'pit' or 'interval'; got 'crps'"):
        genar.tl.calibrate(prepared, trained, sections="S1", criterion="crps")
    with pytest.raises(ValueError, match="`n_samples` must be at least 2"):
        genar.tl.calibrate(prepared, trained, sections="S1", n_samples=1)
