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
from ._hub import download, hub_address
from ._io import read_checkpoint, write_checkpoint

#: Validation score that chooses the best epoch for each ``GenARConfig.selection``, and whether higher is better.
SELECTION_MONITOR = {"loss": ("val/loss", "min"), "pcc": ("val/pcc", "max"), "mse": ("val/mse", "min")}
#: Spots decoded at once by each decoding stream during prediction (see ``GenARModule.generate``).
DECODE_MICRO_BATCH = 64


class GenAR:
    """A GenAR model: predicts raw counts of a fixed gene panel from histology features and spot coordinates.

    Build and train it with :func:`genar.tl.fit`; predict with :func:`genar.tl.predict`. This class holds the
    network (or, with ``config.n_models`` > 1, a seed ensemble of networks, :attr:`members`), what it was trained on
    (genes in model order, scales, count cap, encoder), its learning curves (``history``, ``train_info``) and the
    sampling temperature fitted by :func:`genar.tl.calibrate` (``calibration``; empty until calibrated).

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
        self.members = [self._new_module() for _ in range(config.n_models)]

    def _new_module(self) -> GenARModule:
        config = self.config
        return GenARModule(
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
        n_params = sum(p.numel() for m in self.members for p in m.parameters())
        ensemble = f"{len(self.members)} networks, " if len(self.members) > 1 else ""
        return (
            f"GenAR({state}; {len(self.genes)} genes, scales {list(self.config.scales)}, cap {self.cap}, "
            f"width {self.config.width}, depth {self.config.depth}, {ensemble}{n_params / 1e6:.2f}M parameters, "
            f"encoder {self.encoder.get('name')!r})"
        )

    @property
    def module(self) -> GenARModule:
        """The (first) network."""
        return self.members[0]

    @property
    def scales(self) -> tuple[int, ...]:
        """Gene groups per scale, coarse to fine."""
        return tuple(self.config.scales)

    def history_frame(self, member: int = 0) -> pd.DataFrame:
        """Learning curves of one network, per epoch: ``train/loss``, ``train/loss_scale{k}``, ``val/...``.

        With validation sections, ``val/loss`` (teacher-forced) and the free-running ``val/pcc`` and ``val/mse`` of
        the point estimate (what :func:`genar.tl.evaluate` reports).
        """
        rows = [r for r in self.history if r.get("member", 0) == member]
        if not rows:
            return pd.DataFrame()
        return pd.DataFrame(rows).drop(columns="member", errors="ignore").set_index("epoch")

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
        init_weights: dict[str, torch.Tensor] | None = None,
        **trainer_kwargs: Any,
    ) -> GenAR:
        """Train on arrays (see :func:`genar.tl.fit` for the AnnData-level call).

        Every network of an ensemble is trained in turn, network ``i`` with the seed ``random_state + i``.

        Parameters
        ----------
        features, coords, counts
            ``(N, feature_dim)`` histology features, ``(N, 2)`` coordinates in ``[0, 1]``, ``(N, n_genes)`` raw
            counts in model gene order (already clipped at the cap).
        validation
            The same three arrays for the validation spots: enables early stopping and best-weight selection on
            ``config.selection``.
        max_epochs, accelerator
            Passed to the Lightning trainer.
        random_state
            Fixes initialisation, shuffling and dropout.
        early_stopping_patience
            Epochs without improvement of the validation score before stopping (``None``: never stop early).
        show_progress_bar
            Lightning's progress bar (default ``genar.settings.show_progress_bar``).
        checkpoint_dir, resume_from
            See :func:`genar.tl.fit`; an ensemble's networks checkpoint into ``member{i}/`` below them.
        init_weights
            Weights to start from instead of a random initialisation (e.g. from :func:`genar.tl.pretrain`).
        **trainer_kwargs
            Further arguments of :class:`lightning.Trainer`.
        """
        if self.config.selection != "loss" and validation is None:
            msg = (
                f"GenARConfig(selection={self.config.selection!r}) scores free-running predictions on validation "
                "sections: pass `val_sections` (or `validation=`), or use selection='loss'."
            )
            raise ValueError(msg)
        feats = np.asarray(features, dtype=np.float32)
        infos, self.history = [], []
        for i, module in enumerate(self.members):
            rows, info = self._train_member(
                module,
                feats,
                coords,
                counts,
                validation=validation,
                max_epochs=max_epochs,
                random_state=random_state + i,
                accelerator=accelerator,
                early_stopping_patience=early_stopping_patience,
                show_progress_bar=show_progress_bar,
                checkpoint_dir=self._member_folder(checkpoint_dir, i),
                resume_from=self._member_folder(resume_from, i),
                init_weights=init_weights,
                **trainer_kwargs,
            )
            self.history.extend({"member": i, **row} for row in rows)
            infos.append(info)
        self.train_info = {
            **infos[0],
            "random_state": random_state,
            "max_epochs": max_epochs,
            "selection": self.config.selection,
            "n_train_spots": int(len(feats)),
            "n_val_spots": 0 if validation is None else int(len(validation[0])),
        }
        if len(self.members) > 1:
            self.train_info["members"] = infos
        self.calibration = {}  # new weights: an earlier calibration no longer applies
        self.is_trained = True
        logger.info("trained GenAR (%d network(s)) on %d spots", len(self.members), len(feats))
        return self

    def _member_folder(self, folder: str | Path | None, i: int) -> str | Path | None:
        """An ensemble's networks checkpoint into ``member{i}/`` of the folder; a single network into the folder."""
        return folder if folder is None or len(self.members) == 1 else Path(folder) / f"member{i}"

    def _train_member(
        self,
        module: GenARModule,
        feats: np.ndarray,
        coords: np.ndarray,
        counts: np.ndarray,
        *,
        validation: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
        max_epochs: int,
        random_state: int,
        accelerator: str,
        early_stopping_patience: int | None,
        show_progress_bar: bool | None,
        checkpoint_dir: str | Path | None,
        resume_from: str | Path | None,
        init_weights: dict[str, torch.Tensor] | None,
        **trainer_kwargs: Any,
    ) -> tuple[list[dict[str, float]], dict[str, Any]]:
        """Train one network; return its learning curves and what to record of the run."""
        import lightning as L

        from ..train import BestWeights, make_trainer, quiet_lightning, spot_dataset, spot_loader, training_callbacks

        L.seed_everything(random_state, workers=True, verbose=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(random_state)
            module.init_weights()
        if init_weights is not None:
            module.load_state_dict(init_weights)
        mean, std = feature_scaling(feats)
        module.feature_mean.copy_(torch.from_numpy(mean))
        module.feature_std.copy_(torch.from_numpy(std))
        batch_size = self.config.batch_size
        loader = spot_loader(
            spot_dataset(feats, coords, counts), batch_size=batch_size, shuffle=True, seed=random_state
        )
        val_loader = None
        if validation is not None:
            val_loader = spot_loader(spot_dataset(*validation), batch_size=max(batch_size, 256), shuffle=False)
        monitor, mode = SELECTION_MONITOR[self.config.selection]
        callbacks = training_callbacks(
            monitor=None if validation is None else monitor,
            mode=mode,
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
            plan = self._training_plan(module, free_running=validation)
            # weights_only: a checkpoint is a torch pickle; load it without running code it may carry
            trainer.fit(plan, loader, val_loader, ckpt_path=ckpt_path, weights_only=True)
        module.cpu().eval()
        rows = callbacks[0].rows
        best = next((c for c in callbacks if isinstance(c, BestWeights)), None)
        found = best is not None and best.best_epoch is not None
        info = {
            "epochs_run": len(rows),
            "best_epoch": best.best_epoch if found else None,
            "best_val_score": best.best_score if found else None,
            "best_val_loss": _at_epoch(rows, "val/loss", best.best_epoch) if found else None,
            "resumed_from": None if ckpt_path is None else str(ckpt_path),
            "world_size": int(trainer.world_size),
            "precision": str(trainer.precision),
            "train_streams": plan.streams_used,
        }
        return rows, info

    def _training_plan(self, module: GenARModule, *, free_running=None):
        """The Lightning plan that trains ``module`` with this model's loss and optimiser settings."""
        from ..train import GenARTrainingPlan, loss_weights

        cfg = self.config
        return GenARTrainingPlan(
            module,
            cap=self.cap,
            alpha=cfg.alpha,
            beta=cfg.beta,
            final_loss=cfg.final_loss,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            scale_weights=cfg.scale_weights or loss_weights(cfg.scales, cfg.loss_weighting),
            micro_batch_size=cfg.micro_batch_size,
            streams=cfg.train_streams,
            grad_clip=cfg.grad_clip,
            lr_schedule=cfg.lr_schedule,
            warmup=cfg.warmup,
            free_running=free_running,
        )

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

    def predict_estimate(self, features: np.ndarray, coords: np.ndarray, **decoding: Any) -> np.ndarray:
        """The point estimate for every spot: float32 ``(N, n_genes)``, ``2 ** E[log2(1 + X)] - 1``.

        ``decoding`` takes the keywords of :meth:`iter_estimates`, which explains the estimate.
        """
        out = np.empty((len(features), len(self.genes)), dtype=np.float32)
        for rows, estimate in self.iter_estimates(features, coords, **decoding):
            out[rows] = estimate
        return out

    def iter_estimates(
        self,
        features: np.ndarray,
        coords: np.ndarray,
        *,
        n_paths: int = 1,
        random_state: int = 0,
        batch_size: int = 256,
        device: str | torch.device | None = None,
        show_progress_bar: bool | None = None,
    ) -> Iterator[tuple[slice, np.ndarray]]:
        """Yield ``(rows, estimate)`` per batch: the estimate for log-space metrics, float32 ``(len(rows), n_genes)``.

        The estimate is ``2 ** E[log2(1 + X)] - 1``. Given a path through the coarser scales, ``E[log2(1 + X)]`` at
        the finest scale is computed exactly from its distribution (Rao–Blackwellised); it is averaged over
        ``n_paths`` coarse paths — the greedy path when ``n_paths`` is 1, else paths sampled from the model's own
        distribution with a generator seeded by ``random_state`` — and over the networks of an ensemble. It
        minimises the expected squared error in log2(x + 1) under the model, which the mode does not: for a gene
        that is 0 in most spots, the mode is 0 everywhere while the estimate follows how likely a count is.
        """
        from tqdm.auto import tqdm

        self._check_trained()
        if n_paths < 1 or batch_size < 1:
            msg = f"`n_paths` and `batch_size` must be at least 1; got {n_paths} and {batch_size}."
            raise ValueError(msg)
        feats, xy = self._inputs(features, coords)
        dev = resolve_device(device)
        values = torch.log2(1 + torch.arange(self.cap + 1, dtype=torch.float32, device=dev))
        N = feats.shape[0]
        generator = torch.Generator(device=dev).manual_seed(random_state)
        work = N * n_paths * len(self.members)
        with (
            self._on(dev) as caches,
            tqdm(total=work, desc="predict", unit="spot", disable=not settings.progress(show_progress_bar)) as bar,
        ):
            for start in range(0, N, batch_size):
                rows = slice(start, min(start + batch_size, N))
                batch_feats, batch_xy = feats[rows].to(dev), xy[rows].to(dev)  # once per batch, not per path
                total = torch.zeros(rows.stop - rows.start, len(self.genes), device=dev)
                for module, cache in caches:
                    for _ in range(n_paths):
                        _, expected = module.decode_expectation(
                            batch_feats,
                            batch_xy,
                            values,
                            greedy=n_paths == 1,
                            generator=generator,
                            cache=cache,
                            micro_batch=DECODE_MICRO_BATCH,
                        )
                        total += expected
                        bar.update(rows.stop - rows.start)
                mean_log = total / (n_paths * len(self.members))
                yield rows, (torch.exp2(mean_log) - 1).clamp_min(0).cpu().numpy().astype(np.float32)

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
        sampled with ``temperature`` and ``top_k`` from a generator seeded with ``random_state`` (the samples of a
        batch are drawn one after the other; with an ensemble, sample ``s`` comes from network ``s % n_models``, so
        the samples are drawn from the mixture of the networks). Memory stays bounded by one batch of samples
        whatever the number of spots. Greedy decoding of an ensemble is refused: the most likely counts of several
        networks are not one prediction (use :meth:`iter_estimates`).
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
        if greedy and len(self.members) > 1:
            msg = (
                f"This model is an ensemble of {len(self.members)} networks: their most likely counts are not one "
                "prediction. Use the point estimate (genar.tl.predict(point='estimate'), GenAR.iter_estimates) or "
                "sample the mixture (greedy=False)."
            )
            raise ValueError(msg)
        feats, xy = self._inputs(features, coords)
        dev = resolve_device(device)
        generator = torch.Generator(device=dev).manual_seed(random_state)
        N = feats.shape[0]
        show = settings.progress(show_progress_bar)
        with self._on(dev) as caches, tqdm(total=N * n_samples, desc="predict", unit="spot", disable=not show) as bar:
            for start in range(0, N, batch_size):
                rows = slice(start, min(start + batch_size, N))
                batch_feats, batch_xy = feats[rows].to(dev), xy[rows].to(dev)  # once per batch, not per sample
                tokens = np.empty((n_samples, rows.stop - rows.start, len(self.genes)), dtype=np.int32)
                for s in range(n_samples):
                    module, cache = caches[s % len(caches)]
                    tokens[s] = (
                        module.generate(
                            batch_feats,
                            batch_xy,
                            greedy=greedy,
                            temperature=temperature,
                            top_k=top_k,
                            generator=generator,
                            cache=cache,
                            micro_batch=DECODE_MICRO_BATCH,
                        )
                        .cpu()
                        .numpy()
                    )
                    bar.update(rows.stop - rows.start)
                yield rows, tokens

    def _inputs(self, features: np.ndarray, coords: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        feats = torch.as_tensor(np.asarray(features), dtype=torch.float32)
        xy = torch.as_tensor(np.asarray(coords), dtype=torch.float32)
        if feats.ndim != 2 or feats.shape[1] != self.feature_dim:
            msg = f"Histology features have shape {tuple(feats.shape)}; this model needs (n_spots, {self.feature_dim})."
            raise ValueError(msg)
        return feats, xy

    def _on(self, device: torch.device):
        """Context: every network on ``device`` in eval mode with a reusable KV cache; back on the CPU afterwards."""
        from contextlib import contextmanager

        @contextmanager
        def placed():
            try:
                yield [(m.to(device).eval(), m.new_cache(DECODE_MICRO_BATCH, device=device)) for m in self.members]
            finally:
                for m in self.members:
                    m.cpu()

        return placed()

    def _check_trained(self) -> None:
        if not self.is_trained:
            msg = "This GenAR model is not trained yet: run `genar.tl.fit` (or `model.train`) first."
            raise RuntimeError(msg)

    # -- persistence ------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Weights of every network: a single network's names as they are, an ensemble's under ``members.{i}.``."""
        if len(self.members) == 1:
            return self.module.state_dict()
        return {f"members.{i}.{k}": v for i, m in enumerate(self.members) for k, v in m.state_dict().items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str]]:
        """Load what :meth:`state_dict` wrote; returns the missing and unexpected names."""
        if len(self.members) == 1:
            missing, unexpected = self.module.load_state_dict(state, strict=False)
            return list(missing), list(unexpected)
        missing, unexpected = [], []
        for i, m in enumerate(self.members):
            prefix = f"members.{i}."
            own = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            a, b = m.load_state_dict(own, strict=False)
            missing += [prefix + k for k in a]
            unexpected += [prefix + k for k in b]
        known = tuple(f"members.{i}." for i in range(len(self.members)))
        unexpected += [k for k in state if not k.startswith(known)]
        return missing, unexpected

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
        path = write_checkpoint(path, self.state_dict(), manifest, overwrite=overwrite)
        logger.info("saved GenAR to %s", path)
        return path

    def push_to_hub(
        self,
        repo_id: str,
        *,
        revision: str | None = None,
        private: bool | None = None,
        token: str | None = None,
        commit_message: str | None = None,
        create_pr: bool = False,
    ) -> str:
        """Share the model on the Hugging Face Hub: what :meth:`save` writes, plus a model card, in one commit.

        Parameters
        ----------
        repo_id
            ``"<owner>/<name>"``; the repository is created if it does not exist.
        revision
            Branch to commit to (created from the default branch if needed); default: the default branch.
        private
            Visibility of a new repository (default: the Hub's default, public).
        token
            A token with write access (default: the one of ``hf auth login`` or ``HF_TOKEN``).
        commit_message
            Default: the panel size and the encoder.
        create_pr
            Open a pull request instead of committing to ``revision``.

        Returns
        -------
        The URL of the commit (or of the pull request).

        Examples
        --------
        >>> model.push_to_hub("my-lab/genar-her2st")  # doctest: +SKIP
        >>> genar.GenAR.load("hf://my-lab/genar-her2st")  # doctest: +SKIP
        """
        from ._hub import push

        self._check_trained()
        url = push(
            self,
            repo_id,
            revision=revision,
            private=private,
            token=token,
            commit_message=commit_message,
            create_pr=create_pr,
        )
        logger.info("pushed GenAR to %s", url)
        return url

    @classmethod
    def load(cls, path: str | Path, *, revision: str | None = None) -> GenAR:
        """Load a model written by :meth:`save`, from a folder or from the Hugging Face Hub.

        Weights are read with safetensors and checked against the manifest's sha256; nothing is unpickled.

        Parameters
        ----------
        path
            A folder, or a Hub repository ``"hf://<owner>/<name>"`` (pushed with :meth:`push_to_hub`), optionally
            ``"hf://<owner>/<name>@<revision>"``. Hub files are cached by huggingface_hub; with
            ``HF_HUB_OFFLINE=1`` only the cache is read.
        revision
            Branch, tag or commit hash of a Hub repository (pin a commit hash to always get the same weights).
        """
        address = hub_address(path)
        if address is not None:
            repo_id, pinned = address
            if pinned is not None and revision is not None and pinned != revision:
                msg = f"`path` pins revision {pinned!r} and `revision`={revision!r}; give one of them."
                raise ValueError(msg)
            path = download(repo_id, pinned or revision)
        elif revision is not None:
            msg = f"`revision`={revision!r} applies to a Hub repository ('hf://<owner>/<name>'); {path} is a folder."
            raise ValueError(msg)
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
        missing, unexpected = model.load_state_dict(state)
        if missing or unexpected:
            msg = f"{path}: weights do not fit the config (missing {missing[:5]}, unexpected {unexpected[:5]})."
            raise ValueError(msg)
        for m in model.members:
            m.eval()
        model.history = manifest.get("history", [])
        model.train_info = manifest.get("train_info", {})
        model.calibration = manifest.get("calibration", {})
        model.is_trained = True
        return model


def _at_epoch(rows: list[dict[str, float]], key: str, epoch: int) -> float | None:
    """``key`` of the history row of ``epoch``, or None."""
    return next((r[key] for r in rows if r.get("epoch") == epoch and key in r), None)


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


#: A feature whose standard deviation over the training spots is below this fraction of its magnitude (at least 1)
#: is constant there, up to float rounding.
CONSTANT_FEATURE_TOLERANCE = 1e-6


def feature_scaling(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature mean and scale that standardise the histology features, from the training spots.

    Features that are constant on the training spots are centred but not scaled (scale 1, as scikit-learn's
    ``StandardScaler`` does): the model cannot have learnt anything from them, and dividing by their rounding-noise
    spread would turn any change on a new slide (a dark grey-level bin that training never saw, a channel that never
    fired) into values in the thousands.
    """
    mean = feats.mean(0)
    std = feats.std(0)
    constant = std <= CONSTANT_FEATURE_TOLERANCE * np.maximum(1.0, np.abs(mean))
    if constant.any():
        logger.info(
            "%d of %d histology features are constant on the training spots; they are centred, not scaled",
            int(constant.sum()),
            len(std),
        )
    return mean.astype(np.float32), np.where(constant, 1.0, std).astype(np.float32)
