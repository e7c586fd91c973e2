"""GenAR, its ablations and the baselines on the her2st sections: leave one section out, several seeds.

For every held-out section and seed: the 200-gene panel is chosen on the other three sections, every model is
trained there and predicts the held-out section, and all are scored by the same genar.tl.evaluate: PCC-10/50/200,
the mean Pearson over the whole panel (pcc_all) and over 50 genes fixed on the training sections (pcc_fixed50),
Pearson against the noise ceiling, MSE and MAE in log2(x+1), and, for GenAR's sampled predictions, the coverage
of the 90% interval and the ranked probability score. The table gives mean ± sd over sections and seeds.

Models: genar (default config, kmeans gene hierarchy 1/4/8/40/100/200), no_film (no gene-identity FiLM),
ce_final (cross-entropy at the last scale), single_scale (200 only), scales_1_8_40_200, scales_1_4_20_100_200,
random_groups (random gene order), and the baselines ridge, mlp and mean.

Run:  GENAR_DATA_DIR=../shared/data python benchmarks/her2st_ablations.py [--epochs 20] [--seeds 0 1 2]
      [--sections B4 C2 C3 C4] [--models genar no_film ...] [--n-samples 50] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _her2st import METRICS, embedded_sections, panel_for

import genar

PAPER = (1, 4, 8, 40, 100, 200)
VARIANTS = {
    "genar": ({}, PAPER, "kmeans"),
    "no_film": ({"gene_film": False}, PAPER, "kmeans"),
    "ce_final": ({"final_loss": "ce"}, PAPER, "kmeans"),
    "single_scale": ({}, (200,), "kmeans"),
    "scales_1_8_40_200": ({}, (1, 8, 40, 200), "kmeans"),
    "scales_1_4_20_100_200": ({}, (1, 4, 20, 100, 200), "kmeans"),
    "random_groups": ({}, PAPER, "random"),
}
BASELINES = ("ridge", "mlp", "mean")
#: Models that do not depend on the seed: run once per held-out section.
SEED_FREE = ("ridge", "mean")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sections", nargs="+", default=None, help="held-out sections (default: all four)")
    parser.add_argument("--models", nargs="+", default=[*VARIANTS, *BASELINES])
    parser.add_argument("--n-samples", type=int, default=50)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sdata, sections, features = embedded_sections(args.data)

    rows = []
    for held_out in args.sections or sections:
        train = [s for s in sections if s != held_out]
        for name in args.models:
            seeds = args.seeds[:1] if name in SEED_FREE else args.seeds
            for seed in seeds:
                start = time.perf_counter()
                panel_for(sdata, features, train)
                if name in VARIANTS:
                    overrides, scales, method = VARIANTS[name]
                    genar.pp.cluster_genes(sdata, scales=scales, method=method, random_state=seed)
                    config = genar.GenARConfig(**overrides)
                    model = genar.tl.fit(sdata, sections=train, config=config, max_epochs=args.epochs, seed=seed)
                    genar.tl.predict(sdata, model, sections=held_out, n_samples=args.n_samples, seed=seed)
                    layer = "genar_counts"
                else:
                    genar.tl.baseline(sdata, name, sections=train, predict_sections=held_out, seed=seed)
                    layer = f"{name}_counts"
                genar.tl.noise_ceiling(sdata, sections=held_out, seed=seed)
                summary = genar.tl.evaluate(sdata, layer=layer, sections=held_out).loc[held_out]
                row = {"model": name, "section": held_out, "seed": seed, "seconds": time.perf_counter() - start}
                row.update({m: float(summary[m]) if m in summary else float("nan") for m in METRICS})
                ceiling = sdata.tables["genar"].uns["genar_noise_ceiling"]["ceiling"][held_out]
                row["mean_ceiling"] = float(ceiling.mean())
                rows.append(row)
                if args.json:
                    print(json.dumps(row), flush=True)
    if args.json:
        return
    columns = [*METRICS, "mean_ceiling"]
    print(f"{'model':22s} {'n':>3s} " + " ".join(f"{m:>16s}" for m in columns))
    for name in args.models:
        sub = [r for r in rows if r["model"] == name]
        cells = []
        for m in columns:
            values = np.array([r[m] for r in sub], dtype=float)
            # NaN stays NaN: an undefined metric in any run is not averaged away
            cells.append(f"{values.mean():.3f} ± {values.std(ddof=1) if len(values) > 1 else 0.0:.3f}")
        print(f"{name:22s} {len(sub):3d} " + " ".join(f"{c:>16s}" for c in cells))


if __name__ == "__main__":
    main()
