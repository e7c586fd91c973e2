"""Multi-head self-attention on ``scaled_dot_product_attention``, with an explicit KV cache for decoding."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F


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
        shape = (batch, heads, max_len, head_dim)
        self._keys = [torch.empty(shape, device=device, dtype=dtype) for _ in range(n_layers)]
        self._values = [torch.empty(shape, device=device, dtype=dtype) for _ in range(n_layers)]
        self.keys, self.values = self._keys, self._values
        self.lengths = [0] * n_layers

    @property
    def capacity(self) -> int:
        """Largest batch the buffers hold."""
        return self._keys[0].shape[0]

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
        q, k, v = self.qkv(x_BLC).view(B, L, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        if cache is not None:
            k, v = cache.append(layer, k, v)  # everything cached is at a coarser or the same scale: no mask
        if x_BLC.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # mixed precision on the CPU: the attention itself stays float32 (the CPU kernel's bfloat16 backward
            # is about twice as slow as its float32 one), the projections around it take autocast's dtype
            with torch.autocast("cpu", enabled=False):
                out_BHLd = _attend(q.float(), k.float(), v.float(), mask_LL, scale_ends)
        else:
            out_BHLd = _attend(q, k, v, mask_LL, scale_ends)
        return self.proj(out_BHLd.transpose(1, 2).reshape(B, L, C))


def _attend(q, k, v, mask_LL: torch.Tensor | None, scale_ends: Sequence[int] | None) -> torch.Tensor:
    """``scaled_dot_product_attention`` under ``mask_LL``, or scale by scale (see :class:`SelfAttention`)."""
    if scale_ends is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask_LL)
    out, start = [], 0
    for end in scale_ends:
        out.append(F.scaled_dot_product_attention(q[:, :, start:end], k[:, :, :end], v[:, :, :end]))
        start = end
    return torch.cat(out, dim=2) if len(out) > 1 else out[0]
