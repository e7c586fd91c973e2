"""Gathering what several Lightning processes computed, by row, onto every process (prediction and embedding)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ._logging import logger


def predict_shares(trainer_kwargs: dict[str, Any], plan: Any, loader: Any, *, show_progress_bar: bool) -> list[dict]:
    """``Trainer(**trainer_kwargs).predict(plan, loader)``: this process's share, one dict of arrays per batch."""
    import lightning as L

    settings = {
        "logger": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "enable_progress_bar": show_progress_bar,
        **trainer_kwargs,
    }
    trainer = L.Trainer(**settings)
    with warnings.catch_warnings():
        # Lightning's prediction loop calls a torch pytree API that torch has deprecated; nothing a user can act on
        warnings.filterwarnings(
            "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning
        )
        return trainer.predict(plan, loader) or []


def gather_rows(shares: list[dict], n_rows: int, what: str, **empty: np.ndarray) -> dict[str, np.ndarray]:
    """Every process's ``shares`` (dicts with ``rows`` and arrays per row), assembled into ``n_rows`` rows.

    ``empty`` gives, per array name, the output to fill (its shape and dtype). A row computed twice (a sampler pads
    the last shares) is written twice with the same values; a row no process computed is an error.
    """
    import torch

    local = {name: np.concatenate([s[name] for s in shares]) if shares else out[:0] for name, out in empty.items()}
    rows = np.concatenate([s["rows"] for s in shares]) if shares else np.empty(0, dtype=int)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        gathered: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(gathered, (rows, local))
        rows = np.concatenate([g[0] for g in gathered])
        local = {name: np.concatenate([g[1][name] for g in gathered]) for name in empty}
        logger.info("gathered %d %s from %d processes", len(np.unique(rows)), what, len(gathered))
    for name, out in empty.items():
        out[rows] = local[name]
    missing = np.setdiff1d(np.arange(n_rows), rows)
    if missing.size:
        msg = f"{missing.size} {what} were computed by no process (e.g. rows {missing[:5].tolist()}); this is a bug."
        raise RuntimeError(msg)
    return empty
