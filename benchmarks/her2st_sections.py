"""GenAR against the linear probe on held-out her2st sections: leave one section out, several seeds.

Protocol, for every test section and seed: of the other three image sections, the next one in cyclic order (B4, C2,
C3, C4) is the validation section and the remaining two are the training sections. The 200-gene panel and the gene
hierarchy are chosen on the training sections; every model is trained there. GenAR (default ``GenARConfig()``)
uses the validation section to choose its epoch and stop early and to calibrate its sampling temperature
(``genar.tl.calibrate``), never the test section. Baselines, trained on the same two sections and the same
features: ``ridge`` (standardise, PCA, ridge with an intercept and a penalty chosen by leave-one-out),
``hest_ridge`` (the HEST-Benchmark protocol exactly: ``Ridge(alpha=100/(n_features·n_genes), solver="lsqr",
fit_intercept=False)``), ``mlp`` and ``mean``. Every model writes both forms of its prediction — the float estimate
for log-space metrics and integer counts — and both are scored by the same ``genar.tl.evaluate``: PCC-10/50/200
with the number of genes each averages, the mean Pearson over all genes, MSE and MAE in log2(x + 1); GenAR's sampled
predictions also give the coverage of their 90% interval (closed, and by the randomised PIT), its width and the
ranked probability score. The point prediction's speed (spots/s) is timed on the test section.

Run:  GENAR_DATA_DIR=../shared/data python benchmarks/her2st_sections.py [--seeds 0 1 2] [--sections B4 C2 C3 C4]
      [--models genar ridge hest_ridge mlp mean] [--n-samples 50] [--jsonl rows.jsonl] [--table-only rows.jsonl]
Runs already in --jsonl are skipped, so a long grid can be run in pieces.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _her2st import METRICS, SEED_FREE, embedded_sections, paired, panel_for, run_grid, scores, split, table

import genar

MODELS = ["genar", "ridge", "hest_ridge", "mlp", "mean"]
SHORT = ["pcc_10", "pcc_50", "pcc_200", "n_pcc_200", "pcc_all", "mse", "mae", "pit_coverage_90", "rps"]
HEADLINE = ["pcc_10", "pcc_50", "pcc_200", "pcc_all", "mse", "mae"]


def run_genar(sdata, features, sections, test: str, seed: int, args) -> list[dict]:
    """Fit, calibrate, predict and score GenAR for one test section and seed: one row per form."""
    train, val = split(sections, test)
    panel_for(sdata, features, train)
    genar.pp.cluster_genes(sdata)
    config = genar.GenARConfig()
    start = time.perf_counter()
    fit_kwargs = {} if args.epochs is None else {"max_epochs": args.epochs}
    model = genar.tl.fit(sdata, train_sections=train, val_sections=val, config=config, random_state=seed, **fit_kwargs)
    fit_s = time.perf_counter() - start
    n_test = int((sdata.tables["genar"].obs["section"] == test).sum())
    start = time.perf_counter()
    genar.tl.predict(sdata, model, sections=test, random_state=seed)
    spots_per_s = n_test / (time.perf_counter() - start)
    extra = {"fit_s": fit_s, "spots_per_s": spots_per_s, "epochs": model.train_info["epochs_run"]}
    if args.n_samples > 1 and config.head == "tokens":
        genar.tl.calibrate(sdata, model, sections=val, n_samples=max(2, args.n_samples // 2), random_state=seed)
        extra["temperature"] = model.calibration["temperature"]
        genar.tl.predict(sdata, model, sections=test, n_samples=args.n_samples, random_state=seed, overwrite=True)
    genar.tl.noise_ceiling(sdata, sections=test, random_state=seed)
    base = {"model": "genar", "section": test, "seed": seed, "train": train, "val": val, **extra}
    return [{**base, "form": form, **values} for form, values in scores(sdata, "genar_counts", test).items()]


def run_baseline(sdata, features, sections, kind: str, test: str, seed: int) -> list[dict]:
    """Fit and score a baseline for one test section (and seed, for the MLP): one row per form."""
    train, val = split(sections, test)
    panel_for(sdata, features, train)
    genar.tl.baseline(sdata, kind, train_sections=train, sections=test, random_state=seed)
    genar.tl.noise_ceiling(sdata, sections=test, random_state=seed)
    base = {"model": kind, "section": test, "seed": seed, "train": train, "val": val}
    return [{**base, "form": form, **values} for form, values in scores(sdata, f"{kind}_counts", test).items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None)
    parser.add_argument("--epochs", type=int, default=None, help="max_epochs of genar.tl.fit (default: fit's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sections", nargs="+", default=None, help="test sections (default: all four)")
    parser.add_argument("--models", nargs="+", default=MODELS, choices=MODELS)
    parser.add_argument("--n-samples", type=int, default=50, help="samples per spot for the uncertainty metrics")
    parser.add_argument("--jsonl", default=None, help="append every finished run here; runs already there are skipped")
    parser.add_argument("--table-only", default=None, metavar="JSONL", help="print the tables of a finished file")
    parser.add_argument("--all-columns", action="store_true", help="every metric, not only the main ones")
    args = parser.parse_args()
    keys = [(m, f) for m in MODELS for f in ("float", "int")]
    columns = [*METRICS, "temperature", "epochs", "fit_s", "spots_per_s"] if args.all_columns else SHORT
    if args.table_only:
        rows = [json.loads(line) for line in Path(args.table_only).read_text().splitlines() if line.strip()]
    else:
        sdata, sections, features = embedded_sections(args.data)
        tasks = [
            (model, test, seed)
            for test in args.sections or sections
            for seed in args.seeds
            for model in args.models
            if not (model in SEED_FREE and seed != args.seeds[0])
        ]

        def run(model: str, test: str, seed: int) -> list[dict]:
            if model == "genar":
                return run_genar(sdata, features, sections, test, seed, args)
            return run_baseline(sdata, features, sections, model, test, seed)

        rows = run_grid(args.jsonl, tasks, run)
    print(table(rows, keys, columns))
    print("\nmean over test sections of (model − ridge, float), each section's seeds averaged first:")
    print(paired(rows, keys, ("ridge", "float"), HEADLINE))


if __name__ == "__main__":
    main()
