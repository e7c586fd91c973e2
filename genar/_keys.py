"""Default key names, and the names derived from them, in one place."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: Table written by the loaders (all genes, raw counts).
TABLE = "table"
#: Panel table written by :func:`genar.pp.select_genes` (and :func:`genar.pp.make_spots`).
PANEL_TABLE = "genar"
#: ``uns`` entry of the panel table with the panel's parameters (``uns['genar']['params']``).
PANEL = "genar"
#: Raw-count layer of the panel table.
COUNTS_LAYER = "counts"
#: Layer written by :func:`genar.tl.predict`.
PREDICTED_LAYER = "genar_counts"
#: ``uns`` entry with the provenance of every prediction layer (``uns['genar_predictions'][layer]``).
PREDICTIONS = "genar_predictions"
#: ``uns`` entry written by :func:`genar.tl.evaluate`.
EVALUATION = "genar_evaluation"
#: ``uns`` entry written by :func:`genar.tl.noise_ceiling`.
NOISE_CEILING = "genar_noise_ceiling"
#: ``uns`` entry written by :func:`genar.pp.make_spots` (parameters and tissue mask).
SPOTS = "genar_spots"
#: ``obs`` column with the section (library) of each spot.
SECTION = "section"
#: ``obs`` columns linking table rows to shapes elements.
REGION = "region"
INSTANCE = "instance_id"
#: ``obsm`` key with spot centres in full-resolution image pixels.
SPATIAL = "spatial"
#: ``varm``/``uns`` key written by :func:`genar.pp.cluster_genes`.
GENE_GROUPS = "genar_gene_group"
#: ``obsm``/``uns`` key written by :func:`genar.pp.extract_patches`.
PATCHES = "genar_patches"
#: ``obsm``/``uns`` key written by :func:`genar.pp.embed_patches`.
HISTOLOGY = "X_histology"
#: ``uns['spatial'][section]['scalefactors']`` entry with the pixel size of the full-resolution image.
MICRONS_PER_PIXEL = "microns_per_pixel"
#: ``uns['spatial'][section]['scalefactors']`` entry with the spot diameter in full-resolution pixels.
SPOT_DIAMETER_FULLRES = "spot_diameter_fullres"
#: ``var`` column of the panel table: False for panel genes the source table lacks (counts 0, not measured).
MEASURED = "genar_measured"
#: ``var`` column of the panel table: rank of the gene's variance on the training sections (0 = most variable).
TRAIN_VARIANCE_RANK = "genar_train_variance_rank"
#: Suffix of a section's coordinate system in micrometres (genar's readers make one per section).
MICRON_SYSTEM_SUFFIX = "_um"
#: Quantiles written by a sampled prediction unless others are asked for (a central 90% interval).
DEFAULT_QUANTILES = (0.05, 0.95)


def micron_system(section: str) -> str:
    """Name of a section's coordinate system in micrometres, e.g. ``'C4_um'``."""
    return f"{section}{MICRON_SYSTEM_SUFFIX}"


def patch_shapes(section: str, key: str = PATCHES) -> str:
    """Name of the shapes element with a section's patch boxes, e.g. ``'C4_genar_patches'``."""
    return f"{section}_{key}"


def quantile_suffix(q: float) -> str:
    """``'q05'`` for 0.05, ``'q95'`` for 0.95, ``'q2p5'`` for 0.025: the suffix of a quantile's layer."""
    percent = q * 100
    if abs(percent - round(percent)) < 1e-9:
        return f"q{round(percent):02d}"
    return "q" + f"{percent:g}".replace(".", "p")


@dataclass(frozen=True)
class PredictionKeys:
    """The names of a prediction layer and of everything written beside it.

    Parameters
    ----------
    layer
        The point prediction's layer (``layer_added`` of :func:`genar.tl.predict` / :func:`genar.tl.baseline`).
    quantiles
        The quantiles written with it (empty when the predictive distribution was not sampled).
    """

    layer: str
    quantiles: tuple[float, ...] = ()

    @classmethod
    def of(cls, table: Any, layer: str) -> PredictionKeys:
        """The names of the prediction that wrote ``layer``, with the quantiles its provenance records.

        ``layer`` is a prediction's own layer, or one of its companions (e.g. ``genar_counts_estimate`` of
        ``genar_counts``).
        """
        records = table.uns.get(PREDICTIONS, {})
        owner = (
            layer if layer in records else next((k for k, r in records.items() if layer in r.get("layers", [])), layer)
        )
        return cls(owner, tuple(float(q) for q in records.get(owner, {}).get("quantiles", ())))

    @property
    def estimate(self) -> str:
        """Layer with the point estimate for log-space metrics, ``2 ** E[log2(1 + X)] - 1`` (float)."""
        return f"{self.layer}_estimate"

    @property
    def mean(self) -> str:
        """Layer with the mean of the samples."""
        return f"{self.layer}_mean"

    def quantile(self, q: float) -> str:
        """Layer with quantile ``q`` of the samples (e.g. ``genar_counts_q05``)."""
        return f"{self.layer}_{quantile_suffix(q)}"

    @property
    def quantile_layers(self) -> dict[float, str]:
        """Every recorded quantile and its layer."""
        return {q: self.quantile(q) for q in self.quantiles}

    @property
    def interval(self) -> tuple[float, float] | None:
        """The widest recorded interval, ``(lowest quantile, highest quantile)``, or None without two quantiles."""
        return (min(self.quantiles), max(self.quantiles)) if len(self.quantiles) >= 2 else None

    @property
    def interval_level(self) -> int | None:
        """Nominal coverage of :attr:`interval` in percent (90 for the 5% and 95% quantiles)."""
        return None if self.interval is None else round(100 * (self.interval[1] - self.interval[0]))

    @property
    def samples(self) -> str:
        """``obsm`` key of the kept samples."""
        return f"{self.layer}_samples"

    @property
    def predicted(self) -> str:
        """``obs`` flag: the spot holds a prediction in :attr:`layer`."""
        return f"{self.layer}_predicted"

    @property
    def sampled(self) -> str:
        """``obs`` flag: the spot's quantile and mean layers are valid."""
        return f"{self.layer}_sampled"

    @property
    def samples_kept(self) -> str:
        """``obs`` flag: the spot's samples are kept in ``obsm``."""
        return f"{self.samples}_kept"

    def layers(self, *, sampled: bool) -> list[str]:
        """Every layer a prediction writes: the counts, the estimate, and with samples their mean and quantiles."""
        extra = [self.mean, *self.quantile_layers.values()] if sampled else []
        return [self.layer, self.estimate, *extra]


def prediction_record(table: Any, layer: str) -> Mapping[str, Any]:
    """The provenance of ``layer`` (``uns['genar_predictions'][layer]``), empty when none was recorded."""
    return table.uns.get(PREDICTIONS, {}).get(layer, {})


def panel_params(table: Any) -> Mapping[str, Any]:
    """The panel's parameters (``uns['genar']['params']``), empty for a table genar did not make."""
    return table.uns.get(PANEL, {}).get("params", {})


def as_quantiles(quantiles: Sequence[float]) -> tuple[float, ...]:
    """``quantiles`` as sorted floats in ``[0, 1]`` without repeats; a clear error otherwise."""
    values = tuple(sorted({float(q) for q in quantiles}))
    if not all(0 <= q <= 1 for q in values):
        msg = f"`quantiles` must lie in [0, 1]; got {list(quantiles)}."
        raise ValueError(msg)
    return values
