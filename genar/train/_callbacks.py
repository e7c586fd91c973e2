"""Callbacks: the loss history per epoch, and the best weights on the validation sections."""

from __future__ import annotations

import copy

import lightning as L
import torch


class History(L.Callback):
    """Collects the epoch-level metrics (``train/...``, ``val/...``) into a list of dicts."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row = {"epoch": int(trainer.current_epoch)}
        for key, value in trainer.callback_metrics.items():
            if key.startswith(("train/", "val/")):
                row[key] = float(value)
        self.rows.append(row)

    def state_dict(self) -> dict:
        """The rows so far, so that a resumed run keeps the whole history."""
        return {"rows": [dict(r) for r in self.rows]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the rows of a checkpoint."""
        self.rows = [dict(r) for r in state_dict["rows"]]


class BestWeights(L.Callback):
    """Keeps, in memory, the module weights of the epoch with the best ``monitor``; restores them at the end.

    ``mode`` is ``"min"`` (lower is better: a loss, an error) or ``"max"`` (higher is better: a correlation).
    """

    def __init__(self, monitor: str = "val/loss", mode: str = "min") -> None:
        self.monitor, self.mode = monitor, mode
        self.best_score = float("inf") if mode == "min" else -float("inf")
        self.best_epoch: int | None = None
        self._state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        score = float(trainer.callback_metrics[self.monitor])
        if score < self.best_score if self.mode == "min" else score > self.best_score:
            self.best_score, self.best_epoch = score, int(trainer.current_epoch)
            self._state = copy.deepcopy(pl_module.module.state_dict())

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self._state is not None:
            pl_module.module.load_state_dict(self._state)

    def state_dict(self) -> dict:
        """The best score, epoch and weights so far (a resumed run can still return the best epoch)."""
        return {"best_score": self.best_score, "best_epoch": self.best_epoch, "weights": self._state}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore the best score, epoch and weights of a checkpoint."""
        self.best_score, self.best_epoch = state_dict["best_score"], state_dict["best_epoch"]
        self._state = state_dict["weights"]
