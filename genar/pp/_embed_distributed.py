"""Embedding split across processes, GPUs or nodes by Lightning's ``Trainer.predict`` (as prediction is).

Each process reads its share of the patch batches from the image pyramids (chunk-aware, with its own reader) and
embeds them; the features are gathered by row onto every process (:mod:`genar._distributed`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch

from .._distributed import gather_rows, predict_shares
from ._patch_reader import PatchReader, row_batches

if TYPE_CHECKING:
    from anndata import AnnData
    from spatialdata import SpatialData


class PatchBatches(torch.utils.data.Dataset):
    """Batch ``i`` of the table's patches, ``(rows, uint8 patches)``, read when asked (one reader per process)."""

    def __init__(self, sdata: SpatialData, table: AnnData, patches_key: str, batch_size: int) -> None:
        self.sdata, self.table, self.patches_key = sdata, table, patches_key
        self.batches = row_batches(table.n_obs, batch_size)
        self.reader: PatchReader | None = None

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.reader is None:
            self.reader = PatchReader(self.sdata, self.table, self.patches_key)
        rows = self.batches[i]
        return torch.from_numpy(rows), torch.from_numpy(self.reader.read(rows))


class EmbeddingPlan(L.LightningModule):
    """Embeds one batch of patches per ``predict_step``."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def predict_step(self, batch, batch_idx: int) -> dict[str, np.ndarray]:
        """``rows`` and ``features`` of one ``(rows, patches)`` batch."""
        rows, patches = batch
        return {"rows": rows.cpu().numpy(), "features": self.encoder(patches).float().cpu().numpy()}


def embed_distributed(
    sdata: SpatialData,
    table: AnnData,
    encoder: torch.nn.Module,
    dim: int,
    *,
    batch_size: int,
    patches_key: str,
    pin_memory: bool,
    show_progress_bar: bool,
    trainer_kwargs: dict[str, Any],
) -> np.ndarray:
    """Features ``(n_spots, dim)`` of every patch, embedded by ``Trainer.predict(**trainer_kwargs)``.

    ``pin_memory``: the loader hands batches over in page-locked memory (for GPUs: Lightning then copies them
    asynchronously).
    """
    batches = PatchBatches(sdata, table, patches_key, batch_size)
    loader = torch.utils.data.DataLoader(batches, batch_size=None, shuffle=False, pin_memory=pin_memory)
    try:
        shares = predict_shares(trainer_kwargs, EmbeddingPlan(encoder), loader, show_progress_bar=show_progress_bar)
    finally:
        if batches.reader is not None:
            batches.reader.close()
    empty = np.full((table.n_obs, dim), np.nan, dtype=np.float32)
    return gather_rows(shares, table.n_obs, "embedded patches", features=empty)["features"]
