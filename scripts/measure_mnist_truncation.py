"""The truncation trade-off of the shipped `mnist-dcgan`, as notebook 10's section 1 measures it in normal mode.

Notebook 10 runs the same measurement (the cell with `evaluate_generator(mnist_gen, N, seed=1, tau=tau, ...)`)
and its prose reads the three regimes off this report: FID, precision, recall (k = 3) and the share of samples
the shipped MNIST classifier recognises (p >= 0.9), for 2,000 samples per setting against the 2,000 embedded test
digits, in the classifier's feature space. One seed, so no spread: the sample-to-sample noise of these figures is
what notebook 07 measures.

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
        row = evaluate_generator(generator, N_SAMPLES, seed=SEED, tau=tau, reference_features=real)
        rows.append({key: row[key] for key in ("tau", "fid_mnist", "precision", "recall", "recognised_0.9")})
        print(f"tau {tau}: FID {row['fid_mnist']:.2f}", flush=True)
    return {
        "generator": "mnist-dcgan (course_lib/assets/mnist_dcgan.pt)",
        "n_samples": N_SAMPLES,
        "n_real": int(real.shape[0]) if hasattr(real, "shape") else N_SAMPLES,
        "seed": SEED,
        "features": "the shipped MNIST classifier's penultimate layer (metrics.extract_features(..., 'mnist'))",
        "precision_recall_k": 3,
        "rows": rows,
        "wall_seconds": round(time.perf_counter() - start_wall, 1),
        "cpu_seconds": round(time.process_time() - start_cpu, 1),
        "machine": machine(),
    }


def render_markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# Truncation of the shipped `mnist-dcgan`: FID, precision, recall",
        "",
        f"{report['n_samples']:,} samples per setting (latents from seed {report['seed']}, BigGAN's resampling "
        f"truncation) against {report['n_real']:,} embedded MNIST test digits; features: {report['features']}; "
        f"precision and recall with k = {report['precision_recall_k']}. One seed: no spread is given. "
        "Made by `python scripts/measure_mnist_truncation.py`; notebook 10 runs the same cell.",
        "",
        "| tau | FID | precision | recall | recognised (p >= 0.9) |",
        "|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        tau = "none" if row["tau"] is None else f"{row['tau']:g}"
        lines.append(
            f"| {tau} | {row['fid_mnist']:.2f} | {row['precision']:.3f} | {row['recall']:.3f} "
            f"| {row['recognised_0.9']:.1%} |"
        )
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
