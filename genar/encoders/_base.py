"""The encoder interface: a torch module plus the preprocessing it was trained with."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
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

#: Autocast dtype of convolutional networks on a CUDA GPU: float16 keeps three more bits of mantissa than bfloat16,
#: and their (ReLU-family) activations stay far inside its range.
CNN_GPU_DTYPE = torch.float16
#: Autocast dtype of vision transformers on a CUDA GPU: bfloat16, whose float32 range keeps the large activations of
#: giant ViTs from overflowing as they can in float16. The colour/texture statistics have none: they stay float32
#: (their fractions and histograms compare pixels with thresholds).
VIT_GPU_DTYPE = torch.bfloat16


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
    gpu_dtype
        Reduced precision the network runs in under autocast on a CUDA GPU (``None``: float32 there too). bfloat16
        falls back to float16 on a GPU without it. On the CPU every encoder runs in float32.
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
    gpu_dtype: torch.dtype | None = None


class Encoder(nn.Module):
    """Feature extractor for uint8 RGB patches: resizes, normalises and runs the network.

    The float batch is channels last (the patches' own layout, which convolutions run fastest on) unless the network
    has an ``input_memory_format`` attribute that asks otherwise. On the CPU, a network with a ``cpu_thread_share``
    attribute runs on that share of PyTorch's threads, at least one (the setting is restored afterwards). On a CUDA
    GPU the network runs under autocast in the spec's ``gpu_dtype`` while :attr:`reduced_precision` is True (the
    resizing and normalisation stay float32, and the features come back as float32).

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
        #: Whether the network runs in the spec's ``gpu_dtype`` on a CUDA GPU (False: float32 everywhere).
        self.reduced_precision = True
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

    def compute_dtype(self, device_type: str | None = None) -> torch.dtype:
        """The dtype the network runs in on ``device_type`` (default: where the encoder is now).

        The spec's ``gpu_dtype`` (under autocast) on a CUDA GPU while :attr:`reduced_precision` is True, else float32.
        """
        device_type = device_type or self.mean.device.type
        if not self.reduced_precision or device_type != "cuda" or self.spec.gpu_dtype is None:
            return torch.float32
        return gpu_autocast_dtype(self.spec.gpu_dtype, bf16_supported=torch.cuda.is_bf16_supported())

    def autocast(self) -> AbstractContextManager:
        """Autocast to :meth:`compute_dtype` where the encoder is now, for its network (a null context in float32)."""
        dtype, device_type = self.compute_dtype(), self.mean.device.type
        return torch.autocast(device_type, dtype=dtype) if dtype != torch.float32 else nullcontext()

    @torch.inference_mode()
    def forward(self, patches_BHWC: torch.Tensor) -> torch.Tensor:
        """Features ``(B, dim)`` of uint8 patches ``(B, H, W, 3)``, on at most :attr:`cpu_threads` threads."""
        with at_most_threads(self.cpu_threads if self.mean.device.type == "cpu" else None):
            return self.encode(patches_BHWC)

    @torch.inference_mode()
    def encode(self, patches_BHWC: torch.Tensor) -> torch.Tensor:
        """:meth:`forward` on the threads PyTorch has; on the CPU a slice of the batch at a time."""
        if self.mean.device.type != "cpu":
            x_BCHW = self.preprocess(patches_BHWC)
            with self.autocast():
                return self.net(x_BCHW).float()
        slices = patches_BHWC.split(self.patches_per_slice(*patches_BHWC.shape[1:3]))
        return torch.cat([self.net(self.preprocess(patches)).float() for patches in slices])


def gpu_autocast_dtype(wanted: torch.dtype, *, bf16_supported: bool) -> torch.dtype:
    """The autocast dtype on a CUDA GPU for an encoder that asks for ``wanted``: float16 where bfloat16 is missing."""
    if wanted == torch.bfloat16 and not bf16_supported:
        return torch.float16
    return wanted


def dtype_name(dtype: torch.dtype | None) -> str:
    """``'float16'`` for ``torch.float16``; float32 for None (no reduced precision)."""
    return str(dtype or torch.float32).removeprefix("torch.")


def compute_dtypes(model: nn.Module, device_type: str) -> dict[str, str]:
    """``{encoder name: dtype}`` of every encoder in ``model`` on ``device_type``, as recorded with the features."""
    return {
        part.spec.name: dtype_name(part.compute_dtype(device_type))
        for part in model.modules()
        if isinstance(part, Encoder)
    }


def use_reduced_precision(model: nn.Module, *, enabled: bool) -> None:
    """Set :attr:`Encoder.reduced_precision` of ``model`` and of every encoder inside it (a :class:`ConcatEncoder`)."""
    for part in model.modules():
        if isinstance(part, Encoder):
            part.reduced_precision = enabled


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
