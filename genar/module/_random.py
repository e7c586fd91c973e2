"""The generator that training's random draws (stochastic depth, condition dropout) come from, per thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_drawing = threading.local()


def current_generator() -> torch.Generator | None:
    """The generator set by :func:`drawing_from` in this thread; ``None``: PyTorch's global one."""
    return getattr(_drawing, "generator", None)


@contextmanager
def drawing_from(generator: torch.Generator | None) -> Iterator[None]:
    """Within the block, the module's random draws in this thread come from ``generator``.

    Training streams (concurrent threads, see :func:`genar.module._streams.run_in_streams`) each draw from their own
    generator, seeded in order from the global one, so that a seeded run draws the same numbers whatever the
    threads' timing.
    """
    before = current_generator()
    _drawing.generator = generator
    try:
        yield
    finally:
        _drawing.generator = before
