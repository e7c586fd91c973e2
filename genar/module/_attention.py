"""Multi-head self-attention on ``scaled_dot_product_attention``, with an explicit KV cache for decoding."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ._linear import linear


class KVCache:
    """Keys and values of every layer for a growing sequence, in preallocated buffers.

    Parameters
    ----------
    n_layers, batch, heads, max_len, head_dim
        Buffer shape: one ``(batch, heads, max_len, head_dim)`` pair per layer.
    device, dtype
        Where the buffers live.
    """

    def __init__(
        self, n_layers: int, batch: int, heads: int, max_len: int, head_dim: int, *, device=None, dtype=None
    ) -> None:
        self._allocate(n_layers, (batch, heads, max_len, head_dim), device=device, dtype=dtype)

    def _allocate(self, n_layers: int, shape: tuple[int, ...], *, device, dtype) -> None:
        """Fresh, empty key and value buffers of ``shape`` for every layer."""
        keys, values = ([torch.empty(shape, device=device, dtype=dtype) for _ in range(n_layers)] for _ in "kv")
        self._hold(keys, values)

    def _hold(self, keys: list[torch.Tensor], values: list[torch.Tensor]) -> None:
        self._keys, self._values = keys, values
        self.keys, self.values = keys, values
        self.lengths = [0] * len(keys)

    @property
    def capacity(self) -> int:
        """Largest batch the buffers hold."""
        return self._keys[0].shape[0]

    def reserve(self, batch: int) -> KVCache:
        """Make room for ``batch`` rows: new, larger buffers (emptied) if the cache holds fewer; returns the cache."""
        if batch > self.capacity:
            like = self._keys[0]
            self._allocate(len(self._keys), (batch, *like.shape[1:]), device=like.device, dtype=like.dtype)
        return self

    def rows(self, start: int, end: int) -> KVCache:
        """An empty cache on rows ``start:end`` of these buffers (the same memory: one per decoding stream)."""
        if not 0 <= start < end <= self.capacity:
            msg = f"Rows {start}:{end} are not within this KV cache's {self.capacity} rows."
            raise ValueError(msg)
        view = object.__new__(KVCache)
        view._hold([k[start:end] for k in self._keys], [v[start:end] for v in self._values])
        return view

    def reset(self, batch: int) -> KVCache:
        """Empty the cache for a new batch of at most :attr:`capacity` rows, reusing the buffers."""
        if batch > self.capacity:
            msg = f"A KV cache for {self.capacity} rows cannot hold a batch of {batch}."
            raise ValueError(msg)
        self.keys = [k[:batch] for k in self._keys]
        self.values = [v[:batch] for v in self._values]
        self.lengths = [0] * len(self._keys)
        return self

    def append(self, layer: int, k_BHNd: torch.Tensor, v_BHNd: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store the new keys/values of ``layer`` and return all of them so far."""
        start = self.lengths[layer]
        end = start + k_BHNd.shape[2]
        self.keys[layer][:, :, start:end] = k_BHNd
        self.values[layer][:, :, start:end] = v_BHNd
        self.lengths[layer] = end
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]


