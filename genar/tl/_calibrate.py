"""genar.tl.calibrate: fit the sampling temperature so predictive intervals hold their nominal coverage."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from .. import _keys
from .._docs import doc_params
from .._logging import logger
from .._tables import section_mask, to_dense
from .._validate import check_sections, get_counts, get_table, sections_of
from ._arrays import histology_features, normalised_coords
from ._checks import check_encoder, check_genes
from ._evaluate import pit_coverage

if TYPE_CHECKING:
    import torch
    from spatialdata import SpatialData

    from ..model import GenAR


#: Temperatures tried by default. A grid, not a bisection: coverage need not grow with the temperature, because
#: flattening a distribution over counts 0..cap also moves its mass towards large counts. It reaches 2 because
#: models trained with the cross-entropy of the exact count can be overconfident on new sections: on her2st the
#: best of a grid that ended at 1.5 was its end in 7 of 12 runs (``benchmarks/her2st_sections.py``).
DEFAULT_TEMPERATURES = (0.5, 0.7, 0.85, 1.0, 1.2, 1.5, 2.0)


@doc_params
def calibrate(
    sdata: SpatialData,
    model: GenAR,
    *,
    sections: str | Sequence[str],
    level: float = 0.9,
    n_samples: int = 30,
    max_spots: int | None = 300,
    temperatures: Sequence[float] = DEFAULT_TEMPERATURES,
    criterion: Literal["pit", "interval"] = "pit",
    random_state: int = 0,
    layer: str | None = _keys.COUNTS_LAYER,
    table_key: str = _keys.PANEL_TABLE,
    embedding_key: str = _keys.HISTOLOGY,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    show_progress_bar: bool | None = None,
) -> pd.DataFrame:
    """Choose the sampling temperature whose predictive intervals cover the measured counts at the nominal level.

    A model's sampled intervals can be too wide or too narrow (a 90% interval that holds 98% of the truth is
    honest but vague). This samples the model on spots of ``sections`` — sections with measured counts that the
    model was **not trained on**, e.g. the ``val_sections`` of :func:`genar.tl.fit`; never the test slide — at a
    few temperatures, measures how often the central ``level`` interval holds the measured count (over spots ×
    measured genes), and stores the temperature closest to ``level`` in the model: :func:`genar.tl.predict` then
    samples at it by default. Lower temperatures sharpen every scale's distribution, higher ones widen it.

    Parameters
    ----------
    sdata
        SpatialData with the panel table, its raw counts and histology features.
    model
        A trained :class:`~genar.GenAR`; its ``calibration`` is set (save the model afterwards to keep it).
    sections
        Calibration sections. Sections the model was trained on are refused: their intervals look too good.
    level
        Nominal coverage of the central interval (0.9: from the 5% to the 95% quantile, as in
        :func:`genar.tl.evaluate`).
    n_samples
        Samples per spot at every temperature.
    max_spots
        Spots drawn at random (seeded) from ``sections`` (``None``: all); coverage is a mean over spots × genes,
        so a few hundred spots pin it down to about ±0.01.
    temperatures
        Temperatures to try (:data:`DEFAULT_TEMPERATURES`, 0.5 to 2, by default); the cost is one sampling pass
        each. When the chosen one is an end of the grid and its coverage is still on the side the next temperature
        would improve, a warning says so.
    criterion
        ``"pit"`` (default): the coverage by the randomised probability integral transform
        (:func:`genar.tl.pit_coverage`), which is ``level`` for a calibrated model whatever the counts.
        ``"interval"``: the share of counts inside the closed interval between the two quantiles (what
        ``layers['..._q05']``/``['..._q95']`` show), which exceeds ``level`` for small counts even when calibrated,
        so it pushes the temperature too low on sparse data.
    {random_state}
        It seeds the spot draw and the sampling; every temperature reuses the same random numbers, so coverage
        changes with the temperature only.
    {layer}
    {table_key}
    {embedding_key}
    batch_size
        Spots per decoding batch.
    {device}
    {show_progress_bar}

    Returns
    -------
    One row per temperature tried (sorted): ``pit_coverage``, ``coverage`` (closed interval), ``interval_width``
    (mean, in counts), and ``chosen``.
    Sets ``model.calibration``, a dict with the chosen ``temperature``, its ``pit_coverage``, ``coverage`` and
    ``interval_width``, the ``criterion``, ``level``, ``sections``, ``n_spots``, ``n_samples``, ``random_state`` and
    every temperature ``tried``.

    Examples
    --------
    >>> model = genar.tl.fit(sdata, train_sections=["B4", "C2"], val_sections=["C3"])  # doctest: +SKIP
    >>> genar.tl.calibrate(sdata, model, sections=["C3"])  # doctest: +SKIP
    >>> genar.tl.predict(sdata, model, sections=["C4"], n_samples=100)  # doctest: +SKIP
    """
    model._check_trained()
    if not 0 < level < 1:
        msg = f"`level` must lie strictly between 0 and 1; got {level}."
        raise ValueError(msg)
    if n_samples < 2:
        msg = f"`n_samples` must be at least 2 to estimate an interval; got {n_samples}."
        raise ValueError(msg)
    if max_spots is not None and max_spots < 1:
        msg = f"`max_spots` must be at least 1 or None; got {max_spots}."
        raise ValueError(msg)
    if len(temperatures) == 0 or min(temperatures) <= 0:
        msg = f"`temperatures` must be positive numbers; got {list(temperatures)}."
        raise ValueError(msg)
    if criterion not in ("pit", "interval"):
        msg = f"`criterion` must be 'pit' or 'interval'; got {criterion!r}."
        raise ValueError(msg)
    if model.config.head == "regression":
        msg = "A model with a regression head (GenARConfig(head='regression')) predicts no distribution to calibrate."
        raise ValueError(msg)
    table = get_table(sdata, table_key, hint="Run `genar.pp.select_genes` first.")
    check_genes(table, model)
    check_encoder(table, model, embedding_key)
    chosen = check_sections(sections, sections_of(table))
    if seen := sorted(set(chosen) & set(model.train_info.get("train_sections", []))):
        msg = (
            f"The model was trained on sections {seen}: intervals there are too narrow to calibrate on. Pass held-out "
            "sections with measured counts (e.g. the `val_sections` of `genar.tl.fit`)."
        )
        raise ValueError(msg)

    rows = np.flatnonzero(section_mask(table, chosen))
    rng = np.random.default_rng(random_state)
    if max_spots is not None and len(rows) > max_spots:
        rows = np.sort(rng.choice(rows, max_spots, replace=False))
    order = table.var_names.get_indexer(model.genes)
    measured = table.var[_keys.MEASURED].to_numpy(bool)[order] if _keys.MEASURED in table.var else None
    truth = to_dense(get_counts(table, layer)[rows], np.int64)[:, order]
    if measured is not None:
        truth = truth[:, measured]
    features = histology_features(table, embedding_key)[rows]
    coords = normalised_coords(table)[rows]
    quantiles = ((1 - level) / 2, (1 + level) / 2)

    def measure(temperature: float) -> dict[str, float]:
        lo = np.empty(truth.shape, dtype=np.int64)
        hi = np.empty(truth.shape, dtype=np.int64)
        pit = np.empty(truth.shape)
        for batch, tokens in model.iter_predictions(
            features,
            coords,
            n_samples=n_samples,
            greedy=False,
            temperature=temperature,
            random_state=random_state,
            batch_size=batch_size,
            device=device,
            show_progress_bar=show_progress_bar,
        ):
            tokens = tokens if measured is None else tokens[:, :, measured]
            lo[batch], hi[batch] = np.quantile(tokens, quantiles, axis=0, method="inverted_cdf")
            pit[batch] = pit_coverage(np.moveaxis(tokens, 0, 1), truth[batch], level)
        result = {
            "temperature": float(temperature),
            "pit_coverage": float(pit.mean()),
            "coverage": float(((lo <= truth) & (truth <= hi)).mean()),
            "interval_width": float((hi - lo).mean()),
        }
        logger.info("temperature %.3g: %s", temperature, result)
        return result

    key = "pit_coverage" if criterion == "pit" else "coverage"
    tried = [measure(t) for t in sorted({float(t) for t in temperatures})]
    frame = pd.DataFrame(tried).drop_duplicates("temperature").sort_values("temperature").reset_index(drop=True)
    best = int((frame[key] - level).abs().idxmin())
    frame["chosen"] = frame.index == best
    pick = frame.loc[best]
    _warn_at_grid_edge(frame, best, key, level)
    model.calibration = {
        "temperature": float(pick["temperature"]),
        "criterion": criterion,
        "level": float(level),
        "pit_coverage": float(pick["pit_coverage"]),
        "coverage": float(pick["coverage"]),
        "interval_width": float(pick["interval_width"]),
        "sections": list(chosen),
        "n_spots": int(len(rows)),
        "n_samples": int(n_samples),
        "random_state": int(random_state),
        "tried": frame.drop(columns="chosen").to_dict(orient="list"),
    }
    logger.info(
        "calibrated sampling temperature %.3g: %s coverage %.3f of the %g interval on %s",
        pick["temperature"],
        criterion,
        pick[key],
        level,
        chosen,
    )
    return frame


def _warn_at_grid_edge(frame: pd.DataFrame, best: int, key: str, level: float) -> None:
    """Warn when the chosen temperature is the end of the grid and coverage would move towards ``level`` past it."""
    if len(frame) < 2:
        return
    coverage, temperature = float(frame.loc[best, key]), float(frame.loc[best, "temperature"])
    if best == len(frame) - 1 and coverage < level:
        beyond, direction = "higher", "larger"
    elif best == 0 and coverage > level:
        beyond, direction = "lower", "smaller"
    else:
        return
    warnings.warn(
        f"The calibrated temperature {temperature:g} is the {direction} end of the temperatures tried, and its "
        f"coverage ({coverage:.3f}) is still {'below' if coverage < level else 'above'} {level:g}: the best "
        f"temperature may be {beyond}. Pass `temperatures=` with {direction} values to find it.",
        UserWarning,
        stacklevel=3,
    )
