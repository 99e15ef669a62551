"""The truncation trade-off of the shipped `mnist-dcgan`, as notebook 10's section 1 measures it in normal mode.

Notebook 10 runs the same measurement (the cell with `evaluate_generator(mnist_gen, N, seed=1, tau=tau, ...)`)
and its prose reads the three regimes off this report: FID, precision, recall (k = 3) and the share of samples
the shipped MNIST classifier recognises (p >= 0.9), for 2,000 samples per setting against the 2,000 embedded test
digits, in the classifier's feature space. Each figure carries its 95% interval over the 2,000 generated samples
(a percentile bootstrap, 200 resamples, the reference held fixed, for FID and precision; recall's spread over 8
fresh latent draws; Wilson for the recognised fraction): the sample-to-sample noise. One generator, so no spread over training seeds.

    python scripts/measure_mnist_truncation.py [--out docs/results/mnist_truncation] [--render-only]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "results" / "mnist_truncation"
# The notebook's normal-mode settings (solutions/10_truncation_and_interpolation.ipynb, section 1).
TAUS = [0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 3.0]
N_SAMPLES = 2000
SEED = 1
LEVEL, RESAMPLES = 0.95, 200
RECALL_DRAWS = 8  # fresh latent draws whose spread gives recall's interval (see evaluate_generator)
METRICS = ("fid_mnist", "precision", "recall", "recognised_0.9")


def measure() -> dict:
    import torch

    from course_lib import metrics
    from course_lib.core.reports import machine
    from course_lib.latent.pretrained import evaluate_generator, load_pretrained

    torch.set_num_threads(1)  # a shared machine: one core, and the timings say so
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    generator = load_pretrained("mnist-dcgan")
    real = metrics.extract_features("mnist:test", "mnist", limit=N_SAMPLES, progress=False, device="cpu")
    rows = []
    for tau in TAUS + [None]:
        row = evaluate_generator(
            generator,
            N_SAMPLES,
            seed=SEED,
            tau=tau,
            reference_features=real,
            ci=LEVEL,
            resamples=RESAMPLES,
            recall_draws=RECALL_DRAWS,
        )
        rows.append(
            {"tau": tau, "n": row["n_samples"]}
            | {key: row[key] for key in METRICS}
            | {"intervals": {key: row["intervals"][key] for key in METRICS}, "recall_draws": row["recall_draws"]}
        )
        print(f"tau {tau}: FID {row['fid_mnist']:.2f}", flush=True)
    return {
        "generator": "mnist-dcgan (course_lib/assets/mnist_dcgan.pt)",
        "n_samples": N_SAMPLES,
        "n_real": int(real.shape[0]) if hasattr(real, "shape") else N_SAMPLES,
        "seed": SEED,
        "features": "the shipped MNIST classifier's penultimate layer (metrics.extract_features(..., 'mnist'))",
        "precision_recall_k": 3,
        "interval": {
            "level": LEVEL,
            "resamples": RESAMPLES,
            "recall_draws": RECALL_DRAWS,
            "text": f"95% intervals over the {N_SAMPLES:,} generated samples of each row: percentile bootstrap "
            f"({RESAMPLES} resamples, the reference digits held fixed) for FID and precision; for recall, "
            f"value ± t s from its spread s over {RECALL_DRAWS} fresh draws of {N_SAMPLES:,} latents (seeds 2 "
            f"to {SEED + RECALL_DRAWS}: a bootstrap duplicates samples, which shrinks the k-NN radii recall "
            "uses and puts its interval below the value); Wilson score interval for the recognised fraction",
        },
        "rows": rows,
        "wall_seconds": round(time.perf_counter() - start_wall, 1),
        "cpu_seconds": round(time.process_time() - start_cpu, 1),
        "machine": machine(),
    }


# How each metric's cell prints: key, digits, scale, unit.
CELLS = [
    ("fid_mnist", 2, 1.0, ""),
    ("precision", 3, 1.0, ""),
    ("recall", 3, 1.0, ""),
    ("recognised_0.9", 1, 100.0, "%"),
]


def render_markdown(report: dict) -> str:
    from course_lib.metrics.uncertainty import Interval, interval_cell

    m = report["machine"]
    lines = [
        "# Truncation of the shipped `mnist-dcgan`: FID, precision, recall",
        "",
        f"{report['n_samples']:,} samples per setting (latents from seed {report['seed']}, BigGAN's resampling "
        f"truncation) against {report['n_real']:,} embedded MNIST test digits; features: {report['features']}; "
        f"precision and recall with k = {report['precision_recall_k']}. "
        "Made by `python scripts/measure_mnist_truncation.py`; notebook 10 runs the same cell.",
        "",
        f"Each cell: value and {report['interval']['text']} (n = {report['n_samples']:,} per row; `± h` when the "
        "interval is symmetric, else `[low, high]`). One generator and one latent seed: these intervals are the "
        "sampling noise only, not the spread over training runs.",
        "",
        "| tau | FID | precision | recall | recognised (p >= 0.9) |",
        "|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        tau = "none" if row["tau"] is None else f"{row['tau']:g}"
        cells = [
            interval_cell(row[key], Interval(**row["intervals"][key]), digits, scale, unit)
            for key, digits, scale, unit in CELLS
        ]
        lines.append(f"| {tau} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Machine: {m['platform']}, {m['cpu_cores']} cores, torch {m['torch']} with {m['torch_threads']} thread(s), "
        f"load {m['load_1min']} at the end; {report['wall_seconds']} s wall, {report['cpu_seconds']} CPU-s.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    from course_lib.core.reports import render_again, write_report

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--render-only", action="store_true", help="re-render report.md from the report.json there")
    args = parser.parse_args()
    if args.render_only:
        print(render_again(args.out, render_markdown))
        return
    print(write_report(args.out, measure(), render_markdown))


if __name__ == "__main__":
    main()
