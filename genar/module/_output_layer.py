"""The output layer's matrix multiply with its rows padded, so that every row of logits starts on a cache line."""

from __future__ import annotations

import torch

#: The output layer's rows (one per count token) are padded with zeros to a multiple of this many in the matrix
#: multiply: 32 elements are 64 bytes in bfloat16 and two cache lines in float32. With the paper's 2,001 tokens,
#: every row of logits started off a cache line, and the product took 1.5x as long as one 2,016 columns wide
#: (2 CPU cores, float32; ``benchmarks/speed.py`` measures the effect on whole steps).
ROW_MULTIPLE = 32


def padded_output_layer(
    weight_VC: torch.Tensor, bias_V: torch.Tensor, dtype: torch.dtype | None = None, *, bias_fill: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(weight, bias)`` in ``dtype`` with zero rows appended up to a multiple of :data:`ROW_MULTIPLE`.

    Use with :func:`output_logits`; the extra logits are never read, and the gradient that flows back through the
    zero rows is zero. With ``bias_fill=-inf`` the extra logits are ``-inf``: the padded rows of logits can then be
    read whole, contiguous, by an argmax or a softmax, and the extra tokens get probability zero.
    """
    dtype = dtype or weight_VC.dtype
    V, C = weight_VC.shape
    padded = -(-V // ROW_MULTIPLE) * ROW_MULTIPLE
    if padded == V:
        return weight_VC.to(dtype), bias_V.to(dtype)
    weight = weight_VC.new_zeros((padded, C), dtype=dtype)
    weight[:V] = weight_VC
    bias = bias_V.new_full((padded,), bias_fill, dtype=dtype)
    bias[:V] = bias_V
    return weight, bias


def output_logits(h_NC: torch.Tensor, weight_PC: torch.Tensor, bias_P: torch.Tensor, vocab: int) -> torch.Tensor:
    """Logits ``(N, vocab)`` of a layer from :func:`padded_output_layer`: a view of the first ``vocab`` columns."""
    return torch.addmm(bias_P, h_NC, weight_PC.t())[:, :vocab]
