"""The two point forms of a prediction, from one network pass: the estimate and the integer counts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from ._write import nearest_count_in_log_space

if TYPE_CHECKING:
    from ..model import GenAR


def point_prediction(
    model: GenAR, features: np.ndarray, coords: np.ndarray, *, point: Literal["estimate", "mode"], **decoding: Any
) -> tuple[np.ndarray, np.ndarray]:
    """``(estimate, counts)``: the estimate of :meth:`genar.GenAR.predict_estimate`, and the counts of ``point``.

    ``point="estimate"``: the count nearest the estimate in log space; ``"mode"``: greedy decoding. ``decoding``
    takes the keywords of :meth:`genar.GenAR.iter_estimates` (``n_paths`` applies to the estimate only).
    """
    estimate = model.predict_estimate(features, coords, **decoding)
    if point == "mode":
        common = {k: v for k, v in decoding.items() if k != "n_paths"}
        counts = model.predict_counts(features, coords, n_samples=1, greedy=True, **common)[0]
    else:
        counts = nearest_count_in_log_space(estimate, model.cap)
    return estimate, counts
