"""Decoding split across processes, GPUs or nodes by Lightning's ``Trainer.predict``: the engine training uses.

Lightning over Dask because genar already trains with Lightning: the same arguments (``devices``, ``strategy``,
``num_nodes``, ``accelerator``), the same launchers (a script run with ``devices=N`` re-launches itself; ``srun`` or
``torchrun`` on a cluster), the same process groups (gloo on CPUs, NCCL on GPUs), and no second scheduler to deploy.
Each process decodes its share of the spots; the shares are gathered by spot index onto every process, so each
returns the whole result in the table's row order, equal to what one process computes.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Literal

import lightning as L
import numpy as np
import torch

from .._logging import logger
from ._write import nearest_count_in_log_space

if TYPE_CHECKING:
    from ..model import GenAR


def decode_distributed(
    model: GenAR,
    features: np.ndarray,
    coords: np.ndarray,
    *,
    point: Literal["estimate", "mode"],
    batch_size: int,
    show_progress_bar: bool,
    trainer_kwargs: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray]:
    """``(estimate, counts)`` for every spot, decoded by ``Trainer.predict(**trainer_kwargs)`` in several processes."""
    from torch.utils.data import DataLoader, TensorDataset

    data = TensorDataset(
        torch.arange(len(features)), torch.from_numpy(np.asarray(features)), torch.from_numpy(np.asarray(coords))
    )
    loader = DataLoader(data, batch_size=batch_size, shuffle=False)
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
        shares = trainer.predict(DecodingPlan(model, point=point), loader)
    rows = np.concatenate([s["rows"] for s in shares]) if shares else np.empty(0, int)
    estimate = np.concatenate([s["estimate"] for s in shares]) if shares else np.empty((0, len(model.genes)))
    counts = np.concatenate([s["counts"] for s in shares]) if shares else np.empty((0, len(model.genes)))
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        gathered: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(gathered, (rows, estimate, counts))
        rows = np.concatenate([g[0] for g in gathered])
        estimate = np.concatenate([g[1] for g in gathered])
        counts = np.concatenate([g[2] for g in gathered])
        logger.info("gathered %d decoded spots from %d processes", len(np.unique(rows)), len(gathered))
    out_estimate = np.full((len(features), len(model.genes)), np.nan, dtype=np.float32)
    out_counts = np.zeros((len(features), len(model.genes)), dtype=np.int32)
    out_estimate[rows], out_counts[rows] = estimate, counts  # a spot decoded twice (sampler padding) is equal twice
    missing = np.setdiff1d(np.arange(len(features)), rows)
    if missing.size:
        msg = f"{missing.size} spots were decoded by no process (e.g. rows {missing[:5].tolist()}); this is a bug."
        raise RuntimeError(msg)
    return out_estimate, out_counts


class DecodingPlan(L.LightningModule):
    """Decodes one batch of spots per ``predict_step``: the estimate, and the integer counts of ``point``."""

    def __init__(self, model: GenAR, *, point: Literal["estimate", "mode"]) -> None:
        super().__init__()
        self.genar = model
        self.point = point
        self.networks = torch.nn.ModuleList(model.members)  # registered, so Lightning moves them to the device

    def predict_step(self, batch, batch_idx: int) -> dict[str, np.ndarray]:
        """``rows``, ``estimate`` and ``counts`` of one batch of ``(rows, features, coords)``."""
        rows, feats, xy = batch
        feats_np, xy_np = feats.cpu().numpy(), xy.cpu().numpy()
        common = {"batch_size": len(rows), "device": self.device, "show_progress_bar": False}
        estimate = self.genar.predict_estimate(feats_np, xy_np, **common)
        if self.point == "mode":
            counts = self.genar.predict_counts(feats_np, xy_np, n_samples=1, greedy=True, **common)[0]
        else:
            counts = nearest_count_in_log_space(estimate, self.genar.cap)
        return {"rows": rows.cpu().numpy(), "estimate": estimate, "counts": np.asarray(counts, dtype=np.int32)}
