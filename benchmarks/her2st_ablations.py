"""GenAR, its ablations and the baselines on the her2st sections: leave one section out, several seeds.

Protocol (as benchmarks/her2st_sections.py): for every test section and seed, the next image section in cyclic order
is the validation section (epoch selection, early stopping, calibration) and the remaining two are the training
sections, on which the 200-gene panel is chosen and every model is trained. Each model writes both forms of its
prediction (the float estimate and integer counts), scored by the same genar.tl.evaluate; the table gives mean ± sd
over sections and seeds.

Variants, each the default GenARConfig() with one thing changed: gaussian_final (the paper's final-scale target,
a discretised Gaussian with σ = 0.01·count + 1, instead of the default's), position_weighting (every position weighs
the same, as the reference implementation's sum), coords_8 (8 octaves of coordinate encoding, the earlier default),
no_coords, cap_max (the cap at the largest training count), pcc_selection and mse_selection (the epoch with the best
free-running validation score of the estimate instead of the lowest teacher-forced loss), optimiser (weight decay
0.05, gradient clipping at 1, a cosine schedule with warm-up), ensemble_3 (three networks averaged in log space),
no_film (no gene-identity FiLM), regression (a continuous head: squared error on log counts, no sampling),
single_scale (200 only), scales_1_8_40_200, scales_1_4_20_100_200, random_groups (random gene order), bf16_mixed
(the default trained in bfloat16 mixed precision, ``genar.tl.fit(..., precision="bf16-mixed")``); and the baselines
ridge, hest_ridge, mlp and mean.

Run:  GENAR_DATA_DIR=../shared/data python benchmarks/her2st_ablations.py [--seeds 0 1 2] [--sections B4 C2 C3 C4]
      [--models genar no_film ...] [--n-samples 50] [--jsonl rows.jsonl] [--table-only rows.jsonl]
"""

from __future__ import annotations

import time

from _her2st import BASELINES, benchmark_main, panel_for, scores, split

import genar

PAPER = (1, 4, 8, 40, 100, 200)
VARIANTS = {
    "genar": ({}, PAPER, "kmeans"),
    "gaussian_final": ({"final_loss": "gaussian"}, PAPER, "kmeans"),
    "position_weighting": ({"loss_weighting": "position"}, PAPER, "kmeans"),
    "coords_8": ({"n_freqs": 8}, PAPER, "kmeans"),
    "no_coords": ({"n_freqs": 0}, PAPER, "kmeans"),
    "cap_max": ({"cap_quantile": 1.0}, PAPER, "kmeans"),
    "pcc_selection": ({"selection": "pcc"}, PAPER, "kmeans"),
    "mse_selection": ({"selection": "mse"}, PAPER, "kmeans"),
    "optimiser": ({"weight_decay": 0.05, "grad_clip": 1.0, "lr_schedule": "cosine"}, PAPER, "kmeans"),
    "ensemble_3": ({"n_models": 3}, PAPER, "kmeans"),
    "no_film": ({"gene_film": False}, PAPER, "kmeans"),
    "regression": ({"head": "regression"}, PAPER, "kmeans"),
    "single_scale": ({}, (200,), "kmeans"),
    "scales_1_8_40_200": ({}, (1, 8, 40, 200), "kmeans"),
    "scales_1_4_20_100_200": ({}, (1, 4, 20, 100, 200), "kmeans"),
    "random_groups": ({}, PAPER, "random"),
    "bf16_mixed": ({}, PAPER, "kmeans"),
}
#: Trainer arguments of the variants that change how, not what, is trained.
TRAINER_ARGUMENTS = {"bf16_mixed": {"precision": "bf16-mixed"}}
SHORT = ["pcc_10", "pcc_50", "pcc_200", "n_pcc_200", "pcc_all", "mse", "pit_coverage_90", "rps", "temperature"]


def run_variant(sdata, features, sections, name: str, test: str, seed: int, args) -> list[dict]:
    """Train one GenAR variant for one test section and seed, predict the test section, score both forms."""
    start = time.perf_counter()
    train, val = split(sections, test)
    panel_for(sdata, features, train)
    overrides, scales, method = VARIANTS[name]
    genar.pp.cluster_genes(sdata, scales=scales, method=method, random_state=seed)
    config = genar.GenARConfig(**overrides)
    kwargs = {} if args.epochs is None else {"max_epochs": args.epochs}
    kwargs.update(TRAINER_ARGUMENTS.get(name, {}))
    model = genar.tl.fit(sdata, train_sections=train, val_sections=val, config=config, random_state=seed, **kwargs)
    extra = {"epochs": model.train_info["epochs_run"]}
    sampled = config.head == "tokens" and args.n_samples > 1
    if sampled:
        genar.tl.calibrate(sdata, model, sections=val, n_samples=max(2, args.n_samples // 2), random_state=seed)
        extra["temperature"] = model.calibration["temperature"]
    genar.tl.predict(sdata, model, sections=test, n_samples=args.n_samples if sampled else 1, random_state=seed)
    genar.tl.noise_ceiling(sdata, sections=test, random_state=seed)
    extra["seconds"] = time.perf_counter() - start
    base = {"model": name, "section": test, "seed": seed, "train": train, "val": val, **extra}
    return [{**base, "form": form, **values} for form, values in scores(sdata, "genar_counts", test).items()]


if __name__ == "__main__":
    benchmark_main(__doc__, [*VARIANTS, *BASELINES], SHORT, ["temperature", "epochs", "seconds"], run_variant)
