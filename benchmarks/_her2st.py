"""Shared by the her2st benchmarks: the sections and their split, features embedded once, scores in both forms,
resumable runs in a JSONL file, and the mean ± sd table."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

import genar

#: The columns of genar.tl.evaluate that the her2st benchmarks report.
METRICS = [
    "pcc_10",
    "n_pcc_10",
    "pcc_50",
    "n_pcc_50",
    "pcc_200",
    "n_pcc_200",
    "pcc_all",
    "n_genes_defined",
    "pcc_fixed50",
    "pcc_all_vs_ceiling",
    "mse",
    "mae",
    "coverage_90",
    "pit_coverage_90",
    "interval_width_90",
    "rps",
]
#: The baselines, trained on the same sections and features as GenAR.
BASELINES = ("ridge", "hest_ridge", "mlp", "mean")
#: Models that do not depend on the seed: run once per held-out section.
SEED_FREE = ("ridge", "hest_ridge", "mean")


def split(sections: list[str], test: str) -> tuple[list[str], str]:
    """Training sections and the validation section for a test section (the next one after it, cyclically)."""
    others = sections[sections.index(test) + 1 :] + sections[: sections.index(test)]
    return sorted(others[1:]), others[0]


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


def scores(sdata, layer: str, test: str) -> dict[str, dict[str, float]]:
    """``genar.tl.evaluate`` of both forms of a prediction on ``test``: ``{"float": {...}, "int": {...}}``."""
    out = {}
    for form, name in (("float", f"{layer}_estimate"), ("int", layer)):
        summary = genar.tl.evaluate(sdata, predicted_layer=name, sections=test, key_added=f"{name}_scores").loc[test]
        out[form] = {m: float(summary[m]) for m in METRICS if m in summary}
    return out


def run_grid(
    jsonl: str | None, tasks: Iterable[tuple[str, str, int]], run: Callable[[str, str, int], list[dict]]
) -> list[dict]:
    """Run ``run(model, test, seed)`` for every task not already in ``jsonl``; append its rows there as they finish."""
    done = []
    if jsonl and Path(jsonl).exists():
        done = [json.loads(line) for line in Path(jsonl).read_text().splitlines() if line.strip()]
    rows = []
    for model, test, seed in tasks:
        previous = [r for r in done if (r["model"], r["section"], r["seed"]) == (model, test, seed)]
        if previous:
            rows.extend(previous)
            continue
        new = run(model, test, seed)
        rows.extend(new)
        if jsonl:
            with open(jsonl, "a") as f:
                f.writelines(json.dumps(r) + "\n" for r in new)
    return rows


def table(rows: list[dict], keys: list[tuple[str, str]], columns: list[str]) -> str:
    """Mean ± sd over runs of ``columns`` per (model, form) (a metric undefined in every run shows as –)."""
    lines = [f"| model | form | runs | {' | '.join(columns)} |", "|---|---|---|" + "---|" * len(columns)]
    for model, form in keys:
        sub = [r for r in rows if r["model"] == model and r.get("form") == form]
        if not sub:
            continue
        cells = []
        for m in columns:
            values = np.array([r.get(m, np.nan) for r in sub], dtype=float)
            if np.isnan(values).all():
                cells.append("–")
                continue
            values = values[np.isfinite(values)]
            sd = values.std(ddof=1) if len(values) > 1 else 0.0
            digits = 0 if m.startswith(("n_", "seconds", "spots_per_s")) else 1 if m == "epochs" else 3
            cells.append(f"{values.mean():.{digits}f} ± {sd:.{digits}f}")
        lines.append(f"| {model} | {form} | {len(sub)} | {' | '.join(cells)} |")
    return "\n".join(lines)


def paired(rows: list[dict], keys: list[tuple[str, str]], reference: tuple[str, str], columns: list[str]) -> str:
    """Mean over test sections of (model − reference) per column: each section's runs are averaged first."""
    ref = {r["section"]: r for r in rows if (r["model"], r.get("form")) == reference}
    lines = [f"| model | form | {' | '.join(f'Δ {c}' for c in columns)} |", "|---|---|" + "---|" * len(columns)]
    for model, form in keys:
        sub = [r for r in rows if r["model"] == model and r.get("form") == form and r["section"] in ref]
        if not sub or (model, form) == reference:
            continue
        cells = []
        for m in columns:
            per_section = {}
            for r in sub:
                per_section.setdefault(r["section"], []).append(r.get(m, np.nan))
            deltas = [np.mean(v) - ref[s].get(m, np.nan) for s, v in per_section.items()]
            cells.append(f"{np.mean(deltas):+.3f}")
        lines.append(f"| {model} | {form} | {' | '.join(cells)} |")
    return "\n".join(lines)


def run_baseline(sdata, features, sections, kind: str, test: str, seed: int) -> list[dict]:
    """Fit and score a baseline for one test section (and seed, for the MLP): one row per form."""
    train, val = split(sections, test)
    panel_for(sdata, features, train)
    genar.tl.baseline(sdata, kind, train_sections=train, sections=test, random_state=seed)
    genar.tl.noise_ceiling(sdata, sections=test, random_state=seed)
    base = {"model": kind, "section": test, "seed": seed, "train": train, "val": val}
    return [{**base, "form": form, **values} for form, values in scores(sdata, f"{kind}_counts", test).items()]


def benchmark_main(
    doc: str,
    models: list[str],
    short: list[str],
    extra: list[str],
    run_genar: Callable,
    first_seed_only: Iterable[str] = (),
) -> None:
    """The command line both her2st benchmarks share: the grid of test sections × seeds × models, and the tables.

    ``run_genar(sdata, features, sections, model, test, seed, args)`` runs a GenAR model; the other models are the
    baselines of :func:`run_baseline`. Seed-free baselines and the models in ``first_seed_only`` run for the first
    seed only.
    """
    once = {*SEED_FREE, *first_seed_only}
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=None)
    parser.add_argument("--epochs", type=int, default=None, help="max_epochs of genar.tl.fit (default: fit's)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sections", nargs="+", default=None, help="test sections (default: all four)")
    parser.add_argument("--models", nargs="+", default=models, choices=models)
    parser.add_argument("--n-samples", type=int, default=50, help="samples per spot for the uncertainty metrics")
    parser.add_argument("--jsonl", default=None, help="append every finished run here; runs already there are skipped")
    parser.add_argument("--table-only", default=None, metavar="JSONL", help="print the tables of a finished file")
    parser.add_argument("--all-columns", action="store_true", help="every metric, not only the main ones")
    args = parser.parse_args()
    keys = [(m, f) for m in models for f in ("float", "int")]
    columns = [*METRICS, *extra] if args.all_columns else short
    if args.table_only:
        rows = [json.loads(line) for line in Path(args.table_only).read_text().splitlines() if line.strip()]
    else:
        sdata, sections, features = embedded_sections(args.data)
        tasks = [
            (model, test, seed)
            for test in args.sections or sections
            for seed in args.seeds
            for model in args.models
            if not (model in once and seed != args.seeds[0])
        ]

        def run(model: str, test: str, seed: int) -> list[dict]:
            if model in BASELINES:
                return run_baseline(sdata, features, sections, model, test, seed)
            return run_genar(sdata, features, sections, model, test, seed, args)

        rows = run_grid(args.jsonl, tasks, run)
    print(table(rows, keys, columns))
    for reference in ("ridge", "hest_ridge"):
        print(f"\nmean over test sections of (model − {reference}, float), each section's seeds averaged first:")
        print(paired(rows, keys, (reference, "float"), ["pcc_10", "pcc_50", "pcc_200", "pcc_all", "mse", "mae"]))
