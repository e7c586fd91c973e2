"""The ``genar`` command line.

``genar demo`` runs the whole chain on the her2st sections; ``genar predict`` predicts raw counts for a whole-slide
image with a saved model.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import urllib.error
import warnings
from pathlib import Path

#: The demo's split, the one ``benchmarks/her2st_sections.py`` uses for C4: panel and training on two sections, the
#: next one for validation (the epoch with the lowest validation loss, early stopping), the fourth held out; the
#: baselines train on the same two. So the demo prints one cell (C4, seed 0) of the benchmark's table.
TRAIN, VALIDATION, HELD_OUT = ["C2", "C3"], ["B4"], "C4"


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def demo(data: str | None, out: Path, epochs: int, *, overwrite: bool) -> int:
    """Run load → pp → fit → predict → evaluate → figures → zarr; return the exit code."""
    import matplotlib

    matplotlib.use("Agg")
    import pandas as pd
    from tqdm.auto import tqdm

    import genar

    if out.exists() and any(out.iterdir()) and not overwrite:
        _write(f"genar demo: {out} exists and is not empty; pass --overwrite or choose another --out.")
        return 2
    out.mkdir(parents=True, exist_ok=True)
    stages = ["load", "genes", "patches", "embed", "fit", "predict", "baselines", "figures", "write"]
    timings: dict[str, float] = {}
    bar = tqdm(stages, desc="genar demo", unit="stage")
    start = time.perf_counter()

    def stage(name: str) -> None:
        bar.set_postfix_str(name)
        timings[name] = time.perf_counter()

    stage("load")
    try:
        sdata = genar.datasets.her2st(data)
    except (FileNotFoundError, OSError, urllib.error.URLError) as err:
        bar.close()
        _write(
            "genar demo: the her2st data could not be found or downloaded.\n"
            f"  {err}\n"
            "  Pass --data DIR (the folder holding her2st/ or ST-cnts/, ST-spotfiles/, ST-imgs/), set GENAR_DATA_DIR, "
            "or make GitHub reachable for the download."
        )
        return 2
    bar.update()
    stage("genes")
    genar.pp.select_genes(sdata, 200, train_sections=TRAIN)
    genar.pp.cluster_genes(sdata)
    bar.update()
    stage("patches")
    genar.pp.extract_patches(sdata)
    bar.update()
    stage("embed")
    genar.pp.embed_patches(sdata)
    bar.update()
    stage("fit")
    model = genar.tl.fit(sdata, train_sections=TRAIN, val_sections=VALIDATION, max_epochs=epochs)
    model.save(out / "model", overwrite=True)
    bar.update()
    stage("predict")
    genar.tl.predict(sdata, model, sections=HELD_OUT)
    bar.update()
    stage("baselines")
    for kind in ("ridge", "hest_ridge", "mean"):
        genar.tl.baseline(sdata, kind, train_sections=TRAIN, sections=HELD_OUT)
    rows = {}
    for name, layer in (
        ("ridge, estimate", "ridge_counts_estimate"),
        ("HEST ridge, estimate", "hest_ridge_counts_estimate"),
        ("ridge, counts", "ridge_counts"),
        ("mean", "mean_counts_estimate"),
        ("genar, counts", "genar_counts"),
        ("genar, estimate", "genar_counts_estimate"),  # last: its scores are the ones the figures read
    ):
        key = "genar_evaluation" if layer == "genar_counts_estimate" else f"{layer}_evaluation"
        rows[name] = genar.tl.evaluate(sdata, predicted_layer=layer, sections=HELD_OUT, key_added=key).loc[HELD_OUT]
    bar.update()
    stage("figures")
    _figures(sdata, model, out)
    bar.update()
    stage("write")
    path = out / "her2st_genar.zarr"
    if path.exists():
        import shutil

        shutil.rmtree(path)
    with warnings.catch_warnings():
        # anndata announces a future zarr default once per array written; nothing for a demo user to act on
        warnings.filterwarnings("ignore", message="zarr v3 autosharding")
        sdata.write(path)
    bar.update()
    bar.close()
    order = ["genar, estimate", "ridge, estimate", "HEST ridge, estimate", "genar, counts", "ridge, counts", "mean"]
    table = pd.DataFrame(rows).T.loc[order, ["pcc_10", "pcc_50", "pcc_200", "n_pcc_200", "mse", "mae"]]
    table["n_pcc_200"] = table["n_pcc_200"].astype(int)  # the genes PCC-200 averages
    _write(
        f"\nHeld-out section {HELD_OUT} (trained on {TRAIN}, validated on {VALIDATION}); log2(x+1); "
        "estimate = float, counts = integer:"
    )
    _write(table.to_string(float_format=lambda v: f"{v:.3f}", na_rep="undef."))
    _write(
        "One section and one seed. Over all four sections held out in turn and three seeds, GenAR is ahead of the "
        "HEST ridge and level with the tuned ridge: docs/benchmarks.md, benchmarks/her2st_sections.py."
    )
    _write(f"\nwrote {out}: model/, her2st_genar.zarr, figures (*.png); total {time.perf_counter() - start:.0f} s")
    return 0


def _figures(sdata, model, out: Path) -> None:
    import matplotlib.pyplot as plt

    import genar

    per_gene = sdata.tables["genar"].uns["genar_evaluation"]["per_gene"][HELD_OUT].dropna()
    top = per_gene.sort_values(ascending=False).index[:3].tolist()
    axes = genar.pl.spatial(sdata, top, section=HELD_OUT)
    axes[0].figure.savefig(out / "spatial.png", dpi=100, bbox_inches="tight")
    for name, draw in (
        ("gene_correlation", lambda: genar.pl.gene_correlation(sdata, section=HELD_OUT)),
        ("scales", lambda: genar.pl.scales(sdata)),
        ("training", lambda: genar.pl.training(model)),
    ):
        draw().figure.savefig(out / f"{name}.png", dpi=100, bbox_inches="tight")
    plt.close("all")


#: Capture geometry of ``make_spots`` for a model trained on spots of this diameter (µm).
_TECHNOLOGY_OF_DIAMETER = {100.0: "st", 55.0: "visium", 16.0: "visium_hd_16um", 8.0: "visium_hd_8um"}


def predict_slide(
    slide: Path, model_dir: Path, out: Path, *, technology: str | None, pixel_size_um: float | None, overwrite: bool
) -> int:
    """Slide → pseudo-spots → patches → features → predicted counts, written as a SpatialData zarr."""
    import shutil

    import genar
    from genar.io import SlideError

    if out.exists() and not overwrite:
        _write(f"genar predict: {out} exists; pass --overwrite or choose another --out.")
        return 2
    try:
        model = genar.GenAR.load(model_dir)
        sdata = genar.io.read_wsi(slide, pixel_size_um=pixel_size_um)
    except (FileNotFoundError, SlideError, ValueError) as err:
        _write(f"genar predict: {err}")
        return 2
    image_key = next(iter(sdata.images))
    technology = technology or _TECHNOLOGY_OF_DIAMETER.get(model.train_info.get("spot_diameter_um"), "st")
    start = time.perf_counter()
    genar.pp.make_spots(sdata, image_key, technology=technology)
    genar.pp.extract_patches(sdata)
    genar.pp.embed_patches(sdata, encoder=model.encoder["name"])
    genar.tl.predict(sdata, model)
    if out.exists():
        shutil.rmtree(out)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="zarr v3 autosharding")
        sdata.write(out)
    table = sdata.tables["genar"]
    _write(
        f"{slide}: {table.n_obs} {technology} pseudo-spots × {table.n_vars} genes predicted in "
        f"{time.perf_counter() - start:.0f} s; wrote {out} (tables['genar']: X and layers['genar_counts'] hold raw "
        "counts, layers['genar_counts_estimate'] the estimate for log-space analyses)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``genar`` console script."""
    from ._version import __version__

    parser = argparse.ArgumentParser(
        prog="genar",
        description="Spatial gene expression from H&E with GenAR.",
        epilog=(
            "examples:\n"
            "  GENAR_DATA_DIR=../shared/data genar demo --out genar_out\n"
            "  genar predict slide.svs --model genar_out/model --out slide_genar.zarr"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"genar {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "demo", help="train on two her2st sections, validate on a third, predict the fourth; metrics and figures"
    )
    p.add_argument("--data", default=None, help="her2st folder (default: $GENAR_DATA_DIR/her2st, else download)")
    p.add_argument("--out", type=Path, default=Path("genar_out"), help="output folder (default: genar_out)")
    p.add_argument("--epochs", type=int, default=20, help="maximum training epochs (default: 20)")
    p.add_argument("--overwrite", action="store_true", help="replace the contents of --out")
    q = sub.add_parser("predict", help="predict raw counts for a whole-slide image (SVS, TIFF, ...) with a saved model")
    q.add_argument("slide", type=Path, help="the slide file")
    q.add_argument("--model", type=Path, required=True, help="a model folder (model.save, or the demo's out/model)")
    q.add_argument("--out", type=Path, default=None, help="output zarr (default: <slide name>_genar.zarr)")
    q.add_argument("--technology", default=None, help="pseudo-spot geometry (default: that of the model's spots)")
    q.add_argument("--pixel-size-um", type=float, default=None, help="when the slide's metadata lacks it")
    q.add_argument("--overwrite", action="store_true", help="replace --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.command == "predict":
        out = args.out or Path(f"{args.slide.name.split('.')[0]}_genar.zarr")
        return predict_slide(
            args.slide,
            args.model,
            out,
            technology=args.technology,
            pixel_size_um=args.pixel_size_um,
            overwrite=args.overwrite,
        )
    return demo(args.data, args.out, args.epochs, overwrite=args.overwrite)


if __name__ == "__main__":
    sys.exit(main())
