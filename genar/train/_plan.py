"""Training plan: the per-scale loss, the optimiser and its schedule, and what gets logged."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Literal

import lightning as L
import numpy as np
import torch

from .._metrics import pearson_per_gene
from ..module import (
    GenARModule,
    check_streams,
    drawing_from,
    floor_ceil_target,
    gaussian_band_width,
    gaussian_target,
    group_means,
    head_scale_kl,
    run_in_streams,
)


def scale_losses(
    module: GenARModule,
    features_BD: torch.Tensor,
    coords_B2: torch.Tensor,
    counts_BG: torch.Tensor,
    *,
    cap: int,
    alpha: float,
    beta: float,
    final_loss: Literal["gaussian", "ce"] = "gaussian",
) -> torch.Tensor:
    """Loss of every scale, ``(K,)``, from one teacher-forced pass.

    Intermediate scales: KL to the soft label splitting mass between floor and ceiling of the group's mean count.
    Final scale: KL to a discretised Gaussian around the true count, ``sigma = alpha * count + beta``, or, with
    ``final_loss="ce"``, cross-entropy on the exact count (a KL to a one-hot label). A module with a regression
    head (an ablation) is trained instead with the squared error between its output and ``log(1 + mean count)``
    at every scale.
    """
    scales = module.scales
    means = group_means(counts_BG.clamp(max=cap), scales)
    teacher = torch.cat([m.round().long() for m in means[:-1]] + [torch.zeros_like(counts_BG)], dim=1)
    h_BLC = module.hidden(features_BD, coords_B2, teacher)
    if module.head_kind == "regression":
        target_BL = torch.cat(means[:-1] + [counts_BG.clamp(0, cap).to(h_BLC.dtype)], dim=1).log1p()
        err_BL = (module.head(h_BLC).squeeze(-1) - target_BL).square()
        return _per_scale_mean(err_BL, module)
    # one band per scale: floor/ceil of the group means for the coarser scales, the Gaussian (or one-hot) for the last
    if final_loss == "ce":
        idx_f = counts_BG.clamp(0, cap).unsqueeze(-1)
        final = (idx_f, torch.ones_like(idx_f, dtype=torch.float32))
    else:
        half = gaussian_band_width(cap, alpha, beta)
        final = gaussian_target(counts_BG, cap, alpha=alpha, beta=beta, half_width=half)
    targets = [floor_ceil_target(m, cap) for m in means[:-1]] + [final]
    return head_scale_kl(h_BLC, module.head, targets, scales)


def _add(total: torch.Tensor | None, term: torch.Tensor | None) -> torch.Tensor | None:
    """``total + term`` where either may be None (no gradient)."""
    if term is None:
        return total
    return term if total is None else total.add_(term)


def _per_scale_mean(loss_BL: torch.Tensor, module: GenARModule) -> torch.Tensor:
    """Mean of a per-position loss over the spots and the positions of each scale, ``(K,)``."""
    kw = {"device": loss_BL.device, "dtype": loss_BL.dtype}
    per_scale = torch.zeros(len(module.scales), **kw).index_add_(0, module.level_L, loss_BL.mean(0))
    return per_scale / torch.as_tensor(module.scales, **kw)


#: Lightning precisions under which training streams run (their gradients are computed apart and added up).
STREAM_PRECISIONS = ("32-true", "bf16-mixed")
#: Activation memory one micro-batch may take during training, for the automatic micro-batch size.
ACTIVATION_BUDGET_BYTES = 1.25 * 2**30
#: Stored activations per token and block, in multiples of the width (residuals, norms, q/k/v, attention and
#: projection inputs, the MLP's hidden layer before and after GELU), used to estimate activation memory.
_ACTIVATIONS_PER_TOKEN_BLOCK = 18


def auto_micro_batch(module: GenARModule, batch_size: int) -> int:
    """Largest micro-batch whose activations fit :data:`ACTIVATION_BUDGET_BYTES` (at least 1)."""
    per_spot = sum(module.scales) * module.width * module.depth * _ACTIVATIONS_PER_TOKEN_BLOCK * 4
    return max(1, min(batch_size, int(ACTIVATION_BUDGET_BYTES // per_spot)))


def loss_weights(scales: Sequence[int], weighting: Literal["scale", "position"]) -> list[float]:
    """Weight of every scale in the loss: equal (``"scale"``), or in proportion to its positions (``"position"``)."""
    return [1.0] * len(scales) if weighting == "scale" else [float(n) for n in scales]


def lr_factor(step: int, total: int, *, schedule: Literal["constant", "cosine"], warmup: float) -> float:
    """Multiple of the base learning rate at optimiser ``step`` of ``total``: constant, or warm-up then cosine."""
    if schedule == "constant":
        return 1.0
    warm = int(warmup * total)
    if step < warm:
        return (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))


class GenARTrainingPlan(L.LightningModule):
    """LightningModule around a :class:`~genar.module.GenARModule`.

    Each optimiser step sees the whole batch; its gradient is accumulated over micro-batches of at most
    ``micro_batch_size`` spots (the loss is a mean over spots, so the gradient is the same up to floating-point
    rounding and dropout draws), which bounds activation memory. The gradient's norm is clipped at ``grad_clip``
    and the learning rate follows ``lr_schedule``. Logs ``train/loss`` and ``train/loss_scale{k}`` (and ``val/...``
    on validation data) once per epoch; with ``free_running`` validation spots also ``val/pcc`` and ``val/mse``, the
    mean per-gene Pearson and the error in log2(x + 1) of the point estimate decoded from histology alone.

    On the CPU the batch is split between ``streams`` threads that train on their parts at once, each running
    PyTorch on its share of the cores, and their gradients are added up (:meth:`training_streams`; ``None``:
    automatic). A seeded run is reproducible for a given number of streams; runs with different numbers draw
    different random numbers (like data-parallel training on different numbers of devices).
    """

    def __init__(
        self,
        module: GenARModule,
        *,
        cap: int,
        alpha: float,
        beta: float,
        lr: float,
        final_loss: Literal["gaussian", "ce"] = "gaussian",
        weight_decay: float = 0.0,
        scale_weights: Sequence[float] | None = None,
        micro_batch_size: int | None = None,
        grad_clip: float | None = None,
        lr_schedule: Literal["constant", "cosine"] = "constant",
        warmup: float = 0.05,
        free_running: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        streams: int | None = None,
    ) -> None:
        super().__init__()
        self.streams = check_streams(streams)
        #: The most training streams a batch took (:meth:`training_streams`); None before the first batch.
        self.streams_used: int | None = None
        self.automatic_optimization = False
        self.module = module
        self.cap, self.alpha, self.beta, self.lr, self.weight_decay = cap, alpha, beta, lr, weight_decay
        self.final_loss = final_loss
        self.micro_batch_size = micro_batch_size
        self.grad_clip, self.lr_schedule, self.warmup = grad_clip, lr_schedule, warmup
        self.free_running = free_running
        K = len(module.scales)
        weights = torch.ones(K) if scale_weights is None else torch.as_tensor(scale_weights, dtype=torch.float32)
        if weights.shape != (K,) or (weights < 0).any() or weights.sum() <= 0:
            msg = f"`scale_weights` must be {K} non-negative numbers, not all 0; got {scale_weights}."
            raise ValueError(msg)
        self.register_buffer("scale_weights", weights / weights.sum(), persistent=False)

    def _losses(self, features, coords, counts) -> torch.Tensor:
        return scale_losses(
            self.module,
            features,
            coords,
            counts,
            cap=self.cap,
            alpha=self.alpha,
            beta=self.beta,
            final_loss=self.final_loss,
        )

    def _total_loss(self, per_scale: torch.Tensor) -> torch.Tensor:
        """The loss the optimiser sees: the per-scale losses weighted by :attr:`scale_weights`."""
        return (per_scale * self.scale_weights.to(per_scale.device)).sum()

    def _micro_batch_size(self, spots: int) -> int:
        return self.micro_batch_size or auto_micro_batch(self.module, spots)

    def _micro_batches(self, batch: Sequence[torch.Tensor], *, micro: int | None = None, spots: int | None = None):
        """Yield ``(chunk, share)``: micro-batches of the batch and their share of ``spots`` (default: its spots).

        ``micro``: spots per micro-batch (default: :attr:`micro_batch_size`, or automatic).
        """
        B = batch[0].shape[0]
        micro = micro or self._micro_batch_size(B)
        for s in range(0, B, micro):
            yield [t[s : s + micro] for t in batch], (min(s + micro, B) - s) / (spots or B)

    def training_streams(self, example: torch.Tensor) -> int:
        """How many threads train on parts of each batch at once (on the CPU; see :attr:`streams`).

        ``streams=None`` (automatic) takes as many as PyTorch has threads, at most one per spot, where the
        gradients can be computed apart and added up: on the CPU, in one process, in float32 or bfloat16 mixed
        precision; elsewhere one. An explicit number above 1 where that does not hold is an error.
        """
        B = example.shape[0]
        trainer = self._trainer
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        reason = None
        if example.device.type != "cpu":
            reason = f"training on {example.device.type}"
        elif distributed or (trainer is not None and trainer.world_size > 1):
            reason = "distributed training (each process already trains on its own part of the batch)"
        elif trainer is not None and str(trainer.precision) not in STREAM_PRECISIONS:
            reason = f"precision {trainer.precision!r} (streams take {', '.join(STREAM_PRECISIONS)})"
        if self.streams is None:
            return 1 if reason else max(1, min(torch.get_num_threads(), B))
        if self.streams > 1 and reason:
            msg = f"`streams={self.streams}` runs CPU threads in one process, not {reason}. Use streams=1 or None."
            raise ValueError(msg)
        return max(1, min(self.streams, B))

    def _accumulate_in_streams(self, batch: Sequence[torch.Tensor], streams: int) -> torch.Tensor:
        """:meth:`accumulate_gradients` with the batch split into ``streams`` parts, trained on at once.

        Every part draws its random numbers (stochastic depth, condition dropout) from its own generator, seeded in
        order from PyTorch's global one, and its gradient is summed in the parts' order: a seeded run gives the same
        numbers whatever the threads' timing (for a given number of streams).
        """
        B = batch[0].shape[0]
        micro = max(1, self._micro_batch_size(B) // streams)  # the streams' activations within the same memory
        bounds = np.linspace(0, B, streams + 1).round().astype(int)
        parts = [[t[a:b] for t in batch] for a, b in itertools.pairwise(bounds)]
        seeds = torch.randint(2**62, (streams,)).tolist()  # from the global generator, in order
        params = [p for p in self.module.parameters() if p.requires_grad]

        def part_task(part, seed: int):
            def run(_stream) -> tuple[list[torch.Tensor | None], torch.Tensor]:
                grads: list[torch.Tensor | None] = [None] * len(params)
                total = torch.zeros(len(self.module.scales))
                with drawing_from(torch.Generator().manual_seed(seed)):
                    for chunk, share in self._micro_batches(part, micro=micro, spots=B):
                        per_scale = self._losses(*chunk)
                        loss = self._total_loss(per_scale) * share
                        with torch.autocast("cpu", enabled=False):  # mixed precision: forward only
                            new = torch.autograd.grad(loss, params, allow_unused=True)
                        grads = [_add(g, n) for g, n in zip(grads, new, strict=True)]
                        total += per_scale.detach().float() * share
                return grads, total

            return run

        results = run_in_streams([part_task(p, seed) for p, seed in zip(parts, seeds, strict=True)], [None] * streams)
        for grads, _ in results:
            for param, grad in zip(params, grads, strict=True):
                if grad is not None:
                    param.grad = grad if param.grad is None else param.grad.add_(grad)
        return sum(total for _, total in results)

    def accumulate_gradients(self, batch: Sequence[torch.Tensor], backward=None) -> torch.Tensor:
        """Backpropagate the batch's loss micro-batch by micro-batch; return the per-scale losses (detached).

        ``backward`` (default ``Tensor.backward``) lets Lightning insert its own hooks. With several training streams
        (see :meth:`training_streams`) the batch is split between them instead, and their gradients are added to the
        parameters' ``.grad`` in the streams' order; ``backward`` is then not called.
        """
        streams = self.training_streams(batch[0])
        self.streams_used = max(self.streams_used or 0, streams)
        if streams > 1:
            return self._accumulate_in_streams(batch, streams)
        backward = backward or (lambda loss: loss.backward())
        device = batch[0].device
        total = torch.zeros(len(self.module.scales), device=device)
        for chunk, share in self._micro_batches(batch):
            per_scale = self._losses(*chunk)
            with torch.autocast(device.type, enabled=False):  # mixed precision: forward only, as autocast advises
                backward(self._total_loss(per_scale) * share)
            total += per_scale.detach() * share
        return total

    def _log(self, per_scale: torch.Tensor, stage: str, batch_size: int) -> torch.Tensor:
        loss = self._total_loss(per_scale)
        self.log(
            f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=True, batch_size=batch_size, sync_dist=True
        )
        for k, value in enumerate(per_scale):
            self.log(
                f"{stage}/loss_scale{k}", value, on_step=False, on_epoch=True, batch_size=batch_size, sync_dist=True
            )
        return loss

    def training_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        optimizer = self.optimizers()
        optimizer.zero_grad(set_to_none=True)
        per_scale = self.accumulate_gradients(batch, backward=self.manual_backward)
        if self.grad_clip is not None:
            self.clip_gradients(optimizer, gradient_clip_val=self.grad_clip, gradient_clip_algorithm="norm")
        optimizer.step()
        self.lr_schedulers().step()
        return self._log(per_scale, "train", batch[0].shape[0])

    def validation_step(self, batch: Sequence[torch.Tensor], batch_idx: int) -> torch.Tensor:
        per_scale = sum(self._losses(*chunk) * share for chunk, share in self._micro_batches(batch))
        return self._log(per_scale, "val", batch[0].shape[0])

    def on_validation_epoch_end(self) -> None:
        """Score the point estimate decoded from histology alone on the validation spots (``val/pcc``, ``val/mse``)."""
        if self.free_running is None or self.trainer.sanity_checking:
            return
        features, coords, counts = self.free_running
        pcc, mse = free_running_scores(self.module, features, coords, counts, device=self.device)
        self.log("val/pcc", pcc, on_step=False, on_epoch=True, batch_size=len(features))
        self.log("val/mse", mse, on_step=False, on_epoch=True, batch_size=len(features))

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Store the CPU random state (dropout, drop-path, condition dropout), so that a resumed run continues it."""
        checkpoint["genar_torch_rng_state"] = torch.get_rng_state()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Restore the random state stored by :meth:`on_save_checkpoint`."""
        if "genar_torch_rng_state" in checkpoint:
            torch.set_rng_state(checkpoint["genar_torch_rng_state"])

    def configure_optimizers(self):
        """AdamW (decoupled weight decay on matrices only) and the learning-rate schedule, stepped every step."""
        decay = [p for p in self.module.parameters() if p.requires_grad and p.dim() >= 2]
        rest = [p for p in self.module.parameters() if p.requires_grad and p.dim() < 2]
        groups = [{"params": decay, "weight_decay": self.weight_decay}, {"params": rest, "weight_decay": 0.0}]
        optimizer = torch.optim.AdamW(groups, lr=self.lr)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: lr_factor(step, total, schedule=self.lr_schedule, warmup=self.warmup)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


def free_running_scores(
    module: GenARModule, features: np.ndarray, coords: np.ndarray, counts: np.ndarray, *, device=None
) -> tuple[float, float]:
    """Mean per-gene Pearson (over genes where it is defined) and MSE, in log2(x + 1), of the greedy-path estimate.

    The estimate is ``E[log2(1 + X)]`` at the finest scale given the greedily decoded coarser scales
    (:meth:`~genar.module.GenARModule.decode_expectation`): what :func:`genar.tl.predict` writes, scored as
    :func:`genar.tl.evaluate` scores it.
    """
    was_training = module.training
    module.eval()
    try:
        values = torch.log2(1 + torch.arange(module.vocab, dtype=torch.float32, device=device))
        feats = torch.as_tensor(features, dtype=torch.float32, device=device)
        xy = torch.as_tensor(coords, dtype=torch.float32, device=device)
        _, expected = module.decode_expectation(feats, xy, values)
    finally:
        module.train(was_training)
    estimate = expected.cpu().numpy().astype(np.float64)
    truth = np.log2(np.asarray(counts, dtype=np.float64) + 1.0)
    r = pearson_per_gene(truth, estimate)
    pcc = float(np.nanmean(r)) if np.isfinite(r).any() else 0.0
    return pcc, float(((truth - estimate) ** 2).mean())
