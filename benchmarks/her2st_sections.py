"""Accuracy on the her2st sections: train on three, predict the fourth (each in turn).

For every held-out section: the panel (200 genes) and gene hierarchy are built on the three training
sections, the default encoder embeds the patches, and GenAR, ridge (HEST-Benchmark protocol) and the
training mean are scored by the same genar.tl.evaluate (log2(x+1)). GenAR also samples its predictive
distribution (--n-samples, default 100) for the coverage of its 90% interval, the interval width and the ranked
probability score; every model is read against the held-out section's noise ceiling (pcc_all_vs_ceiling) and
scored on 50 genes fixed on the training sections (pcc_fixed50).

Run:  GENAR_DATA_DIR=../shared/data python benchmarks/her2st_sections.py [--epochs N] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _her2st import METRICS, embedded_sections, panel_for

import genar


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--sections", nargs="+", default=None, help="held-out sections (default: all four)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-samples", type=int, default=100, help="samples per spot for the uncertainty metrics")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sdata, all_sections, features = embedded_sections(args.data)

    rows = []
    for held_out in args.sections or all_sections:
        train = [s for s in all_sections if s != held_out]
        panel_for(sdata, features, train)
        genar.pp.cluster_genes(sdata)
        start = time.perf_counter()
        model = genar.tl.fit(sdata, train_sections=train, max_epochs=args.epochs, random_state=args.seed)
        fit_s = time.perf_counter() - start
        genar.tl.predict(sdata, model, sections=held_out, n_samples=args.n_samples, random_state=args.seed)
        genar.tl.noise_ceiling(sdata, sections=held_out)
        genar.tl.baseline(sdata, "ridge", train_sections=train, sections=held_out)
        genar.tl.baseline(sdata, "mean", train_sections=train, sections=held_out)
        for name, layer in [("genar", "genar_counts"), ("ridge", "ridge_counts"), ("mean", "mean_counts")]:
            summary = genar.tl.evaluate(sdata, predicted_layer=layer, sections=held_out, key_added=f"{name}_evaluation")
            row = {
                "model": name,
                "section": held_out,
                **{m: float(summary.loc[held_out, m]) if m in summary else float("nan") for m in METRICS},
            }
            if name == "genar":
                row["fit_s"] = fit_s
                row["epochs"] = len(model.history)
            rows.append(row)
            if args.json:
                print(json.dumps(row), flush=True)
    if args.json:
        return
    print(f"{'model':6s} {'section':7s} " + " ".join(f"{m:>8s}" for m in METRICS))
    for r in rows:
        print(f"{r['model']:6s} {r['section']:7s} " + " ".join(f"{r[m]:8.3f}" for m in METRICS))
    print("mean over held-out sections")
    for name in ("genar", "ridge", "mean"):
        sub = [r for r in rows if r["model"] == name]
        means = [np.mean([r[m] for r in sub]) for m in METRICS]  # NaN stays NaN: undefined is not averaged away
        print(f"{name:6s} {'all':7s} " + " ".join(f"{v:8.3f}" for v in means))


if __name__ == "__main__":
    main()
