"""GenAR, its ablations and the baselines on the her2st sections: leave one section out, several seeds.

Protocol, for every held-out (test) section and seed: of the other three sections, the next one in cyclic order is
the validation section and the remaining two are the training sections. The 200-gene panel is chosen on the
training sections; every model is trained there; GenAR models use the validation section for early stopping
(best-epoch weights) and to calibrate their sampling temperature (genar.tl.calibrate), never the test section.
Every model then predicts the test section and all are scored by the same genar.tl.evaluate: PCC-10/50/200, the
mean Pearson over the whole panel (pcc_all) and over 50 genes fixed on the training sections (pcc_fixed50),
Pearson against the noise ceiling, MSE and MAE in log2(x+1), and, for GenAR's sampled predictions, the coverage
of the 90% interval (closed, and by the randomised PIT), its width and the ranked probability score, at the
calibrated temperature and (``_t1`` columns) at temperature 1. The table gives mean ± sd over sections and seeds.

Models: genar (default config, kmeans gene hierarchy 1/4/8/40/100/200), no_film (no gene-identity FiLM),
ce_final (cross-entropy at the last scale), regression (a continuous head: MSE on log counts, no sampling),
single_scale (200 only), scales_1_8_40_200, scales_1_4_20_100_200, random_groups (random gene order), and the
baselines ridge, mlp and mean (trained on the same two training sections).

Run:  GENAR_DATA_DIR=../shared/data python benchmarks/her2st_ablations.py [--epochs 20] [--seeds 0 1 2]
      [--sections B1 C2 C3 C4] [--models genar no_film ...] [--n-samples 50] [--jsonl rows.jsonl]
Each finished run is appended to --jsonl as one JSON line (so a long run can be inspected or resumed: runs
already in the file are skipped); the table is printed at the end (--table-only rows.jsonl: just print it).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from _her2st import METRICS, embedded_sections, panel_for

import genar

PAPER = (1, 4, 8, 40, 100, 200)
VARIANTS = {
    "genar": ({}, PAPER, "kmeans"),
    "no_film": ({"gene_film": False}, PAPER, "kmeans"),
    "ce_final": ({"final_loss": "ce"}, PAPER, "kmeans"),
    "regression": ({"head": "regression"}, PAPER, "kmeans"),
    "single_scale": ({}, (200,), "kmeans"),
    "scales_1_8_40_200": ({}, (1, 8, 40, 200), "kmeans"),
    "scales_1_4_20_100_200": ({}, (1, 4, 20, 100, 200), "kmeans"),
    "random_groups": ({}, PAPER, "random"),
}
BASELINES = ("ridge", "mlp", "mean")
#: Models that do not depend on the seed: run once per held-out section.
SEED_FREE = ("ridge", "mean")
UNCERTAINTY = ("coverage_90", "pit_coverage_90", "interval_width_90", "rps")
COLUMNS = [*METRICS, *(f"{m}_t1" for m in UNCERTAINTY), "temperature", "mean_ceiling", "epochs", "seconds"]
#: The columns of the printed table unless --all-columns (pcc_200 is undefined whenever one gene is constant in the
#: test section; the ``_t1`` columns equal the calibrated ones whenever calibration keeps temperature 1).
SHORT = [m for m in METRICS if m != "pcc_200"] + ["temperature"]


def split(sections: list[str], test: str) -> tuple[list[str], str]:
    """Training sections and the validation section for a test section (the next one after it, cyclically)."""
    others = sections[sections.index(test) + 1 :] + sections[: sections.index(test)]
    return sorted(others[1:]), others[0]


def run_one(sdata, features, sections, name: str, test: str, seed: int, args) -> dict:
    """Train one model for one test section and seed, predict the test section, and score it."""
    start = time.perf_counter()
    train, val = split(sections, test)
    panel_for(sdata, features, train)
    row = {"model": name, "section": test, "seed": seed, "train": train, "val": val}
    if name in VARIANTS:
        overrides, scales, method = VARIANTS[name]
        genar.pp.cluster_genes(sdata, scales=scales, method=method, random_state=seed)
        config = genar.GenARConfig(**overrides)
        model = genar.tl.fit(
            sdata, train_sections=train, val_sections=val, config=config, max_epochs=args.epochs, random_state=seed
        )
        row["epochs"] = model.train_info["epochs_run"]
        genar.tl.noise_ceiling(sdata, sections=test, random_state=seed)  # once: both evaluations below read it
        sampled = config.head == "tokens" and args.n_samples > 1
        if sampled:
            genar.tl.calibrate(sdata, model, sections=val, n_samples=args.n_samples // 2 or 2, random_state=seed)
            row["temperature"] = model.calibration["temperature"]
            genar.tl.predict(sdata, model, sections=test, n_samples=args.n_samples, random_state=seed, temperature=1.0)
            at_one = genar.tl.evaluate(sdata, sections=test, key_added="at_temperature_1").loc[test]
            row.update({f"{m}_t1": float(at_one[m]) for m in UNCERTAINTY})
        genar.tl.predict(
            sdata, model, sections=test, n_samples=args.n_samples if sampled else 1, random_state=seed, overwrite=True
        )
        layer = "genar_counts"
    else:
        genar.tl.baseline(sdata, name, train_sections=train, sections=test, random_state=seed)
        genar.tl.noise_ceiling(sdata, sections=test, random_state=seed)
        layer = f"{name}_counts"
    summary = genar.tl.evaluate(sdata, predicted_layer=layer, sections=test).loc[test]
    row.update({m: float(summary[m]) for m in METRICS if m in summary})
    row["mean_ceiling"] = float(sdata.tables["genar"].uns["genar_noise_ceiling"]["ceiling"][test].mean())
    row["seconds"] = time.perf_counter() - start
    return row


def table(rows: list[dict], models: list[str], columns: list[str] = COLUMNS) -> str:
    """Mean ± sd of ``columns`` per model (NaN stays NaN: an undefined metric in any run is not averaged away)."""
    lines = [f"| model | runs | {' | '.join(columns)} |", "|---|---|" + "---|" * len(columns)]
    for name in models:
        sub = [r for r in rows if r["model"] == name]
        if not sub:
            continue
        cells = []
        for m in columns:
            values = np.array([r.get(m, np.nan) for r in sub], dtype=float)
            if np.isnan(values).all():
                cells.append("–")
                continue
            sd = values.std(ddof=1) if len(values) > 1 else 0.0
            digits = 0 if m == "seconds" else 1 if m == "epochs" else 3
            cells.append(f"{values.mean():.{digits}f} ± {sd:.{digits}f}")
        lines.append(f"| {name} | {len(sub)} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sections", nargs="+", default=None, help="test sections (default: all four)")
    parser.add_argument("--models", nargs="+", default=[*VARIANTS, *BASELINES])
    parser.add_argument("--n-samples", type=int, default=50)
    parser.add_argument("--jsonl", default=None, help="append every finished run here; runs already there are skipped")
    parser.add_argument("--table-only", default=None, metavar="JSONL", help="print the table of a finished file")
    parser.add_argument("--all-columns", action="store_true", help="every metric, not only the main ones")
    args = parser.parse_args()
    columns = COLUMNS if args.all_columns else SHORT
    if args.table_only:
        rows = [json.loads(line) for line in Path(args.table_only).read_text().splitlines() if line.strip()]
        print(table(rows, [*VARIANTS, *BASELINES], columns))
        return
    done = []
    if args.jsonl and Path(args.jsonl).exists():
        done = [json.loads(line) for line in Path(args.jsonl).read_text().splitlines() if line.strip()]
    sdata, sections, features = embedded_sections(args.data)
    rows = []
    for test in args.sections or sections:
        for seed in args.seeds:
            for name in args.models:
                if name in SEED_FREE and seed != args.seeds[0]:
                    continue
                previous = [r for r in done if (r["model"], r["section"], r["seed"]) == (name, test, seed)]
                if previous:
                    rows.append(previous[0])
                    continue
                row = run_one(sdata, features, sections, name, test, seed, args)
                rows.append(row)
                if args.jsonl:
                    with open(args.jsonl, "a") as f:
                        f.write(json.dumps(row) + "\n")
    print(table(rows, args.models, columns))


if __name__ == "__main__":
    main()
