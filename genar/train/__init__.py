"""Training: the Lightning plan, data loaders and callbacks."""

from ._callbacks import BestWeights, History
from ._data import spot_dataset, spot_loader
from ._plan import GenARTrainingPlan, scale_losses

__all__ = ["BestWeights", "GenARTrainingPlan", "History", "scale_losses", "spot_dataset", "spot_loader"]
