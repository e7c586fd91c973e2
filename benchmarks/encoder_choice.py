"""Choose the default histology encoder by measurement.

For every candidate encoder (and concatenations), fit a ridge regression from the patch features to
log1p raw counts of the 200-gene panel, leave-one-section-out over the her2st sections (the panel is
chosen on the three training sections of each fold), and report the mean Pearson over the panel genes
on the held-out section.

Run:  GENAR_DATA_DIR=../shared/data python benchmarks/encoder_choice.py [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import genar
from genar.tl import pearson_per_gene

BASE = [
    "efficientnet_lite0",
    "efficientnet_lite1",
    "efficientnet_lite2",
    "efficientnet_lite0_random",
    "efficientnet_lite0_mid",
    "efficientnet_lite0_mid_random",
    "color_texture",
]
COMBOS = [
    "efficientnet_lite0_mid+color_texture",
    "efficientnet_lite0_mid_random+color_texture",
    "efficientnet_lite0+color_texture",
    "efficientnet_lite1+color_texture",
    "efficientnet_lite2+color_texture",
    "efficientnet_lite0_random+color_texture",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="one JSON object per encoder and section")
    parser.add_argument("--data", default=None, help="her2st folder (default: $GENAR_DATA_DIR/her2st)")
    args = parser.parse_args()

    sdata = genar.datasets.her2st(args.data)
    genar.pp.select_genes(sdata, 200, table_added="all_genes_panel")  # only for its patches/embeddings
    genar.pp.extract_patches(sdata, table_key="all_genes_panel")
    timings = {}
    for name in BASE:
        start = time.perf_counter()
        genar.pp.embed_patches(
            sdata, encoder=name, table_key="all_genes_panel", key_added=name, show_progress_bar=False
        )
        timings[name] = time.perf_counter() - start
    table = sdata.tables["all_genes_panel"]
    features = {name: table.obsm[name] for name in BASE}
    for combo in COMBOS:
        features[combo] = np.hstack([features[p] for p in combo.split("+")])

    counts_table = sdata.tables["table"]
    sections = list(counts_table.obs["section"].cat.categories)
    rows = []
    for held_out in sections:
        train = [s for s in sections if s != held_out]
        genar.pp.select_genes(sdata, 200, train_sections=train, table_added="fold", overwrite=True)
        fold = sdata.tables["fold"]
        y = np.log1p(fold.layers["counts"].toarray().astype(float))
        is_test = (fold.obs["section"] == held_out).to_numpy()
        for name, X in features.items():
            model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-1, 5, 13)))
            model.fit(X[~is_test], y[~is_test])
            r = pearson_per_gene(y[is_test], model.predict(X[is_test]))
            rows.append(
                {"encoder": name, "section": held_out, "mean_pearson": float(np.nanmean(r)), "dim": int(X.shape[1])}
            )
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    names = list(features)
    print(f"{'encoder':42s} {'dim':>5s} " + " ".join(f"{s:>6s}" for s in sections) + "   mean  embed_s")
    for name in names:
        vals = [next(r["mean_pearson"] for r in rows if r["encoder"] == name and r["section"] == s) for s in sections]
        t = sum(timings[p] for p in name.split("+"))
        print(
            f"{name:42s} {features[name].shape[1]:5d} "
            + " ".join(f"{v:6.3f}" for v in vals)
            + f" {np.mean(vals):6.3f} {t:7.1f}"
        )


if __name__ == "__main__":
    main()