class SelfAttention(nn.Module):
    """Multi-head self-attention.

    Parameters
    ----------
    width
        Model width.
    heads
        Number of heads; must divide ``width``.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        if width % heads:
            msg = f"`heads` ({heads}) must divide `width` ({width})."
            raise ValueError(msg)
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(
        self,
        x_BLC: torch.Tensor,
        mask_LL: torch.Tensor | None = None,
        cache: KVCache | None = None,
        layer: int = 0,
        scale_ends: Sequence[int] | None = None,
    ) -> torch.Tensor:
        """Attend within ``x`` (under ``mask``), or from ``x`` to everything in ``cache`` plus ``x``.

        ``scale_ends``: where each scale of the sequence ends, for the block-causal mask (a position sees its own
        and every coarser scale) without a mask: each scale's queries attend to the keys up to the end of their own
        scale. The same result as ``mask_LL=block_causal_mask(scales)``, with no masked-out work and the faster
        unmasked kernel.
        """
        B, L, C = x_BLC.shape
        qkv_BL3Hd = linear(x_BLC, self.qkv).view(B, L, 3, self.heads, C // self.heads)
        mixed = x_BLC.device.type == "cpu" and torch.is_autocast_enabled("cpu")
        # mixed precision on the CPU: the attention itself stays float32 (the CPU kernel's bfloat16 backward is
        # about twice as slow as its float32 one), the projections around it take autocast's dtype
        with torch.autocast("cpu", enabled=False) if mixed else contextlib.nullcontext():
            if mixed:
                qkv_BL3Hd = qkv_BL3Hd.float()
            if cache is None and mask_LL is None and scale_ends is not None and _uses_cpu_flash(qkv_BL3Hd):
                out_BLC = _BlockCausalFlashCPU.apply(qkv_BL3Hd, tuple(scale_ends)).view(B, L, C)
            else:
                q, k, v = qkv_BL3Hd.permute(2, 0, 3, 1, 4).unbind(0)
                if cache is not None:
                    k, v = cache.append(layer, k, v)  # everything cached is at a coarser or the same scale: no mask
                if cache is not None and mask_LL is None and _few_queries_on_threads(q):
                    out_BHLd = _attend_by_products(q, k, v)
                else:
                    out_BHLd = _attend(q, k, v, mask_LL, scale_ends)
                out_BLC = out_BHLd.transpose(1, 2).reshape(B, L, C)
        return linear(out_BLC, self.proj)


def _attend(q, k, v, mask_LL: torch.Tensor | None, scale_ends: Sequence[int] | None) -> torch.Tensor:
    """``scaled_dot_product_attention`` under ``mask_LL``, or scale by scale (see :class:`SelfAttention`)."""
    if scale_ends is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask_LL)
    out, start = [], 0
    for end in scale_ends:
        out.append(F.scaled_dot_product_attention(q[:, :, start:end], k[:, :, :end], v[:, :, :end]))
        start = end
    return torch.cat(out, dim=2) if len(out) > 1 else out[0]


#: Decoding on the CPU with PyTorch on several threads: a scale of at most this many positions attends to the
#: cached keys through two batched products instead of the flash kernel. On 2 threads, at GenAR's scales up to 100
#: (64 spots, 4 heads of 32) the products took 5-65% less time than the kernel, which splits few queries poorly
#: across threads; at 200 the kernel was as fast or faster. On one thread (a decoding stream's) the kernel was as fast
#: as the products or faster, and keeps the scale.
FEW_QUERIES = 128


def _few_queries_on_threads(q_BHLd: torch.Tensor) -> bool:
    """Whether cached attention for ``q`` takes :func:`_attend_by_products` (see :data:`FEW_QUERIES`)."""
    return q_BHLd.device.type == "cpu" and q_BHLd.shape[2] <= FEW_QUERIES and torch.get_num_threads() > 1


#: Attention scores computed at once by :func:`_attend_by_products` (4 MB of float32: they stay in cache).
SCORE_ELEMENTS = 1024 * 1024


def _attend_by_products(q_BHnd: torch.Tensor, k_BHPd: torch.Tensor, v_BHPd: torch.Tensor) -> torch.Tensor:
    """Unmasked attention as ``softmax(q k^T / sqrt(d)) v``, a few (spot, head) pairs at a time into reused buffers."""
    B, H, n, d = q_BHnd.shape
    P = k_BHPd.shape[2]
    q_Gnd = (q_BHnd * d**-0.5).reshape(B * H, n, d)
    k_GPd, v_GPd = k_BHPd.flatten(0, 1), v_BHPd.flatten(0, 1)
    out_Gnd = q_Gnd.new_empty(B * H, n, d)
    pairs = max(1, min(B * H, SCORE_ELEMENTS // (n * P)))
    scores, probs = q_Gnd.new_empty(pairs, n, P), q_Gnd.new_empty(pairs, n, P)
    for s in range(0, B * H, pairs):
        e = min(s + pairs, B * H)
        torch.bmm(q_Gnd[s:e], k_GPd[s:e].transpose(1, 2), out=scores[: e - s])
        torch.softmax(scores[: e - s], dim=-1, out=probs[: e - s])
        torch.bmm(probs[: e - s], v_GPd[s:e], out=out_Gnd[s:e])
    return out_Gnd.view(B, H, n, d)


_FLASH_CPU = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
_FLASH_CPU_BACKWARD = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None)


def _uses_cpu_flash(qkv: torch.Tensor) -> bool:
    """Whether :class:`_BlockCausalFlashCPU` can run on ``qkv``: a CPU tensor, in a torch that has the kernel."""
    return qkv.device.type == "cpu" and _FLASH_CPU is not None and _FLASH_CPU_BACKWARD is not None


class _BlockCausalFlashCPU(torch.autograd.Function):
    """Block-causal attention scale by scale on the CPU's flash kernel, from the fused ``(B, L, 3, H, d)`` input.

    The same numbers as :func:`_attend` with ``scale_ends``, with its own backward. Through autograd, every scale's
    keys and values are a slice of the whole sequence's, so their gradients came back as zero-filled
    ``(B, H, L, d)`` tensors, one per scale and layer, summed one after another; with the per-scale outputs'
    concatenation and the copy back into the fused layout, that was about a tenth of a training step (config
    ``small``, 2 CPU cores). Here the finest scale, whose queries see every key, writes the keys' and values'
    gradients, and the coarser scales add theirs into the prefix they see; everything is written in place into
    the fused layout. Returns ``(B, L, H, d)``, ready for the output projection.
    """

    @staticmethod
    def forward(ctx, qkv_BL3Hd: torch.Tensor, scale_ends: tuple[int, ...]) -> torch.Tensor:
        B, L, _, H, d = qkv_BL3Hd.shape
        q, k, v = qkv_BL3Hd.permute(2, 0, 3, 1, 4).unbind(0)  # (B, H, L, d) views
        out_BLHd = qkv_BL3Hd.new_empty(B, L, H, d)
        out_BHLd = out_BLHd.transpose(1, 2)
        logsumexps, start = [], 0
        for end in scale_ends:
            out, lse = _FLASH_CPU(q[:, :, start:end], k[:, :, :end], v[:, :, :end])
            out_BHLd[:, :, start:end] = out
            logsumexps.append(lse)
            start = end
        ctx.save_for_backward(qkv_BL3Hd, out_BLHd, *logsumexps)
        ctx.scale_ends = scale_ends
        return out_BLHd

    @staticmethod
    def backward(ctx, grad_BLHd: torch.Tensor):
        qkv_BL3Hd, out_BLHd, *logsumexps = ctx.saved_tensors
        q, k, v = qkv_BL3Hd.permute(2, 0, 3, 1, 4).unbind(0)
        grad_qkv = torch.empty_like(qkv_BL3Hd)
        gq, gk, gv = grad_qkv.permute(2, 0, 3, 1, 4).unbind(0)
        grad_BHLd, out_BHLd = grad_BLHd.transpose(1, 2), out_BLHd.transpose(1, 2)
        starts = (0, *ctx.scale_ends[:-1])
        for i in reversed(range(len(starts))):  # the finest scale first: it sees every key
            start, end = starts[i], ctx.scale_ends[i]
            dq, dk, dv = _FLASH_CPU_BACKWARD(
                grad_BHLd[:, :, start:end],
                q[:, :, start:end],
                k[:, :, :end],
                v[:, :, :end],
                out_BHLd[:, :, start:end],
                logsumexps[i],
                dropout_p=0.0,
                is_causal=False,
            )
            gq[:, :, start:end] = dq
            if i == len(starts) - 1:
                gk[:, :, :end], gv[:, :, :end] = dk, dv
            else:
                gk[:, :, :end] += dk
                gv[:, :, :end] += dv
        return grad_qkv, None
