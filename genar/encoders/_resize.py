"""Resizing uint8 patches to an encoder's input: an exact, integer path for halving, PyTorch's otherwise."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def resize_patches(
    patches_BHWC: torch.Tensor, size: int, memory_format: torch.memory_format, device: torch.device | None = None
) -> torch.Tensor:
    """uint8 ``(B, H, W, 3)`` patches as float ``(B, 3, size, size)`` in ``[0, 1]``, antialiased bilinear.

    What ``F.interpolate(x / 255, size, mode="bilinear", antialias=True)`` gives. When the patches are exactly twice
    the size (224 px patches for a 112 px encoder), :func:`halve_antialiased` computes it on integers, about 2.5×
    faster on the CPU, equal within float32 rounding.
    """
    if patches_BHWC.shape[1:3] == (2 * size, 2 * size):
        return halve_antialiased(patches_BHWC.to(device), memory_format)
    x_BCHW = patches_BHWC.permute(0, 3, 1, 2).to(device, torch.float32, memory_format=memory_format).div_(255.0)
    if x_BCHW.shape[-2:] != (size, size):
        x_BCHW = F.interpolate(x_BCHW, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return x_BCHW


def halve_antialiased(patches_BHWC: torch.Tensor, memory_format: torch.memory_format) -> torch.Tensor:
    """uint8 ``(B, 2h, 2w, C)`` as float ``(B, C, h, w)`` in ``[0, 1]``: antialiased bilinear halving, exactly.

    Halving with PyTorch's (and PIL's) antialiased bilinear filter weighs four neighbours ``1, 3, 3, 1`` along each
    axis, and the first and last output pixels, whose filter reaches past the border, the three inside it (``3, 3, 1``
    over 7; ``3, 3`` over 6 when the output is one pixel wide). On integers that is exact: sums of at most
    ``64 × 255`` fit int16. Rows are combined first, while they are still contiguous runs of the interleaved pixels,
    then columns, on half as many values; one division per output value rounds once. On one CPU thread, planar output
    comes from compiled loops (:func:`~genar.encoders._halve_cpu.halve_into_planes`), the same floats.
    """
    B, H, W, C = patches_BHWC.shape
    h, w = H // 2, W // 2
    divisor_hw = torch.outer(_taps_total(h), _taps_total(w)).mul_(255.0)
    if _one_cpu_thread(patches_BHWC) and memory_format == torch.contiguous_format:
        from ._halve_cpu import halve_into_planes  # imports numba (0.3 s): only when it runs

        x_BChw = torch.empty((B, C, h, w), dtype=torch.float32)
        halve_into_planes(patches_BHWC.contiguous().numpy(), divisor_hw.numpy(), x_BChw.numpy())
        return x_BChw
    rows_BhWC = _halve_axis(patches_BHWC.to(torch.int16), 1)
    sums_BhwC = _halve_axis(rows_BhWC, 2)
    x_BChw = sums_BhwC.permute(0, 3, 1, 2).to(torch.float32, memory_format=memory_format)
    return x_BChw.div_(divisor_hw.to(patches_BHWC.device))


def _one_cpu_thread(patches_BHWC: torch.Tensor) -> bool:
    """Whether the halving runs on one CPU thread, where the compiled loops beat PyTorch's passes (~2× on 224 px).

    On more threads PyTorch's passes share the work and the single-threaded loops would not.
    """
    return patches_BHWC.device.type == "cpu" and torch.get_num_threads() == 1


def _halve_axis(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Weighted sums ``x[2i-1] + 3 x[2i] + 3 x[2i+1] + x[2i+2]`` along ``dim`` (terms past either end left out)."""
    n = x.shape[dim] // 2
    pairs = x.unflatten(dim, (n, 2))
    even, odd = pairs.select(dim + 1, 0), pairs.select(dim + 1, 1)
    out = torch.add(even, odd).mul_(3)
    out.narrow(dim, 1, n - 1).add_(odd.narrow(dim, 0, n - 1))
    out.narrow(dim, 0, n - 1).add_(even.narrow(dim, 1, n - 1))
    return out


def _taps_total(n: int) -> torch.Tensor:
    """The sum of the integer weights of each of ``n`` halved positions: 8 inside, 7 at either end, 6 when alone."""
    total = torch.full((n,), 8.0)
    total[0] -= 1
    total[-1] -= 1
    return total
