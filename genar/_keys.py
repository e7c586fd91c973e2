"""Default key names, in one place."""

from __future__ import annotations

#: Table written by the loaders (all genes, raw counts).
TABLE = "table"
#: Panel table written by :func:`genar.pp.select_genes`.
PANEL_TABLE = "genar"
#: Raw-count layer of the panel table.
COUNTS_LAYER = "counts"
#: ``obs`` column with the section (library) of each spot.
SECTION = "section"
#: ``obs`` columns linking table rows to shapes elements.
REGION = "region"
INSTANCE = "instance_id"
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
