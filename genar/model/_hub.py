"""Models on the Hugging Face Hub: ``GenAR.load("hf://org/name")`` and ``model.push_to_hub("org/name")``.

A repository holds what :meth:`genar.GenAR.save` writes — ``model.safetensors`` and the JSON manifest ``genar.json``
(checked against each other on load, as for a local folder) — and a model card (``README.md``) that says what the model
predicts and from what. Files are fetched into, and on later loads read from, huggingface_hub's cache; with
``HF_HUB_OFFLINE=1`` the cache alone is used.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._hub import hub_error_message
from ._io import MANIFEST, WEIGHTS

#: Prefix of a Hub address in :meth:`genar.GenAR.load`.
HUB_PREFIX = "hf://"
OFFLINE_ADVICE = (
    "Without network access, download it elsewhere (`hf download {repo} --local-dir DIR`), copy DIR here and "
    "load the folder: `genar.GenAR.load(DIR)`."
)


def hub_address(path: str | os.PathLike) -> tuple[str, str | None] | None:
    """``(repo_id, revision)`` of ``"hf://org/name"`` or ``"hf://org/name@revision"``; None for a local path."""
    if not isinstance(path, str) or not path.startswith(HUB_PREFIX):
        return None
    address = path[len(HUB_PREFIX) :]
    repo_id, _, revision = address.partition("@")
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        msg = f"{path!r} is not a Hub address: write 'hf://<owner>/<name>', optionally followed by '@<revision>'."
        raise ValueError(msg)
    return repo_id, revision or None


def _require_hub():
    """huggingface_hub, or an ImportError that says how to install it."""
    try:
        import huggingface_hub
    except ImportError as err:
        msg = "Models on the Hugging Face Hub need huggingface_hub: `pip install 'genar[hub]'`."
        raise ImportError(msg) from err
    return huggingface_hub


def download(repo_id: str, revision: str | None) -> Path:
    """The folder holding the repository's weights and manifest, downloaded or from the cache."""
    hf_hub_download = _require_hub().hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    folder = None
    for name in (MANIFEST, WEIGHTS):
        try:
            folder = Path(hf_hub_download(repo_id, name, revision=revision)).parent
        except Exception as err:
            said = hub_error_message(err, repo_id, revision=revision, offline_advice=_advice(repo_id))
            if said is not None:
                raise RuntimeError(said) from err
            if isinstance(err, EntryNotFoundError):
                msg = f"{repo_id} is not a genar model: it has no {name}. Push one with `model.push_to_hub(...)`."
                raise FileNotFoundError(msg) from err
            raise
    return folder


def _advice(repo_id: str) -> str:
    return OFFLINE_ADVICE.format(repo=repo_id)


def push(
    model: Any,
    repo_id: str,
    *,
    revision: str | None,
    private: bool | None,
    token: str | None,
    commit_message: str | None,
    create_pr: bool,
) -> str:
    """Save ``model`` (a trained :class:`genar.GenAR`) with a model card and commit both to ``repo_id``; its URL."""
    import tempfile

    hub = _require_hub()
    api = hub.HfApi(token=token)
    with tempfile.TemporaryDirectory(prefix="genar_push_") as tmp:
        folder = model.save(Path(tmp) / "model")
        (folder / "README.md").write_text(model_card(model, repo_id))
        try:
            api.create_repo(repo_id, private=private, exist_ok=True)
            if revision is not None:
                api.create_branch(repo_id, branch=revision, exist_ok=True)
            operations = [hub.CommitOperationAdd(name, str(folder / name)) for name in (WEIGHTS, MANIFEST, "README.md")]
            info = api.create_commit(
                repo_id,
                operations,
                commit_message=commit_message or f"GenAR model: {len(model.genes)} genes from {model.encoder['name']}",
                revision=revision,
                create_pr=create_pr,
            )
        except Exception as err:
            advice = "Pushing needs network access to the Hub and a token with write access (`hf auth login`)."
            said = hub_error_message(err, repo_id, revision=revision, offline_advice=advice)
            if said is None:
                raise
            raise RuntimeError(said) from err
    return str(info.pr_url or info.commit_url)


def model_card(model: Any, repo_id: str) -> str:
    """A Hugging Face model card: what the model predicts, from which features, trained how, and how to load it."""
    from .._version import __version__

    info = model.train_info
    genes = ", ".join(model.genes[:20]) + (" …" if len(model.genes) > 20 else "")
    return f"""---
library_name: genar
tags:
- spatial-transcriptomics
- histology
- genar
---

# {repo_id.split("/")[-1]}

A genar GenAR model: it predicts the raw counts of {len(model.genes)} genes per spot from H&E
histology features (encoder `{model.encoder["name"]}`, {model.feature_dim} features) and the spot's position, by
next-scale autoregressive generation over the scales {list(model.scales)} (count tokens 0..{model.cap}).

- Trained on sections {info.get("train_sections", "?")}, validated on {info.get("val_sections") or "none"};
  {info.get("epochs_run", "?")} epochs, best epoch {info.get("best_epoch")}; spot diameter
  {info.get("spot_diameter_um", "?")} µm.
- Genes (model order): {genes}
- Written by genar {__version__}; `genar.json` holds the configuration, the panel, the training history and any
  calibration, `model.safetensors` the weights.

```python
import genar

model = genar.GenAR.load("hf://{repo_id}")
genar.pp.embed_patches(sdata, encoder=model.encoder["name"])
genar.tl.predict(sdata, model)
```
"""
