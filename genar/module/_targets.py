"""Banded soft targets over count tokens, and the KL loss computed on the band only."""

from __future__ import annotations

import math

import torch


def floor_ceil_target(mean_BN: torch.Tensor, cap: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft label splitting mass between ``floor(m)`` and ``floor(m) + 1``: ``(idx, weight)``, each ``(B, N, 2)``.

    The weight on the ceiling is the fractional part of the mean, so the label's expectation is the mean itself.
    """
    m = mean_BN.clamp(0, cap)
    lo = m.floor().clamp(max=cap)
    frac = m - lo
    idx = torch.stack([lo, (lo + 1).clamp(max=cap)], dim=-1).long()
    weight = torch.stack([1 - frac, frac], dim=-1)
    return idx, weight


def gaussian_band_width(cap: int, alpha: float, beta: float, n_sigma: float = 4.0) -> int:
    """Half-width of the band that holds a discretised Gaussian up to ``n_sigma`` at the largest count."""
    return max(1, math.ceil(n_sigma * (alpha * cap + beta)))


def gaussian_target(
    count_BN: torch.Tensor, cap: int, *, alpha: float, beta: float, half_width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Discretised Gaussian over tokens ``0..cap`` centred on the true count with ``sigma = alpha * count + beta``.

    Returns ``(idx, weight)`` of shape ``(B, N, 2 * half_width + 1)``; positions outside ``0..cap`` get weight 0
    (their index is clamped), and the weights of each row sum to 1.
    """
    c = count_BN.float().clamp(0, cap)
    offsets = torch.arange(-half_width, half_width + 1, device=c.device, dtype=c.dtype)
    centre = c.round()
    raw = centre[..., None] + offsets
    sigma = alpha * c + beta
    logw = -0.5 * ((raw - c[..., None]) / sigma[..., None]) ** 2
    valid = (raw >= 0) & (raw <= cap)
    w = torch.where(valid, logw.exp(), torch.zeros_like(logw))
    w = w / w.sum(-1, keepdim=True)
    return raw.clamp(0, cap).long(), w


def banded_kl(logits_BNV: torch.Tensor, idx_BNW: torch.Tensor, weight_BNW: torch.Tensor) -> torch.Tensor:
    """KL(target || softmax(logits)) per position, ``(B, N)``, touching the logits only at the band.

    ``KL = sum_w t_w log t_w - sum_w t_w (logit_w - logsumexp(logits))``; no dense ``(B, N, V)`` target exists.
    """
    lse_BN = torch.logsumexp(logits_BNV, dim=-1)
    picked = logits_BNV.gather(-1, idx_BNW)
    cross = -(weight_BNW * (picked - lse_BN[..., None])).sum(-1)
    entropy = (weight_BNW * weight_BNW.clamp_min(1e-12).log()).sum(-1)
    return cross + entropy
