"""``genar embed``, ``genar fit`` and ``genar predict``: the pp/tl chain on a slide or a SpatialData zarr, from a shell.

Each command reads its input (a whole-slide image, or a SpatialData zarr), runs the steps its output needs and has
not been run yet (the panel, the gene hierarchy, the patches, the histology features), and writes a new zarr or
model folder; the input is never written to. Errors a user can fix are returned as exit code 2 with one message.
"""

from __future__ import annotations

import shutil
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from spatialdata import SpatialData

    from .model import GenAR

#: The geometry of ``make_spots`` for a model trained on spots of this diameter (µm).
TECHNOLOGY_OF_DIAMETER = {100.0: "st", 55.0: "visium", 16.0: "visium_hd_16um", 8.0: "visium_hd_8um"}


class UsageError(Exception):
    """Something the user can fix: the message says what; the command exits with status 2."""


@dataclass(frozen=True)
class Panel:
    """How to choose the gene panel and its hierarchy when the input has none yet."""

    n_genes: int = 200
    train_sections: Sequence[str] | None = None
    scales: Sequence[int] | None = None


def is_zarr(path: Path) -> bool:
    """Whether ``path`` is a SpatialData zarr store (a folder with zarr metadata), not a slide file."""
    return path.is_dir() and any((path / name).exists() for name in ("zarr.json", ".zgroup", ".zattrs"))


def read_input(path: Path, *, pixel_size_um: float | None) -> tuple[SpatialData, bool]:
    """The SpatialData of a zarr store or of a slide file, and whether it came from a slide."""
    import spatialdata

    import genar

    if not path.exists():
        msg = f"No slide or zarr store at {path}."
        raise UsageError(msg)
    if is_zarr(path):
        return spatialdata.read_zarr(path), False
    if path.is_dir():
        msg = f"{path} is a folder but not a SpatialData zarr store (no zarr.json or .zgroup in it)."
        raise UsageError(msg)
    return genar.io.read_wsi(path, pixel_size_um=pixel_size_um), True


def check_output(out: Path, source: Path, *, overwrite: bool) -> None:
    """Refuse to write over ``out`` unless asked, and never over the input."""
    if out.resolve() == source.resolve():
        msg = f"--out {out} is the input; write to a new path (the input is never modified)."
        raise UsageError(msg)
    if out.exists() and not overwrite:
        msg = f"{out} exists; pass --overwrite or choose another --out."
        raise UsageError(msg)


def prepare(
    sdata: SpatialData,
    *,
    from_slide: bool,
    encoder: str,
    panel: Panel | None = None,
    model: GenAR | None = None,
    technology: str | None = None,
    hierarchy: bool = False,
    embed_precision: str = "auto",
) -> None:
    """Run what is missing of make_spots / select_genes / cluster_genes / extract_patches / embed_patches."""
    import genar

    from . import _keys

    if from_slide:
        image_key = next(iter(sdata.images))
        genar.pp.make_spots(sdata, image_key, technology=technology or "st")
    elif _keys.PANEL_TABLE not in sdata.tables:
        if _keys.TABLE not in sdata.tables:
            msg = (
                f"The zarr store has no table {_keys.PANEL_TABLE!r} (genar's) nor {_keys.TABLE!r} (spots and counts); "
                f"its tables: {sorted(sdata.tables)}."
            )
            raise UsageError(msg)
        if model is not None:
            genar.pp.select_genes(sdata, genes=model.genes)
        else:
            panel = panel or Panel()
            genar.pp.select_genes(sdata, panel.n_genes, train_sections=panel.train_sections)
    table = sdata.tables[_keys.PANEL_TABLE]
    if hierarchy and _keys.GENE_GROUPS not in table.varm:
        scales = None if panel is None else panel.scales
        genar.pp.cluster_genes(sdata, **({} if scales is None else {"scales": tuple(scales)}))
        table = sdata.tables[_keys.PANEL_TABLE]
    if _keys.PATCHES not in table.obsm:
        genar.pp.extract_patches(sdata)
    embedded = table.uns.get(_keys.HISTOLOGY, {}).get("encoder", {}).get("name")
    if _keys.HISTOLOGY not in table.obsm or embedded != encoder:
        genar.pp.embed_patches(sdata, encoder=encoder, precision=embed_precision, overwrite=True)


def write_zarr(sdata: SpatialData, out: Path) -> None:
    """Write ``sdata`` to ``out`` (replacing it: the caller checked ``--overwrite``)."""
    if out.exists():
        shutil.rmtree(out)
    with warnings.catch_warnings():
        # anndata announces a future zarr default once per array written; nothing for a user to act on
        warnings.filterwarnings("ignore", message="zarr v3 autosharding")
        sdata.write(out)


