"""The encoder interface: a torch module plus the preprocessing it was trained with."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

from ._resize import resize_patches

#: Bytes of float input per slice of a batch that :class:`Encoder` preprocesses and encodes at a time on the CPU: under
#: the size (32 MiB) at which glibc maps every allocation anew, so the slice's tensors reuse freed heap memory instead
#: of faulting in fresh pages. Measured: converting 64 patches of 224 px to float took 13 ms, as long as resizing
#: them. On a GPU the whole batch goes at once.
SLICE_BYTES = 8 * 2**20

#: ImageNet channel statistics, for encoders pretrained on ImageNet.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class EncoderSpec:
    """How to build one encoder and feed it.

    Attributes
    ----------
    name
        Registry name.
    build
        Returns the :class:`torch.nn.Module` mapping a normalised ``(B, 3, input_size, input_size)`` float batch
        to ``(B, dim)`` features.
    dim
        Feature dimension.
    input_size
        Edge of the square input, in pixels.
    mean, std
        Per-channel normalisation applied to RGB values in ``[0, 1]``.
    version
        Version of the weights (package or model release), recorded with the embeddings.
    description
        One line for :func:`genar.encoders.available`.
    microns_per_pixel
        Resolution the encoder was trained at, if documented (``None`` when it is not tied to one).
    """

    name: str
    build: Callable[[], nn.Module]
    dim: int
    input_size: int
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    version: str = ""
    description: str = ""
    microns_per_pixel: float | None = None
    extras: tuple[str, ...] = field(default_factory=tuple)


class Encoder(nn.Module):
    """Feature extractor for uint8 RGB patches: resizes, normalises and runs the network.

    The float batch is channels last (the patches' own layout, which convolutions run fastest on) unless the network
    has an ``input_memory_format`` attribute that asks otherwise. On the CPU, a network with a ``cpu_thread_share``
    attribute runs on that share of PyTorch's threads, at least one (the setting is restored afterwards).

    Parameters
    ----------
    spec
        The encoder's specification.
    """

    def __init__(self, spec: EncoderSpec) -> None:
        super().__init__()
        self.spec = spec
        self.net = spec.build()
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1), persistent=False)
        self.eval()

    @property
    def dim(self) -> int:
        """Feature dimension."""
        return self.spec.dim

    def preprocess(self, patches_BHWC: torch.Tensor) -> torch.Tensor:
        """uint8 ``(B, H, W, 3)`` patches to normalised float ``(B, 3, S, S)`` at the encoder's input size."""
        if patches_BHWC.dtype != torch.uint8:
            msg = (
                f"`patches_BHWC` must be uint8 RGB (0-255), as genar.pp.read_patches returns them; got "
                f"{patches_BHWC.dtype}. Convert with `(x * 255).round().to(torch.uint8)` if yours are floats in [0, 1]."
            )
            raise TypeError(msg)
        layout = getattr(self.net, "input_memory_format", torch.channels_last)  # channels last: the patches' own
        x_BCHW = resize_patches(patches_BHWC, self.spec.input_size, layout, self.mean.device)
        return x_BCHW.sub_(self.mean).div_(self.std)  # x_BCHW is this call's own copy

    def patches_per_slice(self, height: int, width: int) -> int:
        """How many patches of ``height`` × ``width`` pixels :meth:`forward` encodes at a time on the CPU.

        As many as fit in :data:`SLICE_BYTES` of float input, at the larger of their size and the encoder's.
        """
        pixels = max(height * width, self.spec.input_size**2)
        return max(1, SLICE_BYTES // (3 * 4 * pixels))

    @property
    def cpu_threads(self) -> int | None:
        """PyTorch threads the network runs on at most, on the CPU (None: all of them).

        Its ``cpu_thread_share`` attribute of the threads PyTorch has now, at least one.
        """
        share = getattr(self.net, "cpu_thread_share", None)
        return None if share is None else max(1, int(torch.get_num_threads() * share))

    @torch.inference_mode()
    def forward(self, patches_BHWC: torch.Tensor) -> torch.Tensor:
        """Features ``(B, dim)`` of uint8 patches ``(B, H, W, 3)``, on at most :attr:`cpu_threads` threads."""
        with at_most_threads(self.cpu_threads if self.mean.device.type == "cpu" else None):
            return self.encode(patches_BHWC)

    @torch.inference_mode()
    def encode(self, patches_BHWC: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` on the threads PyTorch has; on the CPU a slice of the batch at a time."""
        if self.mean.device.type != "cpu":
            return self.net(self.preprocess(patches_BHWC)).float()
        slices = patches_BHWC.split(self.patches_per_slice(*patches_BHWC.shape[1:3]))
        return torch.cat([self.net(self.preprocess(patches)).float() for patches in slices])


@contextmanager
def at_most_threads(n: int | None) -> Iterator[None]:
    """Run the block on at most ``n`` of PyTorch's intra-op threads (no limit when None), then restore the setting."""
    before = torch.get_num_threads()
    if n is None or n >= before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ConcatEncoder(nn.Module):
    """Several encoders side by side; their features are concatenated in order."""

    def __init__(self, encoders: Sequence[Encoder]) -> None:
        super().__init__()
        self.encoders = nn.ModuleList(encoders)

    @property
    def dim(self) -> int:
        """Feature dimension (sum of the parts)."""
        return sum(e.dim for e in self.encoders)

    @property
    def cpu_threads(self) -> int | None:
        """Threads of the most demanding part (None when any part takes all).

        A limit is a property of the whole run, not of each part: beside a network that wants every core, a light
        part on one thread only left a core idle (measured: the default encoder 8% slower in ``embed_patches``).
        """
        limits = [e.cpu_threads for e in self.encoders]
        return None if None in limits else max(limits)

    @torch.inference_mode()
    def forward(self, patches_BHWC: torch.Tensor) -> torch.Tensor:
        """Concatenated features of uint8 patches ``(B, H, W, 3)``, on at most :attr:`cpu_threads` threads."""
        on_cpu = all(e.mean.device.type == "cpu" for e in self.encoders)
        with at_most_threads(self.cpu_threads if on_cpu else None):
            return torch.cat([e.encode(patches_BHWC) for e in self.encoders], dim=1)
