"""Tools: fit a GenAR model, predict raw counts into a layer, evaluate predictions."""

from ._baselines import baseline
from ._evaluate import evaluate, pearson_per_gene
from ._fit import fit
from ._predict import predict

__all__ = ["baseline", "evaluate", "fit", "pearson_per_gene", "predict"]
