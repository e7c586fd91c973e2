"""Training plan: the per-scale loss, the optimiser and what gets logged."""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch

from ..module import GenARModule, banded_kl, floor_ceil_target, gaussian_band_width, gaussian_target, group_means


def scale_losses(
    module: GenARModule,
    features_BD: torch.Tensor,
    coords_B2: torch.Tensor,
    counts_BG: torch.Tensor,
    *,
    cap: int,
    alpha: float,
    beta: float,
) -> torch.Tensor:
    """Loss of every scale, ``(K,)``, from one teacher-forced pass.

    Intermediate scales: KL to the soft label splitting mass between floor and ceiling of the group's mean count.
    Final scale: KL to a discretised Gaussian around the true count, ``sigma = alpha * count + beta``.
    """
    scales = module.scales
    means = group_means(counts_BG.clamp(max=cap), scales)
    teacher = torch.cat([m.round().long() for m in means[:-1]] + [torch.zeros_like(counts_BG)], dim=1)
    logits_BLV = module(features_BD, coords_B2, teacher)
    losses, start = [], 0
    for k, n in enumerate(scales):
        logits = logits_BLV[:, start : start + n]
        if k + 1 < len(scales):
            idx, weight = floor_ceil_target(means[k], cap)
        else:
            half = gaussian_band_width(cap, alpha, beta)
            idx, weight = gaussian_target(counts_BG, cap, alpha=alpha, beta=beta, half_width=half)
        losses.append(banded_kl(logits, idx, weight).mean())
        start += n
    return torch.stack(losses)


class GenARTrainingPlan(L.LightningModule):
    """LightningModule around a :class:`~genar.module.GenARModule`.

    Logs ``train/loss`` and ``train/loss_scale{k}`` (and ``val/...`` on validation data) once per epoch.
    """

    def __init__(
        self,
        module: GenARModule,
        *,
        cap: int,
        alpha: float,
        beta: float,
        lr: float,
        weight_decay: float = 0.0,
        scale_weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.module = module
        self.cap, self.alpha, self.beta, self.lr, self.weight_decay = cap, alpha, beta, lr, weight_decay
        K = len(module.scales)
        weights = torch.ones(K) if scale_weights is None else torch.as_tensor(scale_weights, dtype=torch.float32)
        if weights.shape != (K,) or (weights < 0).any() or weights.sum() <= 0:
            msg = f"`scale_weights` must be {K} non-negative numbers, not all 0; got {scale_weights}."
            raise ValueError(msg)
        self.register_buffer("scale_weights", weights / weights.sum(), persistent=False)

    def _step(self, batch: Sequence[torch.Tensor], stage: str) -> torch.Tensor:
        features, coords, counts = batch
        per_scale = scale_losses(self.module, features, coords, counts, cap=self.cap, alpha=self.alpha, beta=self.beta)
        loss = (per_scale * self.scale_weights).sum()
        B = features.shape[0]
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=B)
        for k, value in enumerate(per_scale.detach()):
            self.log(f"{stage}/loss_scale{k}", value, on_step=False, on_epoch=True, batch_size=B)
        return loss

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:  # noqa: D102
        return self._step(batch, "train")

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:  # noqa: D102
        return self._step(batch, "val")

    def configure_optimizers(self) -> torch.optim.Optimizer:
        """Adam; weight decay (if any) only on matrices, not on biases, norms or embeddings' rows."""
        decay = [p for p in self.module.parameters() if p.requires_grad and p.dim() >= 2]
        rest = [p for p in self.module.parameters() if p.requires_grad and p.dim() < 2]
        groups = [{"params": decay, "weight_decay": self.weight_decay}, {"params": rest, "weight_decay": 0.0}]
        return torch.optim.Adam(groups, lr=self.lr)
