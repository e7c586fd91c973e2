"""Hand-crafted colour and texture statistics of an H&E patch."""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# Ruifrok & Johnston stain vectors (haematoxylin, eosin, DAB), rows = stains, columns = RGB optical density.
_HED_FROM_RGB = torch.linalg.inv(
    torch.tensor([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=torch.float64)
).float()
_QUANTILES = torch.tensor([0.1, 0.5, 0.9])
#: Number of features: RGB and HED (mean, std, 3 quantiles each), gradient energy at 3 scales (mean, std),
#: background and dark-pixel fractions, and an 8-bin grey-level histogram.
N_FEATURES = 2 * 3 * 5 + 3 * 2 + 2 + 8


class ColorTexture(nn.Module):
    """Per-patch colour (RGB, stain optical densities) and texture (gradient energy, grey histogram) statistics.

    Expects RGB in ``[0, 1]`` (``mean=0``, ``std=1`` normalisation), ``(B, 3, H, W)``; returns ``(B, 46)``.
    Vectorised over the batch: quantiles by selection (:func:`quantiles`) rather than a full sort, mean and standard
    deviation in one pass, the grey histogram by counting.
    """

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("hed_from_rgb", _HED_FROM_RGB, persistent=False)
        self.register_buffer("quantiles", _QUANTILES, persistent=False)

    def _channel_stats(self, x_BCN: torch.Tensor) -> torch.Tensor:
        std_BC, mean_BC = torch.std_mean(x_BCN, dim=2)
        q_BCQ = quantiles(x_BCN, self.quantiles)
        return torch.cat([mean_BC, std_BC, q_BCQ.permute(0, 2, 1).flatten(1)], dim=1)

    def forward(self, x_BCHW: torch.Tensor) -> torch.Tensor:
        """Features ``(B, 46)``."""
        rgb_BCN = x_BCHW.clamp(0, 1).flatten(2)
        od_BCN = -torch.log(rgb_BCN.clamp_min(1 / 255))
        hed_BCN = torch.einsum("sc,bcn->bsn", self.hed_from_rgb.T, od_BCN)
        grey_BHW = x_BCHW.mean(1)
        texture = []
        g_B1HW = grey_BHW.unsqueeze(1)
        for _ in range(3):
            dx = g_B1HW[..., :-1, 1:] - g_B1HW[..., :-1, :-1]
            dy = g_B1HW[..., 1:, :-1] - g_B1HW[..., :-1, :-1]
            std_B, mean_B = torch.std_mean(torch.hypot(dx, dy).flatten(1), dim=1)
            texture += [mean_B, std_B]
            g_B1HW = F.avg_pool2d(g_B1HW, 2)
        grey_BN = grey_BHW.flatten(1)
        fractions = [(grey_BN > 0.85).float().mean(1), (hed_BCN[:, 0] > 0.5).float().mean(1)]
        edges = torch.linspace(0, 1, 9, device=x_BCHW.device)[1:-1]
        bins_BN = torch.bucketize(grey_BN.contiguous(), edges)
        B, N = bins_BN.shape
        offsets = 8 * torch.arange(B, device=bins_BN.device).unsqueeze(1)
        hist_B8 = torch.bincount((bins_BN + offsets).flatten(), minlength=8 * B).view(B, 8).float() / N
        return torch.cat(
            [self._channel_stats(rgb_BCN), self._channel_stats(hed_BCN), torch.stack(texture + fractions, 1), hist_B8],
            dim=1,
        )


#: Threads that share the selection of the quantiles (the cores of a 2-core machine).
_SELECTION_THREADS = 2


@functools.cache
def _selection_pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=_SELECTION_THREADS, thread_name_prefix="genar-quantiles")


def quantiles(x_BCN: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``torch.quantile(x, q, dim=-1)`` (linear interpolation), ``(B, C, len(q))``, by selection instead of sorting.

    On the CPU, NumPy's multi-point introselect finds the few order statistics the quantiles need in linear time; a
    full sort of every channel was 60% of the encoder's time. Elsewhere, ``torch.quantile``.
    """
    if x_BCN.device.type != "cpu":
        return torch.quantile(x_BCN, q, dim=-1).permute(1, 2, 0)
    n = x_BCN.shape[-1]
    position = q.double() * (n - 1)
    low = position.floor().long()
    high = torch.clamp(low + 1, max=n - 1)
    ranks = sorted(set(low.tolist()) | set(high.tolist()))
    rows_RN = x_BCN.detach().contiguous().numpy().reshape(-1, n)
    parts = np.array_split(rows_RN, min(_SELECTION_THREADS, len(rows_RN)))  # NumPy selects without the GIL
    chosen = list(_selection_pool().map(lambda part: np.partition(part, ranks, axis=-1)[:, ranks], parts))
    selected = np.concatenate(chosen).reshape(*x_BCN.shape[:-1], len(ranks))
    column = {r: i for i, r in enumerate(ranks)}
    lower = torch.from_numpy(selected[..., [column[r] for r in low.tolist()]])
    upper = torch.from_numpy(selected[..., [column[r] for r in high.tolist()]])
    return torch.lerp(lower, upper, (position - low).to(lower.dtype))
