"""Checkpoints: safetensors weights + a JSON manifest; nothing is ever unpickled."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._files import sha256sum

WEIGHTS = "model.safetensors"
MANIFEST = "genar.json"
FORMAT_VERSION = 1


def _json_value(value: Any) -> Any:
    """NumPy values as JSON: metadata read back from zarr (e.g. the encoder's ``uns`` entry) holds arrays."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    msg = f"Cannot store {type(value).__name__} {value!r} in the model's JSON manifest."
    raise TypeError(msg)


def write_checkpoint(
    path: str | Path, state: dict[str, torch.Tensor], manifest: dict[str, Any], *, overwrite: bool
) -> Path:
    """Write ``state`` and ``manifest`` (plus the weights' sha256) into the folder ``path``."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.exists() and not overwrite:
        msg = f"{path} exists already. Pass `overwrite=True` to replace it, or choose another folder."
        raise FileExistsError(msg)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}."))
    try:
        save_file({k: v.detach().cpu().contiguous() for k, v in state.items()}, str(tmp / WEIGHTS))
        manifest = {**manifest, "format_version": FORMAT_VERSION, "weights_sha256": sha256sum(tmp / WEIGHTS)}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True, default=_json_value))
        if path.exists():
            shutil.rmtree(path)
        tmp.replace(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a folder written by :func:`write_checkpoint`, refusing anything whose weights do not match."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    manifest_file, weights_file = path / MANIFEST, path / WEIGHTS
    for f in (manifest_file, weights_file):
        if not f.is_file():
            msg = f"{path} is not a genar checkpoint: {f.name} is missing. Save one with `model.save(path)`."
            raise FileNotFoundError(msg)
    try:
        manifest = json.loads(manifest_file.read_text())
    except json.JSONDecodeError as err:
        msg = f"{manifest_file} is not valid JSON ({err}); the checkpoint is damaged."
        raise ValueError(msg) from err
    expected = manifest.get("weights_sha256")
    actual = sha256sum(weights_file)
    if expected != actual:
        msg = (
            f"{weights_file} does not match its manifest (sha256 {actual}, expected {expected}): the checkpoint was "
            "modified or truncated after saving, and is refused."
        )
        raise ValueError(msg)
    try:
        state = load_file(str(weights_file))
    except SafetensorError as err:
        msg = f"{weights_file} is not a safetensors file ({err}); genar never unpickles weights."
        raise ValueError(msg) from err
    return state, manifest
