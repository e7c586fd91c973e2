"""Transformer block with AdaLN conditioning, and the conditioning / FiLM helpers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from ._attention import KVCache, SelfAttention
from ._linear import linear
from ._random import current_generator


class DropPath(nn.Module):
    """Stochastic depth: drop the residual branch of whole samples with probability ``p`` while training."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x_BLC: torch.Tensor) -> torch.Tensor:
        """Scale kept samples by ``1 / (1 - p)``; identity in eval mode."""
        factor = self.sample_factor(x_BLC)
        return x_BLC if factor is None else x_BLC * factor

    def gate(self, gate_B1C: torch.Tensor) -> torch.Tensor:
        """``gate`` times this draw's per-sample factor: ``x + drop_path(gate * branch) == x + gate' * branch``.

        Folding the draw into the ``(B, 1, C)`` gate leaves one pass over the branch, ``addcmul(x, branch, gate')``,
        instead of a multiply by the gate, one by the draw, a division and an add, each with its backward.
        """
        factor = self.sample_factor(gate_B1C)
        return gate_B1C if factor is None else gate_B1C * factor

    def sample_factor(self, like_B: torch.Tensor) -> torch.Tensor | None:
        """``keep / (1 - p)`` per sample, ``(B, 1, 1)``, drawn from the current generator; None in eval mode."""
        if not self.training or self.p == 0.0:
            return None
        keep = torch.empty(like_B.shape[0], 1, 1, device=like_B.device, dtype=like_B.dtype)
        keep.bernoulli_(1 - self.p, generator=current_generator())
        return keep.div_(1 - self.p)


class AdaLNBlock(nn.Module):
    """Pre-norm attention + MLP block whose norms are shifted, scaled and gated by the condition (adaLN-Zero).

    Parameters
    ----------
    width, heads, mlp_ratio
        Model width, attention heads, MLP hidden size as a multiple of the width.
    drop_path
        Stochastic-depth probability of both residual branches.
    """

    def __init__(self, width: int, heads: int, mlp_ratio: float, drop_path: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = SelfAttention(width, heads)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(width * mlp_ratio)
        # (a Sequential for the saved weights' names; run by :meth:`_mlp`, which fuses the GELU when it can)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))
        self.ada = nn.Linear(width, 6 * width)
        self.drop_path = DropPath(drop_path)

    def forward(
        self,
        x_BLC: torch.Tensor,
        cond_BC: torch.Tensor,
        mask_LL: torch.Tensor | None = None,
        cache: KVCache | None = None,
        layer: int = 0,
        scale_ends: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """One block; ``cond_BC`` is the activated condition (see :class:`SelfAttention` for the rest)."""
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(cond_BC).unsqueeze(1).chunk(6, dim=-1)
        h = torch.addcmul(shift1, self.norm1(x_BLC), 1 + scale1)
        x_BLC = torch.addcmul(x_BLC, self.attn(h, mask_LL, cache, layer, scale_ends), self.drop_path.gate(gate1))
        h = torch.addcmul(shift2, self.norm2(x_BLC), 1 + scale2)
        return torch.addcmul(x_BLC, self._mlp(h), self.drop_path.gate(gate2))

    def _mlp(self, h_BLC: torch.Tensor) -> torch.Tensor:
        """``self.mlp(h)``, through :func:`~genar.module._linear.linear` (bias and GELU fused in CPU inference)."""
        return linear(linear(h_BLC, self.mlp[0], gelu=True), self.mlp[2])


def sinusoidal(coords_BD: torch.Tensor, n_freqs: int) -> torch.Tensor:
    """Sine/cosine features of coordinates in ``[0, 1]`` at ``n_freqs`` octaves: ``(B, 2 * D * n_freqs)``."""
    freqs = math.pi * 2.0 ** torch.arange(n_freqs, device=coords_BD.device, dtype=coords_BD.dtype)
    angles = coords_BD[..., None] * freqs  # (B, D, F)
    return torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(1)


class Condition(nn.Module):
    """Fuse the histology embedding and the encoded spot coordinates into one condition vector.

    With probability ``dropout`` (training only) a sample's condition is replaced by a learned null vector.
    """

    def __init__(self, feature_dim: int, width: int, n_freqs: int, dropout: float) -> None:
        super().__init__()
        self.n_freqs = n_freqs
        self.dropout = dropout
        self.histology = nn.Sequential(nn.Linear(feature_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.coords = nn.Linear(4 * n_freqs, width)
        self.fuse = nn.Sequential(nn.SiLU(), nn.Linear(2 * width, width))
        self.null = nn.Parameter(torch.zeros(width))

    def forward(self, features_BD: torch.Tensor, coords_B2: torch.Tensor) -> torch.Tensor:
        """Condition ``(B, width)``."""
        h = torch.cat([self.histology(features_BD), self.coords(sinusoidal(coords_B2, self.n_freqs))], dim=-1)
        cond_BC = self.fuse(h)
        if self.training and self.dropout > 0:
            drop = torch.rand(cond_BC.shape[0], 1, device=cond_BC.device, generator=current_generator()) < self.dropout
            cond_BC = torch.where(drop, self.null.to(cond_BC.dtype), cond_BC)
        return cond_BC
