"""Hand-crafted colour and texture statistics of an H&E patch."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

# Ruifrok & Johnston stain vectors (haematoxylin, eosin, DAB), rows = stains, columns = RGB optical density.
_HED_FROM_RGB = torch.linalg.inv(
    torch.tensor([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]], dtype=torch.float64)
).float()
_QUANTILES = torch.tensor([0.1, 0.5, 0.9])
#: Bins of the grey-level histogram, of equal width over [0, 1].
_GREY_BINS = 8
#: Number of features: RGB and HED (mean, std, 3 quantiles each), gradient energy at 3 scales (mean, std),
#: background and dark-pixel fractions, and the grey-level histogram.
N_FEATURES = 2 * 3 * 5 + 3 * 2 + 2 + _GREY_BINS


class ColorTexture(nn.Module):
    """Per-patch colour (RGB, stain optical densities) and texture (gradient energy, grey histogram) statistics.

    Expects RGB in ``[0, 1]`` (``mean=0``, ``std=1`` normalisation), ``(B, 3, H, W)``; returns ``(B, 46)``.
    Vectorised over the batch: quantiles by counting (:func:`quantiles`) rather than sorting, mean and standard
    deviation in two plain passes (:func:`mean_std`), the grey histogram by counting.
    """

    #: Planar input: resizing and the per-channel statistics run faster on it than on the interleaved patches
    #: (measured ~20% end to end on 2 cores), where the convolutional encoders want channels last.
    input_memory_format = torch.contiguous_format
    #: Half of PyTorch's threads on the CPU, the other half left to reading, which costs about as much per patch:
    #: many short, memory-bound passes gained little from a second thread of two (1,020 against 1,200 patches/s
    #: alone), while inside ``embed_patches`` the freed core read the next patches (690–800 against 490–610).
    cpu_thread_share = 0.5

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("hed_from_rgb", _HED_FROM_RGB, persistent=False)
        self.register_buffer("quantiles", _QUANTILES, persistent=False)

    def _channel_stats(self, x_BCN: torch.Tensor) -> torch.Tensor:
        mean_BC, std_BC = mean_std(x_BCN)
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
            texture += mean_std(torch.hypot(dx, dy).flatten(1))
            g_B1HW = F.avg_pool2d(g_B1HW, 2)
        grey_BN = grey_BHW.flatten(1)
        fractions = [(grey_BN > 0.85).float().mean(1), (hed_BCN[:, 0] > 0.5).float().mean(1)]
        return torch.cat(
            [
                self._channel_stats(rgb_BCN),
                self._channel_stats(hed_BCN),
                torch.stack(texture + fractions, 1),
                grey_histogram(grey_BN),
            ],
            dim=1,
        )


def mean_std(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) standard deviation over the last dimension, as ``torch.std_mean`` gives them.

    Two plain passes (the mean, then the squared deviations from it): on the CPU ``torch.std_mean``'s one-pass
    reduction over the last dimension of ``(64, 3, 12544)`` took 9× as long.
    """
    mean = x.mean(-1, keepdim=True)
    deviation = x - mean
    return mean.squeeze(-1), deviation.square_().sum(-1).div_(x.shape[-1] - 1).sqrt_()


def grey_histogram(grey_BN: torch.Tensor) -> torch.Tensor:
    """Fraction of each row's values in each of ``_GREY_BINS`` equal bins of ``[0, 1]``, ``(B, _GREY_BINS)``.

    Bin ``i`` holds ``(i/8, (i+1)/8]`` (the first also 0 and below, the last also above 1), which is
    ``torch.bucketize`` against the inner edges; computed as ``ceil(8x) - 1``, exact since the edges are
    multiples of 1/8.
    """
    B, N = grey_BN.shape
    bins_BN = torch.ceil(grey_BN * _GREY_BINS).sub_(1).clamp_(0, _GREY_BINS - 1).int()  # int32: see order_statistics
    bins_BN += _GREY_BINS * torch.arange(B, device=grey_BN.device, dtype=torch.int32).unsqueeze(1)
    counts = torch.bincount(bins_BN.flatten(), minlength=_GREY_BINS * B)
    return counts.view(B, _GREY_BINS).float() / N


