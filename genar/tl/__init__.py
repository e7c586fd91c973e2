"""Tools: fit a GenAR model, predict raw counts into a layer, evaluate predictions."""

from .._metrics import pearson_per_gene
from ._baselines import baseline
from ._calibrate import calibrate
from ._ceiling import noise_ceiling, split_half_reliability
from ._evaluate import evaluate, pit_coverage, ranked_probability_score
from ._fit import fit
from ._predict import predict

__all__ = [
    "baseline",
    "calibrate",
    "evaluate",
    "fit",
    "noise_ceiling",
    "pearson_per_gene",
    "pit_coverage",
    "predict",
    "ranked_probability_score",
    "split_half_reliability",
]
