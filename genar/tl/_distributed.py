"""Decoding split across processes, GPUs or nodes by Lightning's ``Trainer.predict``: the engine training uses.

Lightning over Dask because genar already trains with Lightning: the same arguments (``devices``, ``strategy``,
``num_nodes``, ``accelerator``), the same launchers (a script run with ``devices=N`` re-launches itself; ``srun`` or
``torchrun`` on a cluster), the same process groups (gloo on CPUs, NCCL on GPUs), and no second scheduler to deploy.
Each process decodes its share of the spots; the shares are gathered by spot index onto every process, so each
returns the whole result in the table's row order, equal to what one process computes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import lightning as L
import numpy as np
import torch

from .._distributed import gather_rows, predict_shares
from ._point import point_prediction

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
    shares = predict_shares(
        trainer_kwargs, DecodingPlan(model, point=point), loader, show_progress_bar=show_progress_bar
    )
    n, g = len(features), len(model.genes)
    out = gather_rows(
        shares,
        n,
        "decoded spots",
        estimate=np.full((n, g), np.nan, dtype=np.float32),
        counts=np.zeros((n, g), dtype=np.int32),
    )
    return out["estimate"], out["counts"]


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
        estimate, counts = point_prediction(self.genar, feats_np, xy_np, point=self.point, **common)
        return {"rows": rows.cpu().numpy(), "estimate": estimate, "counts": np.asarray(counts, dtype=np.int32)}
