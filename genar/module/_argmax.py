"""The argmax of each row of logits, in vectorised passes on the CPU."""

from __future__ import annotations

import torch


def argmax_rows(x_NP: torch.Tensor, work_NP: torch.Tensor | None = None) -> torch.Tensor:
    """``x.argmax(-1)`` of a 2-d tensor: the first index of each row's maximum.

    PyTorch's CPU argmax does not vectorise: on 520 x 2,016 float32 logits (a decoding chunk at the paper's cap) it
    took 0.46 ms on 2 cores, while a vectorised ``amax`` took 0.03. For contiguous float32 rows on the CPU this
    finds the maximum with ``amax``, marks where ``x - max == 0`` (exactly where ``x == max``, for finite values)
    and takes the first mark with a second ``amax`` over a countdown ``P - j``: five vectorised passes, ~0.22 ms.
    ``work_NP`` (float32, the shape of ``x``) holds the marks; a reused buffer saves allocating one per call. Rows
    with a non-finite maximum (NaN or +inf), other dtypes and other devices take ``torch.argmax``.
    """
    if x_NP.device.type != "cpu" or x_NP.dtype != torch.float32 or x_NP.dim() != 2 or not x_NP.is_contiguous():
        return x_NP.argmax(dim=-1)
    top_N1 = x_NP.amax(dim=-1, keepdim=True)
    if not bool(torch.isfinite(top_N1).all()):
        return x_NP.argmax(dim=-1)
    P = x_NP.shape[1]
    work = torch.empty_like(x_NP) if work_NP is None else work_NP
    countdown_P = torch.arange(P, 0, -1, dtype=torch.float32)
    torch.sub(x_NP, top_N1, out=work).sign_()  # 0 at each row's maxima, -1 elsewhere
    torch.addcmul(countdown_P, work, countdown_P, out=work)  # P - j at the maxima, 0 elsewhere
    return P - work.amax(dim=-1).long()
