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


def accelerator_device_type(accelerator: str) -> str:
    """The torch device type a Lightning ``accelerator`` name runs on (``'auto'``: CUDA when available)."""
    import torch

    if accelerator in ("gpu", "cuda") or (accelerator == "auto" and torch.cuda.is_available()):
        return "cuda"
    return "cpu" if accelerator == "auto" else accelerator


def page_locked_uint8(count: int, shape: tuple[int, ...]) -> list[torch.Tensor]:
    """``count`` uint8 tensors of ``shape`` in page-locked (pinned) host memory, for asynchronous copies to a GPU."""
    import torch

    return [torch.empty(shape, dtype=torch.uint8, pin_memory=True) for _ in range(count)]
