"""Tissue detection on a low-resolution level of an H&E image: Otsu on saturation, then morphological clean-up."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.morphology import disk, remove_small_objects


def saturation(rgb_HWC: np.ndarray) -> np.ndarray:
    """HSV saturation in ``[0, 1]`` of an RGB image ``(H, W, 3)`` (0 where the pixel is black)."""
    rgb = rgb_HWC.astype(np.float32)
    hi, lo = rgb.max(axis=-1), rgb.min(axis=-1)
    return np.divide(hi - lo, hi, out=np.zeros_like(hi), where=hi > 0)


def detect_tissue(rgb_HWC: np.ndarray, *, min_area_px: int, smooth_px: int) -> np.ndarray:
    """Boolean tissue mask of an RGB image.

    Stained tissue is coloured, glass and background are grey or white, so saturation separates them: Otsu's
    threshold on the (smoothed) saturation, then a closing and hole filling with a disc of ``smooth_px`` pixels, and
    connected pieces smaller than ``min_area_px`` pixels (dust, debris) removed.
    """
    sat = ndimage.gaussian_filter(saturation(rgb_HWC), sigma=max(smooth_px / 4, 0.5))
    if float(sat.max() - sat.min()) < 1e-3:  # a flat image: nothing to separate
        return np.zeros(sat.shape, dtype=bool)
    mask = sat > threshold_otsu(sat)
    radius = max(int(smooth_px), 1)
    closed = ndimage.binary_closing(np.pad(mask, radius), structure=disk(radius).astype(bool))
    mask = ndimage.binary_fill_holes(closed[radius:-radius, radius:-radius])
    return remove_small_objects(mask, max_size=max(int(min_area_px) - 1, 0))  # drops pieces of < min_area_px
