"""Banded soft targets over count tokens, and the KL loss computed on the band only."""

from __future__ import annotations

import math

import torch

from ._output_layer import output_logits, padded_output_layer


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


#: Logits computed at once by :func:`head_scale_kl`: about 2 MB of float32 (262 rows of the paper's 2,001 tokens),
#: so the ten or so passes over each chunk (max, exp, sums, the gradient and its two products) read it from a
#: core's cache, and its temporaries are reused from the heap rather than mapped anew. On one CPU thread (a training
#: stream's), 32 spots of config ``small``, the head took 246 ms with these chunks against 302 ms with 16 MB ones
#: (bfloat16 mixed: 204 against 229 ms); 1 MB and 0.5 MB chunks were slower again (257 and 289 ms: more, smaller
#: products).
CHUNK_ELEMENTS = 512 * 1024


def compute_dtype(device: torch.device, dtype: torch.dtype) -> torch.dtype:
    """The dtype matrix multiplies run in here: autocast's where it is on for ``device``, else ``dtype``."""
    kind = device.type
    if torch.is_autocast_enabled(kind):
        return torch.get_autocast_dtype(kind)
    return dtype


class _HeadScaleKL(torch.autograd.Function):
    """Output layer + banded KL + mean per scale, chunk by chunk: the ``(N, V)`` logits never exist in full.

    The loss of scale ``k`` is the mean KL over its ``B * n_k`` rows, so the gradient of any function of the ``K``
    losses reaches a row only through one number, the upstream gradient of its scale. Forward therefore computes the
    logits of each chunk once and, while they are at hand, the KL's gradient ``softmax * sum(t) - t`` and what it
    contributes to the input's and the layer's gradients (the latter summed per scale); backward only scales those
    by the upstream gradients. One matrix multiply of the head fewer than recomputing the logits in backward, and
    nothing of size ``V`` kept between the passes. Matrix multiplies run in the autocast dtype when autocast is on;
    ``logsumexp``, the softmax and the sums are float32.
    """

    @staticmethod
    def forward(ctx, h_BLC, weight_VC, bias_V, targets, scales, dtype):
        B, L, C = h_BLC.shape
        V = weight_VC.shape[0]
        need_grad = any(ctx.needs_input_grad[:3])
        rows = max(1, CHUNK_ELEMENTS // V)
        w_PC, b_P = padded_output_layer(weight_VC, bias_V, dtype)
        w_VC = w_PC[:V]
        acc = torch.promote_types(dtype, torch.float32)  # softmax, sums and accumulated gradients: float32 at least
        losses = torch.zeros(len(scales), dtype=acc, device=h_BLC.device)
        grad_h = []  # per scale, (B * n_k, C)
        if need_grad:
            grad_w = torch.zeros(len(scales), V, C, dtype=acc, device=h_BLC.device)
            grad_b = torch.zeros(len(scales), V, dtype=acc, device=h_BLC.device)
        start = 0
        for k, (n, (idx_BnW, w_BnW)) in enumerate(zip(scales, targets, strict=True)):
            h_NC = h_BLC[:, start : start + n].reshape(B * n, C).to(dtype)
            idx_NW = idx_BnW.reshape(B * n, -1)
            w_NW = w_BnW.reshape(B * n, -1).to(acc)
            entropy = (w_NW * w_NW.clamp_min(1e-12).log()).sum()
            total = w_NW.sum(-1, keepdim=True)
            cross = torch.zeros((), dtype=acc, device=h_BLC.device)
            if need_grad:
                grad_h.append(torch.empty(B * n, C, dtype=h_BLC.dtype, device=h_BLC.device))
            for s in range(0, B * n, rows):
                e = min(s + rows, B * n)
                logits = output_logits(h_NC[s:e], w_PC, b_P, V).to(acc)
                picked = logits.gather(-1, idx_NW[s:e])
                top = logits.amax(-1, keepdim=True)
                exp = logits.sub_(top).exp_()  # in place: one pass over the chunk for logsumexp and the softmax
                norm = exp.sum(-1, keepdim=True)
                cross += (w_NW[s:e] * (top + norm.log() - picked)).sum()
                if not need_grad:
                    continue
                g = exp.mul_(total[s:e] / norm)  # d KL / d logits = softmax * sum(t) - t
                g.scatter_add_(-1, idx_NW[s:e], -w_NW[s:e])
                g_low = g.to(dtype)
                grad_h[k][s:e] = g_low @ w_VC
                if dtype == acc:
                    grad_w[k].addmm_(g_low.t(), h_NC[s:e])
                else:
                    grad_w[k] += (g_low.t() @ h_NC[s:e]).to(acc)
                grad_b[k] += g.sum(0)
            losses[k] = (cross + entropy) / (B * n)
            start += n
        if need_grad:
            ctx.save_for_backward(grad_w, grad_b, *grad_h)
            ctx.scales = scales
            ctx.B = B
            ctx.param_dtypes = (weight_VC.dtype, bias_V.dtype)
        return losses

    @staticmethod
    def backward(ctx, grad_K):
        grad_w, grad_b, *grad_h = ctx.saved_tensors
        B, scales = ctx.B, ctx.scales
        coef_K = grad_K.to(grad_w.dtype) / (B * torch.as_tensor(scales, dtype=grad_w.dtype, device=grad_K.device))
        parts = zip(grad_h, scales, coef_K, strict=True)
        gh = torch.cat([g.view(B, n, -1) * coef.to(g.dtype) for g, n, coef in parts], dim=1)
        gw = torch.einsum("k,kvc->vc", coef_K, grad_w).to(ctx.param_dtypes[0])
        gb = (coef_K @ grad_b).to(ctx.param_dtypes[1])
        return gh, gw, gb, None, None, None


def head_scale_kl(
    h_BLC: torch.Tensor,
    head: torch.nn.Linear,
    targets: list[tuple[torch.Tensor, torch.Tensor]],
    scales: tuple[int, ...],
) -> torch.Tensor:
    """Mean ``banded_kl(head(h), idx, weight)`` of every scale, ``(K,)``, without the ``(B, L, V)`` logits.

    ``targets[k]`` is scale ``k``'s band, ``(idx, weight)`` of shape ``(B, n_k, W_k)``; ``scales`` gives the
    ``n_k`` (positions ``sum(scales[:k]) ..`` of ``h`` are scale ``k``). Under autocast the matrix multiplies run in
    its dtype and the rest in float32 (or the input's dtype, where wider); the result is that dtype.
    """
    dtype = compute_dtype(h_BLC.device, h_BLC.dtype)
    with torch.autocast(h_BLC.device.type, enabled=False):
        return _HeadScaleKL.apply(h_BLC, head.weight, head.bias, targets, tuple(scales), dtype)
