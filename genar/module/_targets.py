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


#: Rows of logits computed at once by :func:`head_banded_kl`: keeps each temporary near 16 MB, under glibc's
#: mmap threshold, so the buffers are reused from the heap instead of being mapped (and page-faulted) anew.
CHUNK_ELEMENTS = 4 * 1024 * 1024


class _HeadBandedKL(torch.autograd.Function):
    """Output layer + banded KL, chunk by chunk: the ``(N, V)`` logits never exist in full.

    Forward keeps only ``logsumexp`` per row; backward recomputes each chunk's logits (one extra matrix multiply
    of the head) and turns them in place into ``softmax * sum(t) - scatter(t)``, the gradient of the KL.
    """

    @staticmethod
    def forward(ctx, h_NC, weight_VC, bias_V, idx_NW, weight_NW):
        N, V = h_NC.shape[0], weight_VC.shape[0]
        chunk = max(1, CHUNK_ELEMENTS // V)
        lse_N = h_NC.new_empty(N)
        picked_NW = h_NC.new_empty(idx_NW.shape)
        for s in range(0, N, chunk):
            logits = torch.addmm(bias_V, h_NC[s : s + chunk], weight_VC.t())
            lse_N[s : s + chunk] = torch.logsumexp(logits, dim=-1)
            picked_NW[s : s + chunk] = logits.gather(-1, idx_NW[s : s + chunk])
        kl_N = (weight_NW * (weight_NW.clamp_min(1e-12).log() - picked_NW + lse_N[:, None])).sum(-1)
        ctx.save_for_backward(h_NC, weight_VC, bias_V, lse_N, idx_NW, weight_NW)
        ctx.chunk = chunk
        return kl_N

    @staticmethod
    def backward(ctx, grad_N):
        h_NC, weight_VC, bias_V, lse_N, idx_NW, weight_NW = ctx.saved_tensors
        chunk = ctx.chunk
        grad_h = torch.empty_like(h_NC)
        grad_w = torch.zeros_like(weight_VC)
        grad_b = torch.zeros_like(bias_V)
        row_scale = grad_N * weight_NW.sum(-1)
        for s in range(0, h_NC.shape[0], chunk):
            e = s + chunk
            g = torch.addmm(bias_V, h_NC[s:e], weight_VC.t())
            g.sub_(lse_N[s:e, None]).exp_().mul_(row_scale[s:e, None])
            g.scatter_add_(-1, idx_NW[s:e], -(weight_NW[s:e] * grad_N[s:e, None]))
            torch.mm(g, weight_VC, out=grad_h[s:e])
            grad_w.addmm_(g.t(), h_NC[s:e])
            grad_b.add_(g.sum(0))
        return grad_h, grad_w, grad_b, None, None


def head_banded_kl(
    h_BLC: torch.Tensor, head: torch.nn.Linear, idx_BLW: torch.Tensor, weight_BLW: torch.Tensor
) -> torch.Tensor:
    """``banded_kl(head(h), idx, weight)``, ``(B, L)``, without ever holding the ``(B, L, V)`` logits."""
    B, L, C = h_BLC.shape
    W = idx_BLW.shape[-1]
    kl = _HeadBandedKL.apply(
        h_BLC.reshape(B * L, C), head.weight, head.bias, idx_BLW.reshape(B * L, W), weight_BLW.reshape(B * L, W)
    )
    return kl.view(B, L)
