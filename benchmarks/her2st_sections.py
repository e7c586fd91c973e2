"""GenAR against the linear probe on held-out her2st sections: leave one section out, several seeds.

Protocol, for every test section and seed: of the other three image sections, the next one in cyclic order (B4, C2,
C3, C4) is the validation section and the remaining two are the training sections. The 200-gene panel and the gene
hierarchy are chosen on the training sections; every model is trained there. GenAR (default ``GenARConfig()``;
``genar_x3``: the same with ``n_models=3``, a seed ensemble averaged in log space, run for the first seed only)
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

import time

from _her2st import BASELINES, benchmark_main, panel_for, scores, split

import genar

MODELS = ["genar", "genar_x3", *BASELINES]
#: GenAR variants run for the first seed only (an ensemble already holds several seeds).
FIRST_SEED_ONLY = ("genar_x3",)
SHORT = ["pcc_10", "pcc_50", "pcc_200", "n_pcc_200", "pcc_all", "mse", "mae", "pit_coverage_90", "rps"]


def run_genar(sdata, features, sections, model: str, test: str, seed: int, args) -> list[dict]:
    """Fit, calibrate, predict and score GenAR for one test section and seed: one row per form."""
    train, val = split(sections, test)
    panel_for(sdata, features, train)
    genar.pp.cluster_genes(sdata)
    config = genar.GenARConfig(n_models=3) if model == "genar_x3" else genar.GenARConfig()
    start = time.perf_counter()
    fit_kwargs = {} if args.epochs is None else {"max_epochs": args.epochs}
    fitted = genar.tl.fit(sdata, train_sections=train, val_sections=val, config=config, random_state=seed, **fit_kwargs)
    fit_s = time.perf_counter() - start
    n_test = int((sdata.tables["genar"].obs["section"] == test).sum())
    start = time.perf_counter()
    genar.tl.predict(sdata, fitted, sections=test, random_state=seed)
    spots_per_s = n_test / (time.perf_counter() - start)
    extra = {"fit_s": fit_s, "spots_per_s": spots_per_s, "epochs": fitted.train_info["epochs_run"]}
    if args.n_samples > 1 and config.head == "tokens":
        genar.tl.calibrate(sdata, fitted, sections=val, n_samples=max(2, args.n_samples // 2), random_state=seed)
        extra["temperature"] = fitted.calibration["temperature"]
        genar.tl.predict(sdata, fitted, sections=test, n_samples=args.n_samples, random_state=seed, overwrite=True)
    genar.tl.noise_ceiling(sdata, sections=test, random_state=seed)
    base = {"model": model, "section": test, "seed": seed, "train": train, "val": val, **extra}
    return [{**base, "form": form, **values} for form, values in scores(sdata, "genar_counts", test).items()]


if __name__ == "__main__":
    benchmark_main(
        __doc__, MODELS, SHORT, ["temperature", "epochs", "fit_s", "spots_per_s"], run_genar, FIRST_SEED_ONLY
    )
