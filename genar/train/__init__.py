"""Training: the Lightning plan, data loaders and callbacks."""

from ._callbacks import BestWeights, History
from ._data import spot_dataset, spot_loader
from ._plan import GenARTrainingPlan, auto_micro_batch, free_running_scores, loss_weights, lr_factor, scale_losses
from ._trainer import check_trainer_kwargs, make_trainer, quiet_lightning, training_callbacks

__all__ = [
    "BestWeights",
    "GenARTrainingPlan",
    "History",
    "auto_micro_batch",
    "check_trainer_kwargs",
    "free_running_scores",
    "loss_weights",
    "lr_factor",
    "make_trainer",
    "quiet_lightning",
    "scale_losses",
    "spot_dataset",
    "spot_loader",
    "training_callbacks",
]