def embed(
    source: Path,
    out: Path,
    *,
    encoder: str,
    panel: Panel,
    technology: str | None,
    pixel_size_um: float | None,
    overwrite: bool,
    embed_precision: str = "auto",
) -> str:
    """Spots (pseudo-spots for a slide), panel, hierarchy, patches and features, written to a new zarr."""
    check_output(out, source, overwrite=overwrite)
    sdata, from_slide = read_input(source, pixel_size_um=pixel_size_um)
    start = time.perf_counter()
    prepare(
        sdata,
        from_slide=from_slide,
        encoder=encoder,
        panel=panel,
        technology=technology,
        hierarchy=not from_slide,
        embed_precision=embed_precision,
    )
    write_zarr(sdata, out)
    table = sdata.tables["genar"]
    return (
        f"{source}: {table.n_obs} spots embedded with {encoder!r} ({table.obsm['X_histology'].shape[1]} features) in "
        f"{time.perf_counter() - start:.0f} s; wrote {out}"
    )


def fit(
    source: Path,
    model_out: Path,
    *,
    out: Path | None,
    encoder: str,
    panel: Panel,
    val_sections: Sequence[str] | None,
    config: str,
    max_epochs: int,
    random_state: int,
    overwrite: bool,
    precision: str = "32",
    embed_precision: str = "auto",
) -> str:
    """Prepare a zarr with measured counts as far as needed, train GenAR, save the model (and the prepared zarr)."""
    import genar

    if model_out.exists() and any(model_out.iterdir()) and not overwrite:
        msg = f"{model_out} exists and is not empty; pass --overwrite or choose another --model-out."
        raise UsageError(msg)
    if out is not None:
        check_output(out, source, overwrite=overwrite)
    if not is_zarr(source):
        msg = f"`genar fit` trains on a SpatialData zarr store with measured counts; {source} is not one."
        raise UsageError(msg)
    sdata, _ = read_input(source, pixel_size_um=None)
    prepare(sdata, from_slide=False, encoder=encoder, panel=panel, hierarchy=True, embed_precision=embed_precision)
    settings = {"default": genar.GenARConfig, "small": genar.GenARConfig.small, "paper": genar.GenARConfig.paper}
    start = time.perf_counter()
    model = genar.tl.fit(
        sdata,
        train_sections=panel.train_sections,
        val_sections=val_sections,
        config=settings[config](),
        max_epochs=max_epochs,
        random_state=random_state,
        precision=precision,
    )
    model.save(model_out, overwrite=True)
    if out is not None:
        write_zarr(sdata, out)
    info = model.train_info
    best = "" if info.get("best_epoch") is None else f", weights of epoch {info['best_epoch']} (lowest validation loss)"
    return (
        f"{source}: GenAR ({config}, precision {info['precision']}) trained on {info['train_sections']} for "
        f"{info['epochs_run']} epochs{best} in {time.perf_counter() - start:.0f} s; saved {model_out}"
        + ("" if out is None else f", wrote {out}")
    )


def predict(
    source: Path,
    model_dir: Path,
    out: Path,
    *,
    sections: Sequence[str] | None,
    technology: str | None,
    pixel_size_um: float | None,
    overwrite: bool,
    embed_precision: str = "auto",
) -> str:
    """Predicted raw counts for a slide (pseudo-spots) or a zarr's spots, written to a new zarr; scored if measured."""
    import genar

    check_output(out, source, overwrite=overwrite)
    model = genar.GenAR.load(model_dir)
    sdata, from_slide = read_input(source, pixel_size_um=pixel_size_um)
    technology = technology or TECHNOLOGY_OF_DIAMETER.get(model.train_info.get("spot_diameter_um"), "st")
    start = time.perf_counter()
    prepare(
        sdata,
        from_slide=from_slide,
        encoder=model.encoder["name"],
        model=model,
        technology=technology,
        embed_precision=embed_precision,
    )
    genar.tl.predict(sdata, model, sections=None if sections is None else list(sections), overwrite=True)
    table = sdata.tables["genar"]
    lines = []
    if bool(table.var.get("genar_measured", False).any()):
        summary = genar.tl.evaluate(
            sdata,
            predicted_layer="genar_counts_estimate",
            sections=None if sections is None else list(sections),
            overwrite=True,
        )
        columns = [c for c in ("n_spots", "pcc_10", "pcc_50", "pcc_200", "mse", "mae") if c in summary]
        lines.append("measured counts found; log2(x+1) scores of the estimate:\n" + summary[columns].to_string())
    write_zarr(sdata, out)
    what = f"{technology} pseudo-spots" if from_slide else "spots"
    lines.insert(
        0,
        f"{source}: {table.n_obs} {what} × {table.n_vars} genes predicted in {time.perf_counter() - start:.0f} s; "
        f"wrote {out} (tables['genar']: X and layers['genar_counts'] hold raw counts, "
        "layers['genar_counts_estimate'] the estimate for log-space analyses)",
    )
    return "\n".join(lines)
