"""Shared by the her2st benchmarks: load the sections, embed every patch once (features do not depend on the panel)."""

from __future__ import annotations

import genar

#: The columns of genar.tl.evaluate that the her2st benchmarks report.
METRICS = [
    "pcc_10",
    "pcc_50",
    "pcc_200",
    "pcc_all",
    "pcc_fixed50",
    "pcc_all_vs_ceiling",
    "mse",
    "mae",
    "coverage_90",
    "pit_coverage_90",
    "interval_width_90",
    "rps",
]


def embedded_sections(data: str | None):
    """The her2st SpatialData, its section names, and a table ``features`` with every spot's histology features."""
    genar.settings.show_progress_bar = False
    sdata = genar.datasets.her2st(data)
    sections = list(sdata.tables["table"].obs["section"].cat.categories)
    genar.pp.select_genes(sdata, 200, table_added="features")
    genar.pp.extract_patches(sdata, table_key="features")
    genar.pp.embed_patches(sdata, table_key="features")
    return sdata, sections, sdata.tables["features"]


def panel_for(sdata, features, train: list[str]) -> None:
    """A 200-gene panel chosen on ``train`` (replacing the last), carrying the precomputed features."""
    genar.pp.select_genes(sdata, 200, train_sections=train, overwrite=True)
    table = sdata.tables["genar"]
    table.obsm["X_histology"] = features.obsm["X_histology"]
    table.uns["X_histology"] = features.uns["X_histology"]
