"""Finding and reading published encoder weights: a local folder first, then the Hugging Face hub."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch

from .._hub import hub_error_message

#: Environment variable naming a folder of downloaded weights, one sub-folder per hub repository.
WEIGHTS_DIR_ENV = "GENAR_WEIGHTS_DIR"
#: File names tried, in order, in a repository or folder.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def local_folder(repo_id: str) -> Path | None:
    """``$GENAR_WEIGHTS_DIR/<owner>--<name>`` (or ``.../<name>``) when it exists."""
    root = os.environ.get(WEIGHTS_DIR_ENV)
    if not root:
        return None
    for candidate in (Path(root) / repo_id.replace("/", "--"), Path(root) / repo_id.split("/")[-1]):
        if candidate.is_dir():
            return candidate
    return None


def fetch_weights(repo_id: str, filenames: Sequence[str] = WEIGHT_FILES) -> Path:
    """Path of a weights file of ``repo_id``: from ``$GENAR_WEIGHTS_DIR``, else downloaded (or cached) from the hub.

    Raises a :class:`RuntimeError` that says what to do when the model is gated, unknown, or the hub cannot be
    reached.
    """
    folder = local_folder(repo_id)
    if folder is not None:
        for name in filenames:
            if (folder / name).is_file():
                return folder / name
        msg = f"{folder} (for {repo_id}) holds none of {list(filenames)}."
        raise FileNotFoundError(msg)
    try:
        import huggingface_hub
        from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError
    except ImportError as err:
        msg = f"Loading {repo_id} needs huggingface_hub: `pip install 'genar[encoders]'`."
        raise ImportError(msg) from err
    advice = (
        f"Without network access, download them elsewhere (`hf download {repo_id} --local-dir "
        f"DIR/{repo_id.replace('/', '--')}`), copy DIR here and set {WEIGHTS_DIR_ENV}=DIR."
    )
    last: Exception | None = None
    for name in filenames:
        try:
            return Path(huggingface_hub.hf_hub_download(repo_id, name))
        except Exception as err:
            if isinstance(err, EntryNotFoundError) and not isinstance(err, LocalEntryNotFoundError):
                last = err  # the repository lacks this file: try the next name
                continue
            said = hub_error_message(err, repo_id, offline_advice=advice) or (
                f"Could not get the weights of {repo_id} from the Hugging Face hub ({type(err).__name__}: {err}). "
                f"{advice}"
            )
            raise RuntimeError(said) from err
    msg = f"{repo_id} has none of the weight files {list(filenames)}."
    raise RuntimeError(msg) from last


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` file, or of a torch ``.bin``/``.pth`` loaded with ``weights_only=True``."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    # weights_only: a pickle that holds anything but tensors and plain containers is refused, not executed
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):  # common wrappers
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    return state


def load_into(module: torch.nn.Module, state: dict[str, torch.Tensor], *, source: str) -> torch.nn.Module:
    """Load ``state`` strictly (classifier heads dropped); a mismatch names the differing parameters."""
    state = {k: v for k, v in state.items() if not k.startswith(("head.", "fc.", "head_drop"))}
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        msg = (
            f"The weights in {source} do not fit the architecture: missing {missing[:5]}, unexpected "
            f"{unexpected[:5]}, shape mismatches {shapes[:5]}."
        )
        raise ValueError(msg)
    module.load_state_dict(state)
    return module.eval()
