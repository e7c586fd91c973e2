"""Histology encoders: a registry of networks that turn H&E patches into feature vectors."""

from ._base import ConcatEncoder, Encoder, EncoderSpec
from ._registry import DEFAULT_ENCODER, available, describe, get_encoder, get_spec, register

__all__ = [
    "DEFAULT_ENCODER",
    "ConcatEncoder",
    "Encoder",
    "EncoderSpec",
    "available",
    "describe",
    "get_encoder",
    "get_spec",
    "register",
]