def quantiles(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``torch.quantile(x, q, dim=-1)`` (linear interpolation) as ``(..., len(q))``, without sorting.

    The two order statistics each quantile interpolates between come from :func:`order_statistics`. ``x`` must be
    finite.
    """
    n = x.shape[-1]
    position = q.double() * (n - 1)
    low = position.floor().long()
    high = torch.clamp(low + 1, max=n - 1)
    ranks = torch.cat([low, high]).to(x.device)
    selected = order_statistics(x.reshape(-1, n), ranks).view(*x.shape[:-1], 2 * len(q))
    lower, upper = selected.split(len(q), dim=-1)
    return torch.lerp(lower, upper, (position - low).to(x.dtype).to(x.device))


def order_statistics(x_RN: torch.Tensor, ranks: torch.Tensor, n_bins: int = 2048) -> torch.Tensor:
    """The ``ranks``-th smallest value (0-based) of each row of ``x_RN``, ``(R, len(ranks))``, exactly.

    Counting instead of sorting: each row's values are binned into ``n_bins`` equal bins between its minimum and
    maximum (a monotone map, so bins order the values), the cumulative counts say which bin holds each rank and how
    many values lie below it, and only the values in those few bins are sorted. A full sort per channel was 60% of
    the colour/texture encoder's time, NumPy's selection at six ranks about 40%. On the CPU the counting runs as
    compiled loops (:func:`~genar.encoders._select_cpu.order_statistics_into`, ~3× faster), elsewhere as tensor passes
    (:func:`order_statistics_by_passes`); both select the rows' own values, so they agree bit for bit.
    """
    if x_RN.device.type != "cpu":
        return order_statistics_by_passes(x_RN, ranks, n_bins)
    from ._select_cpu import order_statistics_into  # imports numba (0.3 s): only when it runs

    x_RN = x_RN.detach().contiguous()
    out_RK = torch.empty((x_RN.shape[0], len(ranks)), dtype=x_RN.dtype)
    bins_N = np.empty(x_RN.shape[1], np.uint16 if n_bins <= 2**16 else np.int64)
    low_R, high_R = x_RN.amin(1), x_RN.amax(1)  # vectorised by PyTorch, ~6× faster than a compiled loop
    ranks = ranks.to("cpu", torch.int64)
    order_statistics_into(x_RN.numpy(), low_R.numpy(), high_R.numpy(), ranks.numpy(), n_bins, bins_N, out_RK.numpy())
    return out_RK


def order_statistics_by_passes(x_RN: torch.Tensor, ranks: torch.Tensor, n_bins: int = 2048) -> torch.Tensor:
    """:func:`order_statistics` as tensor passes over all rows at once, for GPUs."""
    R, N = x_RN.shape
    device = x_RN.device
    low = x_RN.amin(1, keepdim=True)  # amin and amax apart: aminmax was 5× slower on the CPU
    span = x_RN.amax(1, keepdim=True) - low
    scale = torch.where(span > 0, n_bins / span, torch.zeros_like(span))
    # Bin indices as int32: converting floats to int64 took 5× as long on the CPU (300 against 57 µs here).
    row_offset_R1 = torch.arange(0, R * n_bins, n_bins, device=device, dtype=torch.int32).unsqueeze(1)
    bin_RN = torch.sub(x_RN, low).mul_(scale).int().clamp_(max=n_bins - 1).add_(row_offset_R1)
    count_RB = torch.bincount(bin_RN.reshape(-1), minlength=R * n_bins).view(R, n_bins)
    through_RB = count_RB.cumsum(1)  # values in this bin or below
    ranks_RK = ranks.to(device).expand(R, -1)
    bin_RK = torch.searchsorted(through_RB, ranks_RK + 1)  # ranks may come in any order
    in_bin_RK = count_RB.gather(1, bin_RK)
    below_bin_RK = through_RB.gather(1, bin_RK) - in_bin_RK
    # Gather the values of the chosen bins, grouped by row and sorted within it.
    chosen = torch.zeros(R * n_bins, dtype=torch.bool, device=device)
    chosen[(bin_RK + row_offset_R1).reshape(-1)] = True
    flat = chosen.index_select(0, bin_RN.reshape(-1)).nonzero().squeeze(1)
    values = x_RN.reshape(-1)[flat]
    by_value = torch.sort(values, stable=True).indices
    by_row = torch.sort(torch.div(flat, N, rounding_mode="floor")[by_value], stable=True).indices
    values = values[by_value][by_row]
    # Where each rank sits in `values`: the row's start, the chosen values of lower bins, the rank within its bin.
    chosen_RB = chosen.view(R, n_bins)
    chosen_count_RB = torch.where(chosen_RB, count_RB, 0)
    chosen_below_RK = chosen_count_RB.cumsum(1).gather(1, bin_RK) - in_bin_RK
    per_row_R = chosen_count_RB.sum(1)
    row_start_R1 = (per_row_R.cumsum(0) - per_row_R).unsqueeze(1)
    return values[row_start_R1 + chosen_below_RK + (ranks_RK - below_bin_RK)]
