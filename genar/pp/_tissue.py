"""Tissue detection on a low-resolution level of an H&E image: Otsu on saturation, then morphological clean-up."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def saturation(rgb_HWC: np.ndarray) -> np.ndarray:
    """HSV saturation in ``[0, 1]`` of an RGB image ``(H, W, 3)`` (0 where the pixel is black)."""
    rgb = rgb_HWC.astype(np.float32)
    hi, lo = rgb.max(axis=-1), rgb.min(axis=-1)
    return np.divide(hi - lo, hi, out=np.zeros_like(hi), where=hi > 0)


def otsu_threshold(values: np.ndarray, bins: int = 256) -> float:
    """Otsu's threshold: the cut of a histogram of ``values`` that maximises the between-class variance."""
    hist, edges = np.histogram(values.ravel(), bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight_lo = np.cumsum(hist)
    weight_hi = weight_lo[-1] - weight_lo
    mean_lo = np.cumsum(hist * centres) / np.maximum(weight_lo, 1)
    mean_hi = ((hist * centres).sum() - np.cumsum(hist * centres)) / np.maximum(weight_hi, 1)
    between = weight_lo * weight_hi * (mean_lo - mean_hi) ** 2
    return float(centres[int(np.argmax(between[:-1]))])


def detect_tissue(rgb_HWC: np.ndarray, *, min_area_px: int, smooth_px: int) -> np.ndarray:
    """Boolean tissue mask of an RGB image.

    Stained tissue is coloured, glass and background are grey or white, so saturation separates them: Otsu's
    threshold on the (smoothed) saturation, then a closing and hole filling with a disc of ``smooth_px`` pixels, and
    connected pieces smaller than ``min_area_px`` pixels (dust, debris) removed.
    """
    sat = ndimage.gaussian_filter(saturation(rgb_HWC), sigma=max(smooth_px / 4, 0.5))
    if float(sat.max() - sat.min()) < 1e-3:  # a flat image: nothing to separate
        return np.zeros(sat.shape, dtype=bool)
    mask = sat > otsu_threshold(sat)
    radius = max(int(smooth_px), 1)
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disc = xx**2 + yy**2 <= radius**2
    mask = ndimage.binary_closing(np.pad(mask, radius), structure=disc)[radius:-radius, radius:-radius]
    mask = ndimage.binary_fill_holes(mask)
    labels, n = ndimage.label(mask)
    if n:
        areas = ndimage.sum_labels(mask, labels, index=np.arange(1, n + 1))
        mask = np.isin(labels, 1 + np.flatnonzero(areas >= min_area_px))
    return mask
