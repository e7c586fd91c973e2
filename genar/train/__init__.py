"""Training: the Lightning plan, data loaders and callbacks."""

from ._callbacks import BestWeights, History
from ._data import spot_dataset, spot_loader
from ._plan import GenARTrainingPlan, auto_micro_batch, scale_losses

__all__ = [
    "BestWeights",
    "GenARTrainingPlan",
    "History",
    "auto_micro_batch",
    "scale_losses",
    "spot_dataset",
    "spot_loader",
]
