"""The patch reader's bilinear resampling against Pillow's, pixel for pixel."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from genar.pp._resample import bilinear_weights, resample_bilinear


def _pillow(canvas_CHW: np.ndarray, box: tuple[float, float, float, float], size: int) -> np.ndarray:
    image = Image.merge("RGB", [Image.fromarray(plane) for plane in canvas_CHW])
    return np.asarray(image.resize((size, size), Image.Resampling.BILINEAR, box=box))


@pytest.mark.parametrize(
    ("side", "size"),
    [
        (163.4, 224),  # her2st's 100 µm spots on its slides: enlarged
        (224.0, 224),  # the same size, at a fractional offset
        (401.7, 224),  # a finer slide: reduced, five taps per output pixel
        (1000.3, 112),  # reduced ~9×
        (2.5, 9),  # a window of a few pixels
        (57.2, 1),  # one output pixel
    ],
)
def test_resampling_equals_pillow(side, size):
    rng = np.random.default_rng(int(side * 10) + size)
    for _ in range(3):
        x0, y0 = rng.uniform(0, 1, 2)
        box = (x0, y0, x0 + side, y0 + side)
        canvas = rng.integers(0, 256, (3, int(np.ceil(y0 + side)), int(np.ceil(x0 + side))), dtype=np.uint8)
        out = np.empty((size, size, 3), np.uint8)
        assert resample_bilinear(canvas, box, out) is out
        np.testing.assert_array_equal(out, _pillow(canvas, box, size))


def test_resampling_smooth_image_and_strided_output():
    """Sharp edges and flat regions (where rounding at half matters) and an output that is a view with strides."""
    canvas = np.zeros((3, 80, 80), np.uint8)
    canvas[0, :, 40:] = 255
    canvas[1] = np.arange(80, dtype=np.uint8)[:, None] * 3
    canvas[2, 20:60, 20:60] = 128
    box = (0.25, 0.75, 79.25, 79.75)
    batch = np.zeros((2, 100, 100, 3), np.uint8)
    view = batch[:, ::2, ::2][1]  # (50, 50, 3), not contiguous
    resample_bilinear(canvas, box, view)
    np.testing.assert_array_equal(view, _pillow(canvas, box, 50))
    assert not batch[0].any()  # nothing written elsewhere


def test_weights_sum_to_one_in_fixed_point():
    first, weights = bilinear_weights(163, 0.3, 163.7, 224)
    assert weights.shape == (3, 224)  # enlarging: three taps, the last zero where two suffice
    assert (first[1:] >= first[:-1]).all()
    assert np.abs(weights.sum(0) - 2**22).max() <= 2  # each rounded to 22 fractional bits
