"""The Lightning Trainer genar trains with: its defaults, its callbacks, and a quiet run (as scvi-tools keeps it)."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L

from ._callbacks import BestWeights, History

#: Warnings Lightning raises that a genar user cannot act on.
_QUIET = (
    r".*does not have many workers.*",  # in-memory tensors need no loader workers
    r".*smaller than the logging interval.*",  # epoch-level logging needs no logging interval
    r".*defined a `validation_step` but have no `val_dataloader`.*",
    r".*isinstance\(treespec, LeafSpec\)` is deprecated.*",  # raised inside Lightning's own code by newer torch
)


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Lightning without its banners ("GPU available: False") and without warnings a user cannot act on."""
    pl_logger = logging.getLogger("lightning.pytorch")
    level = pl_logger.level
    pl_logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            for pattern in _QUIET:
                warnings.filterwarnings("ignore", message=pattern)
            yield
    finally:
        pl_logger.setLevel(level)


def training_callbacks(
    *,
    monitor: str | None,
    early_stopping_patience: int | None,
    checkpoint_dir: str | os.PathLike | None,
    mode: str = "min",
) -> list[L.Callback]:
    """History first; with a ``monitor``ed validation score, best weights and early stopping; epoch checkpoints.

    ``mode``: ``"min"`` when a lower ``monitor`` is better, ``"max"`` when a higher one is.
    """
    callbacks: list[L.Callback] = [History()]
    if monitor is not None:
        callbacks.append(BestWeights(monitor, mode=mode))
        if early_stopping_patience is not None:
            callbacks.append(L.pytorch.callbacks.EarlyStopping(monitor, patience=early_stopping_patience, mode=mode))
    if checkpoint_dir is not None:
        callbacks.append(
            L.pytorch.callbacks.ModelCheckpoint(
                dirpath=checkpoint_dir, filename="epoch{epoch:03d}", save_last=True, save_top_k=0, every_n_epochs=1
            )
        )
    return callbacks


#: Trainer arguments that cannot work with genar's own optimisation step (it accumulates memory-bounded micro-batches
#: and clips the gradient itself, so Lightning's automatic versions do not apply), each with what to use instead.
REFUSED_TRAINER_ARGUMENTS = {
    "gradient_clip_val": "GenARConfig(grad_clip=...) clips the gradient norm at every step",
    "gradient_clip_algorithm": "GenARConfig(grad_clip=...) clips the gradient norm at every step",
    "accumulate_grad_batches": (
        "GenARConfig(batch_size=...) is the batch of every optimiser step; genar splits it into micro-batches that "
        "fit in memory itself (GenARConfig(micro_batch_size=...) sets their size)"
    ),
}


def check_trainer_kwargs(trainer_kwargs: dict[str, Any]) -> None:
    """Refuse :class:`lightning.Trainer` arguments that genar's training step cannot honour, naming the fix."""
    for name in trainer_kwargs:
        if name in REFUSED_TRAINER_ARGUMENTS:
            msg = (
                f"The Trainer argument `{name}={trainer_kwargs[name]!r}` does not apply to genar's training step: "
                f"{REFUSED_TRAINER_ARGUMENTS[name]}."
            )
            raise ValueError(msg)


def make_trainer(
    *,
    max_epochs: int,
    accelerator: str,
    callbacks: list[L.Callback],
    validate: bool,
    checkpointing: bool,
    show_progress_bar: bool,
    **trainer_kwargs: Any,
) -> L.Trainer:
    """A deterministic, single-device Trainer that logs once per epoch; ``trainer_kwargs`` override the defaults.

    Arguments genar's training step cannot honour (:data:`REFUSED_TRAINER_ARGUMENTS`) are refused with the fix.
    """
    check_trainer_kwargs(trainer_kwargs)
    kwargs = {
        "max_epochs": max_epochs,
        "accelerator": accelerator,
        "devices": 1,
        "logger": False,
        "enable_checkpointing": checkpointing,
        "enable_progress_bar": show_progress_bar,
        "enable_model_summary": False,
        "deterministic": True,
        "num_sanity_val_steps": 0,
        "log_every_n_steps": 1,
        "callbacks": callbacks,
    }
    if not validate:
        kwargs["limit_val_batches"] = 0
    kwargs.update(trainer_kwargs)
    return L.Trainer(**kwargs)
