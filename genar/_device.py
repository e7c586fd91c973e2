"""Which torch device to run on."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._settings import settings

if TYPE_CHECKING:
    import torch


def resolve_device(device: str | torch.device | None) -> torch.device:
    """The device to run on: the argument, else ``genar.settings.device``, else CUDA when available, else CPU."""
    import torch

    device = device if device is not None else settings.device
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)
