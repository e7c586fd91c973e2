"""The user-facing GenAR model: training, decoding, save and load."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._device import resolve_device
from .._logging import logger
from .._settings import settings
from .._version import __version__
from ..module import GenARModule
from ._config import GenARConfig
from ._io import read_checkpoint, write_checkpoint


class GenAR:
    """A GenAR model: predicts raw counts of a fixed gene panel from histology features and spot coordinates.

    Build and train it with :func:`genar.tl.fit`; predict with :func:`genar.tl.predict`. This class holds the
    network, what it was trained on (genes in model order, scales, count cap, encoder), its loss history
    (``history``, ``train_info``) and the sampling temperature fitted by :func:`genar.tl.calibrate`
    (``calibration``; empty until calibrated).

    Parameters
    ----------
    config
        Model and training settings; ``config.scales`` must be set.
    genes
        Panel genes in model order.
    cap
        Largest count token.
    feature_dim
        Dimension of the histology features.
    encoder
        Description of the histology encoder (``uns['X_histology']['encoder']``), checked at prediction.
    """

    def __init__(
        self,
        config: GenARConfig,
        *,
        genes: Sequence[str],
        cap: int,
        feature_dim: int,
        encoder: dict[str, Any] | None = None,
    ) -> None:
        if config.scales is None:
            msg = "`config.scales` must be set (genar.tl.fit takes them from genar.pp.cluster_genes)."
            raise ValueError(msg)
        self.config = config
        self.genes = list(genes)
        self.cap = int(cap)
        self.feature_dim = int(feature_dim)
        self.encoder = dict(encoder) if encoder else {"name": "unknown", "dim": self.feature_dim}
        self.history: list[dict[str, float]] = []
        self.train_info: dict[str, Any] = {}
        self.calibration: dict[str, Any] = {}  # set by genar.tl.calibrate
        self.is_trained = False
        self.module = GenARModule(
            scales=config.scales,
            n_genes=len(self.genes),
            vocab=self.cap + 1,
            feature_dim=self.feature_dim,
            width=config.width,
            depth=config.depth,
            heads=config.heads,
            mlp_ratio=config.mlp_ratio,
            drop_path=config.drop_path,
            cond_dropout=config.cond_dropout,
            n_freqs=config.n_freqs,
            gene_film=config.gene_film,
            head=config.head,
        )

    def __repr__(self) -> str:
        state = "trained" if self.is_trained else "untrained"
        n_params = sum(p.numel() for p in self.module.parameters())
        return (
            f"GenAR({state}; {len(self.genes)} genes, scales {list(self.config.scales)}, cap {self.cap}, "
            f"width {self.config.width}, depth {self.config.depth}, {n_params / 1e6:.2f}M parameters, "
            f"encoder {self.encoder.get('name')!r})"
        )

    @property
    def scales(self) -> tuple[int, ...]:
        """Gene groups per scale, coarse to fine."""
        return tuple(self.config.scales)

    def history_frame(self) -> pd.DataFrame:
        """Loss per epoch (``train/loss``, ``train/loss_scale{k}``, ``val/...``) as a DataFrame."""
        return pd.DataFrame(self.history).set_index("epoch") if self.history else pd.DataFrame()

    # -- training ---------------------------------------------------------------------------------------------
    def train(
        self,
        features: np.ndarray,
        coords: np.ndarray,
        counts: np.ndarray,
        *,
        validation: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        max_epochs: int = 50,
        random_state: int = 0,
        accelerator: str = "auto",
        early_stopping_patience: int | None = 10,
        show_progress_bar: bool | None = None,
        checkpoint_dir: str | Path | None = None,
        resume_from: str | Path | None = None,
        **trainer_kwargs: Any,
    ) -> GenAR:
        """Train on arrays (see :func:`genar.tl.fit` for the AnnData-level call).

        Parameters
        ----------
        features, coords, counts
            ``(N, feature_dim)`` histology features, ``(N, 2)`` coordinates in ``[0, 1]``, ``(N, n_genes)`` raw
            counts in model gene order (already clipped at the cap).
        validation
            The same three arrays for the validation spots: enables early stopping and best-weight selection.
        max_epochs, accelerator
            Passed to the Lightning trainer.
        random_state
            Fixes initialisation, shuffling and dropout.
        early_stopping_patience
            Epochs without improvement of the validation loss before stopping (``None``: never stop early).
        show_progress_bar
            Lightning's progress bar (default ``genar.settings.show_progress_bar``).
        checkpoint_dir, resume_from
            See :func:`genar.tl.fit`.
        **trainer_kwargs
            Further arguments of :class:`lightning.Trainer`.
        """
        import lightning as L

        from ..train import (
            BestWeights,
            make_trainer,
            quiet_lightning,
            spot_dataset,
            spot_loader,
            training_callbacks,
        )

        L.seed_everything(random_state, workers=True, verbose=False)
        self._reinitialise(random_state)
        feats = np.asarray(features, dtype=np.float32)
        self.module.feature_mean.copy_(torch.from_numpy(feats.mean(0)))
        self.module.feature_std.copy_(torch.from_numpy(np.maximum(feats.std(0), 1e-6)))
        batch_size = self.config.batch_size
        train_loader = spot_loader(
            spot_dataset(feats, coords, counts), batch_size=batch_size, shuffle=True, seed=random_state
        )
        val_loader = None
        if validation is not None:
            val_loader = spot_loader(spot_dataset(*validation), batch_size=max(batch_size, 256), shuffle=False)
        callbacks = training_callbacks(
            monitor=None if validation is None else "val/loss",
            early_stopping_patience=early_stopping_patience,
            checkpoint_dir=checkpoint_dir,
        )
        ckpt_path = None if resume_from is None else checkpoint_file(resume_from)
        with quiet_lightning():
            trainer = make_trainer(
                max_epochs=max_epochs,
                accelerator=accelerator,
                callbacks=callbacks,
                validate=val_loader is not None,
                checkpointing=checkpoint_dir is not None,
                show_progress_bar=settings.progress(show_progress_bar),
                **trainer_kwargs,
            )
            # weights_only: a checkpoint is a torch pickle; load it without running code it may carry
            trainer.fit(self._training_plan(), train_loader, val_loader, ckpt_path=ckpt_path, weights_only=True)
        self.module.cpu().eval()
        self.history = callbacks[0].rows
        best = next((c for c in callbacks if isinstance(c, BestWeights)), None)
        self.train_info = {
            "random_state": random_state,
            "max_epochs": max_epochs,
            "epochs_run": len(self.history),
            "best_epoch": None if best is None else best.best_epoch,
            "best_val_loss": None if best is None or best.best_epoch is None else best.best_score,
            "n_train_spots": int(len(feats)),
            "n_val_spots": 0 if validation is None else int(len(validation[0])),
            "resumed_from": None if ckpt_path is None else str(ckpt_path),
            "world_size": int(trainer.world_size),
        }
        self.calibration = {}  # new weights: an earlier calibration no longer applies
        self.is_trained = True
        logger.info("trained GenAR for %d epochs on %d spots", len(self.history), len(feats))
        return self

    def _training_plan(self):
        """The Lightning plan that trains :attr:`module` with this model's loss and optimiser settings."""
        from ..train import GenARTrainingPlan

        cfg = self.config
        return GenARTrainingPlan(
            self.module,
            cap=self.cap,
            alpha=cfg.alpha,
            beta=cfg.beta,
            final_loss=cfg.final_loss,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            scale_weights=cfg.scale_weights,
            micro_batch_size=cfg.micro_batch_size,
        )

    def _reinitialise(self, random_state: int) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(random_state)
            self.module.init_weights()

    # -- decoding ---------------------------------------------------------------------------------------------
    def predict_counts(
        self, features: np.ndarray, coords: np.ndarray, *, n_samples: int = 1, **decoding: Any
    ) -> np.ndarray:
        """Decode counts for every spot: int32 array ``(n_samples, N, n_genes)`` in model gene order.

        ``decoding`` takes the keywords of :meth:`iter_predictions` (``greedy``, ``temperature``, ``top_k``,
        ``random_state``, ``batch_size``, ``device``, ``show_progress_bar``); use that method to reduce the samples
        batch by batch instead of holding them all.
        """
        out = np.empty((n_samples, len(features), len(self.genes)), dtype=np.int32)
        for rows, tokens in self.iter_predictions(features, coords, n_samples=n_samples, **decoding):
            out[:, rows] = tokens
        return out

    def iter_predictions(
        self,
        features: np.ndarray,
        coords: np.ndarray,
        *,
        n_samples: int = 1,
        greedy: bool | None = None,
        temperature: float = 1.0,
        top_k: int | None = None,
        random_state: int = 0,
        batch_size: int = 256,
        device: str | torch.device | None = None,
        show_progress_bar: bool | None = None,
    ) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(rows, tokens)`` per batch of spots: ``tokens`` is int32 ``(n_samples, len(rows), n_genes)``.

        ``greedy`` (default: ``n_samples == 1``) takes the most likely token at every scale; otherwise tokens are
        sampled with ``temperature`` and ``top_k`` from a generator seeded with ``random_state`` (the samples of a batch
        are drawn one after the other). Memory stays bounded by one batch of samples whatever the number of spots.
        """
        from tqdm.auto import tqdm

        self._check_trained()
        if n_samples < 1 or batch_size < 1:
            msg = f"`n_samples` and `batch_size` must be at least 1; got {n_samples} and {batch_size}."
            raise ValueError(msg)
        if temperature <= 0:
            msg = f"`temperature` must be positive; got {temperature}."
            raise ValueError(msg)
        if top_k is not None and top_k < 1:
            msg = f"`top_k` must be at least 1 or None; got {top_k}."
            raise ValueError(msg)
        greedy = n_samples == 1 if greedy is None else greedy
        if self.config.head == "regression" and not greedy:
            msg = (
                "This model has a regression head (GenARConfig(head='regression')): it predicts one value per gene, "
                "not a distribution, so it cannot be sampled. Use `n_samples=1` and greedy decoding, or train with "
                "head='tokens'."
            )
            raise ValueError(msg)
        if greedy and n_samples > 1:
            msg = "Greedy decoding is deterministic: `n_samples` > 1 needs `greedy=False`."
            raise ValueError(msg)
        feats = torch.as_tensor(np.asarray(features), dtype=torch.float32)
        xy = torch.as_tensor(np.asarray(coords), dtype=torch.float32)
        if feats.ndim != 2 or feats.shape[1] != self.feature_dim:
            msg = f"Histology features have shape {tuple(feats.shape)}; this model needs (n_spots, {self.feature_dim})."
            raise ValueError(msg)
        dev = resolve_device(device)
        module = self.module.to(dev).eval()
        generator = torch.Generator(device=dev).manual_seed(random_state)
        N = feats.shape[0]
        show = settings.progress(show_progress_bar)
        cache = module.new_cache(min(64, batch_size, max(N, 1)), device=dev)  # one set of buffers for every batch
        try:
            with tqdm(total=N * n_samples, desc="predict", unit="spot", disable=not show) as bar:
                for start in range(0, N, batch_size):
                    rows = slice(start, min(start + batch_size, N))
                    tokens = np.empty((n_samples, rows.stop - rows.start, len(self.genes)), dtype=np.int32)
                    for s in range(n_samples):
                        tokens[s] = (
                            module.generate(
                                feats[rows].to(dev),
                                xy[rows].to(dev),
                                greedy=greedy,
                                temperature=temperature,
                                top_k=top_k,
                                generator=generator,
                                cache=cache,
                                micro_batch=cache.capacity,
                            )
                            .cpu()
                            .numpy()
                        )
                        bar.update(rows.stop - rows.start)
                    yield rows, tokens
        finally:
            self.module.cpu()

    def _check_trained(self) -> None:
        if not self.is_trained:
            msg = "This GenAR model is not trained yet: run `genar.tl.fit` (or `model.train`) first."
            raise RuntimeError(msg)

    # -- persistence ------------------------------------------------------------------------------------------
    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the model to the folder ``path``: ``model.safetensors`` and ``genar.json``.

        The JSON holds the config, the panel in model order, scales, cap, encoder, history, training information,
        the calibration from :func:`genar.tl.calibrate` and the genar version.
        """
        self._check_trained()
        manifest = {
            "genar_version": __version__,
            "config": self.config.to_dict(),
            "genes": self.genes,
            "scales": list(self.scales),
            "cap": self.cap,
            "feature_dim": self.feature_dim,
            "encoder": self.encoder,
            "history": self.history,
            "train_info": self.train_info,
            "calibration": self.calibration,
        }
        path = write_checkpoint(path, self.module.state_dict(), manifest, overwrite=overwrite)
        logger.info("saved GenAR to %s", path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> GenAR:
        """Load a model written by :meth:`save`. Weights are read with safetensors; nothing is unpickled."""
        state, manifest = read_checkpoint(path)
        try:
            config = GenARConfig.from_dict(manifest["config"])
            model = cls(
                config,
                genes=manifest["genes"],
                cap=manifest["cap"],
                feature_dim=manifest["feature_dim"],
                encoder=manifest["encoder"],
            )
        except (KeyError, TypeError) as err:
            msg = f"{path}: the manifest lacks or garbles a field ({err}); the checkpoint is damaged."
            raise ValueError(msg) from err
        missing, unexpected = model.module.load_state_dict(state, strict=False)
        if missing or unexpected:
            msg = f"{path}: weights do not fit the config (missing {missing[:5]}, unexpected {unexpected[:5]})."
            raise ValueError(msg)
        model.module.eval()
        model.history = manifest.get("history", [])
        model.train_info = manifest.get("train_info", {})
        model.calibration = manifest.get("calibration", {})
        model.is_trained = True
        return model


def checkpoint_file(resume_from: str | Path) -> Path:
    """``resume_from`` as a checkpoint file: a ``.ckpt`` file, or a ``checkpoint_dir`` holding ``last.ckpt``."""
    path = Path(resume_from)
    if path.is_dir():
        path = path / "last.ckpt"
    if not path.is_file():
        msg = (
            f"`resume_from={str(resume_from)!r}`: no checkpoint at {str(path)!r}. Pass a `.ckpt` file or the "
            "`checkpoint_dir` of an earlier `genar.tl.fit` (it holds `last.ckpt`)."
        )
        raise FileNotFoundError(msg)
    return path
