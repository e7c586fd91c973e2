"""Tests of the image-pyramid cache of :mod:`genar.io._images`."""

from __future__ import annotations

import shutil
import tempfile

import numpy as np
from PIL import Image
from spatialdata.transformations import Identity

from genar.io import _images


def _write_jpeg(path, seed=0):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, size=(96, 128, 3), dtype=np.uint8)).save(path)
    return path


def test_cached_pyramid_is_reused(tmp_path):
    path = _write_jpeg(tmp_path / "he.jpg")
    kwargs = {
        "element_name": "he",
        "transformations": {"global": Identity()},
        "cache_key": "he",
        "cache": tmp_path / "c",
    }
    first = _images.multiscale_image_from_file(path, **kwargs)
    assert (tmp_path / "c" / "he.zarr").is_dir()
    second = _images.multiscale_image_from_file(path, **kwargs)
    np.testing.assert_array_equal(first["scale0"]["image"].values, second["scale0"]["image"].values)
    assert not [p for p in (tmp_path / "c").iterdir() if p.name.startswith(".")], "temporary directories left behind"


def test_concurrent_writer_publishing_first_is_not_an_error(tmp_path, monkeypatch):
    """Two processes decoding the same slide into one cache: the later one uses the pyramid the first published."""
    path = _write_jpeg(tmp_path / "he.jpg")
    transformations = {"global": Identity()}
    other = _images.multiscale_image_from_file(
        path, element_name="he", transformations=transformations, cache_key="he", cache=tmp_path / "other"
    )
    cache = tmp_path / "shared"
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp_after_the_other_process_published(*args, **kwargs):
        # The other process finishes while this one is still writing its own copy.
        shutil.copytree(tmp_path / "other" / "he.zarr", cache / "he.zarr")
        return real_mkdtemp(*args, **kwargs)

    monkeypatch.setattr(_images.tempfile, "mkdtemp", mkdtemp_after_the_other_process_published)
    image = _images.multiscale_image_from_file(
        path, element_name="he", transformations=transformations, cache_key="he", cache=cache
    )
    np.testing.assert_array_equal(image["scale0"]["image"].values, other["scale0"]["image"].values)
    assert sorted(p.name for p in cache.iterdir()) == ["he.zarr"], "temporary directories left behind"
