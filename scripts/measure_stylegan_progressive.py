"""Measure chapter 15's StyleGAN and progressive-growing claims at MNIST scale (issue 19, notebook 14).

Writes docs/results/stylegan_mnist/ (report.md, results.json, samples.png, style_mixing.png):

1. Quality at equal training compute. Three generators are trained on the embedded MNIST digits for
   the SAME NUMBER OF CPU SECONDS (process time, one torch thread; on an idle core that is the same
   wall time, and unlike wall time it does not depend on what else the machine runs):
     dcgan         the main job's recipe (preset mnist-main-job)
     style         the style generator (preset stylegan: mapping network, modulated convolutions,
                   noise inputs, mixing regularisation) against the same DCGAN discriminator
     progressive   the progressive GAN (preset progressive), 7 -> 14 -> 28, five equal phases
   Steps are set from a calibration (CPU seconds per step, per growth level for the progressive GAN);
   the CPU seconds each model really used are reported. Scores of the EMA generator: FID,
   precision and recall in the shipped MNIST classifier's feature space against the held-out test
   digits, and the fraction of samples the classifier recognises (max softmax >= 0.9).
2. Perceptual path length of the style generator in Z (slerp) and in W (lerp), epsilon 1e-4,
   similarity = squared distance of the MNIST classifier's features (course_lib.metrics.ppl), plus
   PPL in Z of the other two for context.

3. With --ablations (issue 19, after 1-2 have written results.json): why the style generator once
   collapsed to one image. Short runs (--ablation-steps, default 100) of the stylegan preset WITHOUT
   the synthesis network's activation gain (the generator as it was), each with one change, and the
   generator as it is; per run, the between-latent pixel std (64 latents, fixed noise) and the MNIST
   classifier's digit histogram of 500 samples, raw and EMA generator. Added to results.json and the report.

Resumable: each model trains in chunks, with a checkpoint and its CPU seconds saved after each, in
--work; a rerun continues where it stopped (each ablation is saved when done). Progress goes to stdout.

    nice -n 10 python scripts/measure_stylegan_progressive.py                  # the shipped report
    nice -n 10 python scripts/measure_stylegan_progressive.py --ablations      # then the collapse ablations
    COURSE_LIB_FAST=1 python scripts/measure_stylegan_progressive.py --out /tmp/x --work /tmp/w   # seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
MODELS = {
    "dcgan": {"preset": "mnist-main-job"},
    "style": {"preset": "stylegan"},
    "progressive": {"preset": "progressive"},
}
RECOGNISED = 0.9  # max softmax probability for a sample to count as a recognised digit
LOW_RECALL = 0.2  # below this recall, the report says a model covers little of the real digits


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def config_for(name: str, steps: int, seed: int):
    from course_lib.training import TrainConfig

    values = {
        **MODELS[name],
        "optim.steps": steps,
        "run.seed": seed,
        "run.log_every": 25,
        "run.sample_every": 10**9,
        "run.checkpoint_every": 10**9,
    }
    if name == "progressive":  # five equal phases: 7, fade to 14, 14, fade to 28, 28
        phase = max(1, steps // 5)
        values["callbacks"] = [{"name": "progressive", "stable_steps": phase, "fade_steps": phase}]
    return TrainConfig.from_dict(values)


def seconds_per_step(name: str, data, seed: int, steps: int = 4) -> float:
    """CPU seconds per training step (after one warm-up step); for the progressive GAN, averaged over
    its schedule (level 0 for one fifth of the steps, level 1 for two fifths, level 2 for two)."""
    from course_lib.training import Trainer

    trainer = Trainer(config_for(name, 1000, seed), data=data, progress=False)
    levels = [(0, 1), (1, 2), (2, 2)] if name == "progressive" else [(None, 1)]
    total = 0.0
    for level, weight in levels:
        if level is not None:
            trainer.generator.set_growth(level, 1.0)
            trainer.discriminator.set_growth(level, 1.0)
        trainer.train_step()
        started = time.process_time()
        for _ in range(steps):
            trainer.train_step()
        total += weight * (time.process_time() - started) / steps
    return total / sum(w for _, w in levels)


def train(name: str, data, budget: float, work: Path, seed: int, chunk: int):
    """Train `name` for about `budget` CPU seconds (resuming from `work` if a run is there)."""
    from course_lib.core.io import write_json_atomic
    from course_lib.training import Trainer

    run = work / name
    plan_file = run / "plan.json"
    if plan_file.is_file():
        plan = json.loads(plan_file.read_text())
    else:
        cost = seconds_per_step(name, data, seed)
        plan = {"seconds_per_step": cost, "steps": max(10, int(budget / cost)), "cpu_seconds": 0.0}
        write_json_atomic(plan_file, plan)
    last = run / "checkpoints" / "last.pt"
    trainer = (
        Trainer.resume(last, data=data, progress=False)
        if last.is_file()
        else Trainer(config_for(name, plan["steps"], seed), run, data=data, progress=False)
    )
    while trainer.step < plan["steps"]:
        started = time.process_time()
        trainer.train(steps=min(plan["steps"], trainer.step + chunk))
        trainer.save_checkpoint()
        plan["cpu_seconds"] += time.process_time() - started
        write_json_atomic(plan_file, plan)
        eta = (plan["steps"] - trainer.step) * plan["cpu_seconds"] / max(trainer.step, 1)
        log(
            f"{name}: step {trainer.step}/{plan['steps']}, {plan['cpu_seconds']:.0f} CPU s, "
            f"ETA {eta:.0f} CPU s; last log {json.dumps({k: round(v, 3) for k, v in trainer.history[-1].items()})}"
        )
    return trainer, plan


def generator_flops(generator) -> int:
    """FLOPs of one forward pass for one sample (torch's FlopCounterMode; 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    generator.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        generator(torch.randn(1, generator.latent_dim))
    return int(counter.get_total_flops())


LEVEL, RESAMPLES, RECALL_DRAWS = 0.95, 200, 8  # the quality table's intervals (see quality_intervals)


def _evaluator(n_samples: int, seed: int, metric_names=("fid", "precision", "recall"), ci=None):
    from course_lib import metrics

    return metrics.GeneratorEvaluator(
        list(metric_names),
        "mnist:test",
        extractor="mnist",
        n_samples=n_samples,
        seed=seed,
        reference_limit=n_samples,
        ci=ci,
        bootstrap=RESAMPLES,
    )


def evaluate(generator, n_samples: int, seed: int) -> dict:
    """FID, precision, recall and the recognised share of n_samples samples, with their 95% intervals: FID by a
    bootstrap over the samples (the reference held fixed), recall from its spread over RECALL_DRAWS fresh draws
    (a bootstrap's duplicated samples shrink its k-NN radii), Wilson for precision and the recognised share."""
    from course_lib.metrics.uncertainty import Interval, interval_record, spread_interval

    evaluator = _evaluator(n_samples, seed)
    scores = evaluator(generator)
    z = evaluator.noise(generator.latent_dim)
    with torch.no_grad():
        generator.eval()
        images = torch.cat([generator(b) for b in z.split(500)])
    scores["recognised"] = recognised_fraction(images)
    fid_evaluator = _evaluator(n_samples, seed, ("fid",), ci=LEVEL)  # the same samples (same seed), FID's bootstrap
    fid_evaluator(generator)
    fid = fid_evaluator.results()["fid"]
    draws = [_evaluator(n_samples, seed + 1 + d, ("recall",))(generator)["recall"] for d in range(RECALL_DRAWS)]
    scores = {key: scores[key] for key in ("fid", "precision", "recall", "recognised")}
    scores["intervals"] = quality_intervals(scores, n_samples) | {
        "fid": interval_record(Interval(fid.ci_low, fid.ci_high, LEVEL, fid.ci_method, fid.ci_n)),
        "recall": interval_record(spread_interval(scores["recall"], draws, LEVEL, f"{n_samples:,} samples")),
    }
    scores["recall_draws"] = draws
    return scores


def quality_intervals(quality: dict, n_samples: int) -> dict:
    """Wilson intervals of the two fractions of the n samples (precision: the share inside the fixed real
    manifold; recognised): they follow from the values and n alone."""
    from course_lib.metrics.uncertainty import binomial_interval, interval_record

    return {
        key: interval_record(binomial_interval(round(quality[key] * n_samples), n_samples, LEVEL))
        for key in ("precision", "recognised")
    }


def ppl_interval(row: dict) -> dict:
    """t interval of a PPL mean over its kept pairs, from its std and count."""
    from scipy import stats

    from course_lib.metrics.uncertainty import Interval, interval_record

    half = float(stats.t.ppf((1 + LEVEL) / 2, row["n_kept"] - 1)) * row["std"] / row["n_kept"] ** 0.5
    return interval_record(
        Interval(row["mean"] - half, row["mean"] + half, LEVEL, f"t over {row['n_kept']} pairs", row["n_kept"])
    )


def add_intervals(results: dict, n_samples: int, seed: int) -> dict:
    """The intervals a results.json written without them can get without its generators: Wilson for the models'
    precision and recognised shares and the ablations' recognised shares, t for the PPL means, and the real
    digits' row measured again with all four intervals (it needs no generator). The models' FID and recall
    intervals need their samples: they stay missing (None, with the reason) until a re-run trains them again."""

    for model in results["models"].values():
        quality = model["quality"]
        if "intervals" not in quality:
            quality["intervals"] = quality_intervals(quality, n_samples) | {"fid": None, "recall": None}
            quality["intervals_missing"] = (
                "FID and recall intervals need the generators' samples; the generators of this run were not kept "
                "(re-run the script to measure them, about 15 CPU minutes)"
            )
    results["real"] = real_row(n_samples, seed)
    return derived_intervals(results)


def derived_intervals(results: dict) -> dict:
    """The intervals that follow from the stored values and counts (t for the PPL means, Wilson for the
    ablations' recognised shares), added where missing: every report written gets them."""
    from course_lib.metrics.uncertainty import binomial_interval, interval_record

    for row in results.get("ppl", []):
        row.setdefault("interval", ppl_interval(row))
    for row in results.get("ablations", {}).get("rows", []):
        n = sum(row["ema"]["digit_histogram"])
        recognised = binomial_interval(round(row["ema"]["recognised"] * n), n)
        row["ema"].setdefault("recognised_interval", interval_record(recognised))
    return results


def recognised_fraction(images: torch.Tensor) -> float:
    """Share of images (in [-1, 1]) whose most likely digit has probability >= RECOGNISED."""
    from course_lib.metrics.features import get_extractor

    extractor = get_extractor("mnist", "cpu")
    probs = torch.cat(
        [extractor((b.clamp(-1, 1) + 1) / 2, want_logits=True)[1].softmax(dim=1) for b in images.split(500)]
    )
    return float((probs.max(dim=1).values >= RECOGNISED).float().mean())


def real_row(n_samples: int, seed: int) -> dict:
    from course_lib.data import load_dataset
    from course_lib.metrics.uncertainty import Interval, interval_record, spread_interval

    train = load_dataset("mnist", split="train").images
    real = train[:n_samples]
    scores = _evaluator(n_samples, seed).score_images(real)
    scores["recognised"] = recognised_fraction(real.float() / 127.5 - 1)
    fid_evaluator = _evaluator(n_samples, seed, ("fid",), ci=LEVEL)
    fid_evaluator.score_images(real)
    fid = fid_evaluator.results()["fid"]
    # recall's spread: the next slices of n training digits (up to RECALL_DRAWS, as many as the embedded set holds)
    starts = range(n_samples, len(train) - n_samples + 1, n_samples)
    slices = [train[i : i + n_samples] for i in starts][:RECALL_DRAWS]
    draws = [_evaluator(n_samples, seed, ("recall",)).score_images(part)["recall"] for part in slices]
    scores = {key: scores[key] for key in ("fid", "precision", "recall", "recognised")}
    scores["intervals"] = quality_intervals(scores, n_samples) | {
        "fid": interval_record(Interval(fid.ci_low, fid.ci_high, LEVEL, fid.ci_method, fid.ci_n)),
        "recall": interval_record(
            spread_interval(scores["recall"], draws, LEVEL, f"{n_samples:,} other training digits")
        ),
    }
    scores["recall_draws"] = draws
    return scores


def mixing_grid(generator, path: Path, seed: int) -> dict:
    """Rows: a source A; columns: sources B; cells: A's styles for the first k inputs, B's after (k = 2:
    7x7 from A; the grid has k = 1, 3, 5 blocks). Saved as one PNG."""
    from course_lib.core.plots import save_image_grid

    rng = torch.Generator().manual_seed(seed)
    n = 5
    z_a, z_b = torch.randn(n, generator.latent_dim, generator=rng), torch.randn(n, generator.latent_dim, generator=rng)
    generator.eval()
    rows = []
    with torch.no_grad():
        w_a, w_b = generator.mapping(z_a), generator.mapping(z_b)
        for crossover in (1, 3, 5):
            for i in range(n):
                rows.append(
                    generator.synthesis(generator.mix(w_a[i : i + 1].expand(n, -1), w_b, crossover), noise_mode="const")
                )
    save_image_grid(torch.cat(rows), path, nrow=n)
    return {
        "rows": "for crossover k in (1, 3, 5), one row per source A; columns: sources B",
        "crossovers": [1, 3, 5],
        "layer_resolutions": list(generator.layer_resolutions),
    }


# Issue 19's ablations: (name, what changed, config overrides, activation gain of the synthesis network).
# Gain 1.0 is the generator before the fix (no sqrt(2) after each LeakyReLU); each other row changes one thing.
ABLATIONS = [
    ("before the fix", "stylegan preset, no activation gain", {}, 1.0),
    ("no mixing", "style_mixing 0", {"model.style_mixing": 0.0}, 1.0),
    ("main-job lr", "lr_g = lr_d = 1e-3 (the DCGAN's)", {"optim.lr_g": 1e-3, "optim.lr_d": 1e-3}, 1.0),
    ("D without batch norm", "d_norm none", {"model.d_norm": "none"}, 1.0),
    ("AdaIN", "style adain (instance norm instead of demodulation)", {"model.style": "adain"}, 1.0),
    ("the fix", "activation gain sqrt(2) (the preset as shipped)", {}, None),
]


def z_dependence(generator, seed: int) -> dict:
    """How much the images depend on z: the pixel std between 64 latents with the noise inputs fixed (mean over
    pixels), and the MNIST classifier's digit histogram and recognised share (>= 0.9) of 500 samples."""
    from course_lib.latent.pretrained import classify_digits, generate_uint8

    generator.eval()
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(64, generator.latent_dim, generator=rng)
    mode, generator.noise_mode = generator.noise_mode, "const"
    with torch.no_grad():
        between_z = float(generator(z).std(dim=0).mean())
    generator.noise_mode = mode
    digits, confidence = classify_digits(
        generate_uint8(generator, torch.randn(500, generator.latent_dim, generator=rng))
    )
    return {
        "between_z_pixel_std": between_z,
        "recognised": float((confidence >= RECOGNISED).float().mean()),
        "digit_histogram": torch.bincount(digits, minlength=10).tolist(),
    }


COLLAPSED = 0.05  # between-latent pixel std below which a run draws (nearly) one image for every z


def activation_scale(gain: float, seed: int) -> dict:
    """A fresh stylegan-preset generator (seed `seed`) with this activation gain: the RMS of each synthesis layer's
    activations and the between-latent std of the pre-tanh output, over 64 latents with the noise inputs fixed."""
    from course_lib.nn import style
    from course_lib.training.presets import PRESETS

    preset, shipped_gain = PRESETS["stylegan"]["model"], style.ACTIVATION_GAIN
    torch.manual_seed(seed)
    generator = style.StyleGenerator(
        preset["latent_dim"], 28, 1, preset["width"], preset["mapping_layers"], preset["style"], preset["style_mixing"]
    ).eval()
    style.ACTIVATION_GAIN = gain
    try:
        with torch.no_grad():
            ws = generator.broadcast(generator.mapping(torch.randn(64, generator.latent_dim)))
            x, rms = generator.const.expand(64, -1, -1, -1), []
            for i, layer in enumerate(generator.layers):
                x = layer(x, ws[:, i], "const")
                rms.append(float(x.pow(2).mean().sqrt()))
            pre_tanh = generator.to_rgb(x, ws[:, -1])
    finally:
        style.ACTIVATION_GAIN = shipped_gain
    return {
        "gain": gain,
        "layer_resolutions": list(generator.layer_resolutions[:-1]),
        "activation_rms": rms,
        "pre_tanh_between_z_std": float(pre_tanh.std(dim=0).mean()),
    }


def run_ablations(data, steps: int, work: Path, seed: int) -> list[dict]:
    """Train each ABLATIONS row for `steps` steps (seed `seed`) and measure z_dependence; resumable per row."""
    from course_lib.core.io import write_json_atomic
    from course_lib.nn import style
    from course_lib.training import TrainConfig, Trainer

    rows, shipped_gain = [], style.ACTIVATION_GAIN
    for i, (name, change, overrides, gain) in enumerate(ABLATIONS):
        done = work / "ablations" / f"{i}_{steps}.json"
        if done.is_file():
            rows.append(json.loads(done.read_text()))
            continue
        log(f"ablation {i + 1}/{len(ABLATIONS)}: {name} ({steps} steps)")
        style.ACTIVATION_GAIN = shipped_gain if gain is None else gain  # read at every forward pass
        try:
            config = TrainConfig.from_dict(
                {
                    "preset": "stylegan",
                    "optim.steps": steps,
                    "run.seed": seed,
                    "run.log_every": 25,
                    "run.sample_every": 10**9,
                    "run.checkpoint_every": 10**9,
                    **overrides,
                }
            )
            started = time.process_time()
            trainer = Trainer(config, data=data, progress=False).train()
            row = {
                "name": name,
                "change": change,
                "overrides": overrides,
                "activation_gain": style.ACTIVATION_GAIN,
                "steps": steps,
                "cpu_seconds": time.process_time() - started,
                "raw": z_dependence(trainer.generator, seed),
                "ema": z_dependence(trainer.generator_for_eval(), seed),
            }
        finally:
            style.ACTIVATION_GAIN = shipped_gain
        write_json_atomic(done, row)
        log(f"ablation {name}: {row}")
        rows.append(row)
    return rows


def machine() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15": list(load) if load else None,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": platform.python_version(),
    }


def write_report(out: Path, results: dict) -> None:
    from course_lib.core import reports

    reports.write_report(out, derived_intervals(results), render_markdown, json_name="results.json")


def _cell(value: float, record: dict | None, digits: int) -> str:
    from course_lib.metrics.uncertainty import Interval, interval_cell

    if record is None:
        return f"{value:.{digits}f} (no interval)"
    return interval_cell(value, Interval(**record), digits)


def _lacks(quality: dict) -> bool:
    return any(record is None for record in quality.get("intervals", {}).values())


def _quality_cells(q: dict) -> list[str]:
    """The FID, precision, recall and recognised cells of a quality row."""
    intervals = q.get("intervals", {})
    return [_cell(q[key], intervals.get(key), digits) for key, digits in QUALITY_DIGITS]


QUALITY_DIGITS = (("fid", 2), ("precision", 3), ("recall", 3), ("recognised", 3))


def render_markdown(results: dict) -> str:
    """report.md, from results.json alone (course_lib.core.reports)."""
    s = results["settings"]
    lines = [
        "# StyleGAN ideas and progressive growing on MNIST, measured",
        "",
        f"Written by `scripts/measure_stylegan_progressive.py` ({results['finished']}). Machine: "
        f"{results['machine_start']['cpu_count']} CPU cores, torch {results['machine_start']['torch']}, "
        f"{s['threads']} torch thread; load average (1, 5, 15 min) {results['machine_start']['load_average_1_5_15']} "
        f"at the start and {results['machine_end']['load_average_1_5_15']} at the end: the machine was shared, so "
        f"wall times are long and compute is counted in CPU seconds of this process instead. Total wall time "
        f"{results['wall_seconds']:.0f} s, CPU time {results['cpu_seconds']:.0f} s.",
        "",
        "## Quality at equal training compute",
        "",
        f"Each generator trained for about {s['train_cpu_seconds']:.0f} CPU seconds (process time, 1 thread) on the "
        f"embedded MNIST training digits, seed {s['seed']}; steps set by a calibration of CPU seconds per step. "
        f"Scores of the EMA generator on n = {s['eval_samples']:,} samples against n = {s['eval_samples']:,} held-out test digits "
        "in the shipped MNIST classifier's feature space (**not comparable with Inception numbers**); "
        f"'recognised' = share of samples whose most likely digit has probability >= {RECOGNISED}. "
        "Generator FLOPs: one forward pass, one sample.",
        "",
        "| model | steps | CPU s trained | CPU s / step | G MFLOPs / sample | FID (lower better) | precision | recall "
        "| recognised |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["models"].items():
        q = r["quality"]
        lines.append(
            f"| {name} | {r['steps']} | {r['cpu_seconds']:.0f} | {r['seconds_per_step']:.3f} | "
            f"{r['generator_flops'] / 1e6:.1f} | " + " | ".join(_quality_cells(q)) + " |"
        )
    q = results["real"]
    missing = sorted({r["quality"]["intervals_missing"] for r in results["models"].values() if _lacks(r["quality"])})
    lines += [
        "| *real training digits* | | | | | " + " | ".join(_quality_cells(q)) + " |",
        "",
        f"Each score: value and its 95% interval over the n = {s['eval_samples']:,} samples (`± h` when symmetric, "
        "else `[low, high]`): percentile bootstrap for FID (200 resamples, the test digits held fixed); for "
        f"recall, value ± t s from its spread s over {RECALL_DRAWS} fresh draws of samples (for the real row: "
        f"over the {len(q['recall_draws'])} next slices of {s['eval_samples']:,} training digits), since a "
        "bootstrap's duplicated samples shrink the k-NN radii recall uses; Wilson for precision (the share of "
        "samples inside the fixed real manifold) and for the recognised share. The steps, CPU seconds and FLOPs "
        "are one run each (n = 1 run)."
        + (f" **No interval** (FID, recall of the models): {'; '.join(missing)}." if missing else ""),
        "",
        "One seed and one budget: differences of a few FID points are within what another seed moves.",
        "",
        "## Perceptual path length: Z vs W",
        "",
        f"PPL = E[d(G(interp(t)), G(interp(t + eps))) / eps^2], eps = {s['ppl_epsilon']:g}, t ~ U(0, 1), "
        f"{s['ppl_samples']} pairs each (1% smallest and largest discarded, as StyleGAN does), d = squared L2 "
        "distance of the MNIST classifier's 128-d features, no crop or resize (`course_lib.metrics.ppl`). "
        "Z: slerp; W: lerp of mapped latents; noise inputs held fixed. Not comparable with StyleGAN's "
        "LPIPS-based FFHQ numbers.",
        "",
        "PPL mean: value and its 95% t interval over the n kept pairs (n = "
        f"{', '.join(sorted({str(row['n_kept']) for row in results['ppl']}))} per row); std: the spread of the "
        "pairs' values.",
        "",
        "| model | space | PPL mean | std | pairs kept / drawn |",
        "|---|---|---|---|---|",
    ]
    for row in results["ppl"]:
        lines.append(
            f"| {row['model']} | {row['space'].upper()} | {_cell(row['mean'], row['interval'], 1)} | "
            f"{row['std']:.4g} | {row['n_kept']} / {row['n_samples']} |"
        )
    style_ppl = {row["space"]: row["mean"] for row in results["ppl"] if row["model"] == "style"}
    verdict = (
        "lower in W than in Z, as StyleGAN reports"
        if style_ppl["w"] < style_ppl["z"]
        else "NOT lower in W than in Z here, unlike StyleGAN's report"
    )
    learned = {name: r["quality"]["precision"] > 0 for name, r in results["models"].items()}
    style_se = {row["space"]: row["std"] / row["n_kept"] ** 0.5 for row in results["ppl"] if row["model"] == "style"}
    lines += [
        "",
        f"For the style generator, PPL is {verdict} (W/Z = {style_ppl['w'] / style_ppl['z']:.2f}; standard "
        f"errors of the means: Z {style_se['z']:.3g}, W {style_se['w']:.3g}). One generator and one seed: "
        "whether the ratio holds for other runs was not measured.",
    ]
    if not learned["style"]:
        lines += [
            "",
            "**This is not evidence either way**: the style generator has not learned digits at this "
            "budget (precision 0), and its PPL in Z is "
            f"{style_ppl['z'] / next(r['mean'] for r in results['ppl'] if r['model'] == 'dcgan'):.2g} times "
            "the DCGAN's: its images barely depend on the latent yet (near-constant output).",
        ]
    lines += ["", "## What these numbers show", ""]
    if not any(learned.values()):
        lines += [
            f"Nothing about the methods. At {s['train_cpu_seconds']:.0f} CPU seconds per model no generator "
            "has learned digits: precision and recall are 0 for all three and every FID is far from the real "
            "digits'. A 'recognised' fraction near 1 with precision 0 means the classifier confidently reads "
            "images that lie outside the real digits' manifold, not that they are good digits (see "
            "samples.png). The budget was set by the "
            "machine (a shared 2-core machine at the load above, this process at nice 10), not by the "
            "question. The script's defaults (240 CPU seconds per model, 2,000 samples, 1,000 PPL pairs: "
            "planned as 12 CPU minutes of training plus evaluation, not run here) are the run to ship."
        ]
    else:
        models = results["models"]

        def lr_of(name: str) -> float:  # results.json before 2026-12-02 05:00 lacks it: the preset's value
            return models[name].get("lr_g") or config_for(name, 1, s["seed"]).optim.lr_g

        ranked = sorted(models, key=lambda name: models[name]["quality"]["fid"])
        lines += [
            f"By FID at about {s['train_cpu_seconds']:.0f} CPU seconds each: "
            + ", ".join(f"{name} {models[name]['quality']['fid']:.1f}" for name in ranked)
            + f" (real digits {results['real']['fid']:.2f})."
        ]
        unlearned = [name for name in models if not learned[name]]
        if unlearned:
            lines += [
                "",
                f"{', '.join(unlearned)}: precision 0, no digits learned at this budget; compare only the others.",
            ]
        for name in models:
            q = models[name]["quality"]
            if learned[name] and q["recall"] < LOW_RECALL:
                lines += [
                    "",
                    f"{name}: recall {q['recall']:.3f} (below {LOW_RECALL}) with precision "
                    f"{q['precision']:.3f}: its samples cover little of the real digits' variety"
                    + (
                        f", and only {q['recognised']:.0%} are confidently read as digits"
                        if q["recognised"] < 0.5
                        else ""
                    )
                    + " (see samples.png).",
                ]
        style, dcgan = models["style"], models["dcgan"]
        if learned["style"] and style["quality"]["fid"] > dcgan["quality"]["fid"]:
            lines += [
                "",
                "At equal CPU seconds the style generator does not match the DCGAN here (FID "
                f"{style['quality']['fid']:.1f} vs {dcgan['quality']['fid']:.1f}, recognised "
                f"{style['quality']['recognised']:.0%} vs {dcgan['quality']['recognised']:.0%}): a step "
                f"costs it {style['seconds_per_step'] / dcgan['seconds_per_step']:.1f}x the DCGAN's CPU seconds "
                f"({style['steps']} vs {dcgan['steps']} steps), and it trained at learning rate "
                f"{lr_of('style'):g} where the main job's recipe uses {lr_of('dcgan'):g}. Whether it catches up "
                "with more compute or another learning rate was not measured here.",
            ]
    if results.get("ablations"):
        a = results["ablations"]
        lines += [
            "",
            "## Why the style generator collapsed (issue 19)",
            "",
            "Before the fix, this report's style generator drew one digit for every z (the report of commit "
            "50d7007: FID 121, precision 0, recall 0, PPL in Z 1.5e-4). Short runs of the stylegan preset, seed "
            f"{a['seed']}, {a['rows'][0]['steps']} steps each: the generator as it was (no activation gain "
            "after its LeakyReLUs), each with one change, and the generator as it is. 'between-z std': pixel "
            "std between 64 latents with the noise inputs fixed (0 = one image for every z); digits: the "
            "MNIST classifier's histogram of 500 samples (digits 0-9) of the EMA generator; recognised (EMA): "
            "share of those n = 500 samples read with p >= 0.9, with its Wilson 95% interval. The between-z "
            "std is one measurement over 64 latents per run (n = 64, no interval: it tells a collapsed generator "
            "(near 0) from a varied one, a contrast far larger than its noise).",
            "",
            "| run | change | between-z std (raw / EMA) | recognised (EMA) | EMA digit histogram 0-9 |",
            "|---|---|---|---|---|",
        ]
        for row in a["rows"]:
            lines.append(
                f"| {row['name']} | {row['change']} | {row['raw']['between_z_pixel_std']:.3f} / "
                f"{row['ema']['between_z_pixel_std']:.3f} | "
                f"{_cell(row['ema']['recognised'], row['ema']['recognised_interval'], 2)} | "
                f"{' '.join(str(n) for n in row['ema']['digit_histogram'])} |"
            )
        collapsed = [row["name"] for row in a["rows"] if row["ema"]["between_z_pixel_std"] < a["collapsed_below"]]
        kept = [row["name"] for row in a["rows"] if row["name"] not in collapsed]
        lines += [
            "",
            f"Collapsed (EMA between-z std < {a['collapsed_below']}): {', '.join(collapsed) or 'none'}; "
            f"not collapsed: {', '.join(kept) or 'none'}.",
            "",
            "Activation scale of a fresh generator (seed "
            f"{a['seed']}, 64 latents, noise fixed): RMS of each synthesis layer's activations "
            f"({', '.join(f'{r}x{r}' for r in a['initial_scale'][0]['layer_resolutions'])}) and the "
            "between-z std of the pre-tanh output (one fresh generator, n = 64 latents; a deterministic "
            "diagnostic of the initialisation, no interval).",
            "",
            "| activation gain | activation RMS per layer | pre-tanh between-z std |",
            "|---|---|---|",
        ]
        for row in a["initial_scale"]:
            lines.append(
                f"| {row['gain']:.3f} | {' '.join(f'{v:.2f}' for v in row['activation_rms'])} | "
                f"{row['pre_tanh_between_z_std']:.2f} |"
            )
        lines += [
            "",
            "The explanation these numbers support: demodulation restores unit variance only for "
            "unit-variance inputs, and LeakyReLU(0.2) halves the second moment, so without StyleGAN2's gain "
            "of sqrt(2) after each activation the activations shrink layer by layer and the output barely "
            "varies with z; the z-independent parameters (biases, the constant input) then outweigh the styles. "
            "AdaIN renormalises every layer.",
        ]
        if "D without batch norm" in kept:
            lines += [
                "",
                "Removing the discriminator's batch norm also kept the images varied at this step, without "
                "the gain: batch norm in D (which sees each fake batch's own statistics) takes part in the "
                "collapse. The shipped fix is the gain, StyleGAN2's own design, which keeps the discriminator "
                "the DCGAN's; whether a batch-norm-free D alone trains well was not measured beyond these steps.",
            ]
        lines += [
            "",
            "One seed and short runs: they show the collapse and its cause, not final quality (that is the "
            "first table).",
        ]
    lines += [
        "",
        "## Files",
        "",
        "- `samples.png`: 64 samples of each generator (rows of 8: dcgan, style, progressive blocks).",
        "- `style_mixing.png`: the style generator's mixing grid; see results.json 'mixing'.",
        "- `results.json`: every number above, the settings and the machine ('ablations': issue 19's runs, "
        "written by `--ablations`).",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> None:
    from course_lib.core.runtime import fast_mode

    fast = fast_mode()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "results" / "stylegan_mnist"))
    parser.add_argument("--work", default=str(ROOT / "runs" / "measure_stylegan_progressive"))
    parser.add_argument("--train-cpu-seconds", type=float, default=3.0 if fast else 240.0)
    parser.add_argument("--eval-samples", type=int, default=64 if fast else 2000)
    parser.add_argument("--ppl-samples", type=int, default=32 if fast else 1000)
    parser.add_argument("--chunk", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report-only", action="store_true", help="re-render report.md from results.json")
    parser.add_argument(
        "--ablations",
        action="store_true",
        help="run issue 19's collapse ablations and add them to an existing results.json",
    )
    parser.add_argument("--ablation-steps", type=int, default=10 if fast else 100)
    parser.add_argument(
        "--add-intervals",
        action="store_true",
        help="add the intervals that need no generator to an existing results.json (see add_intervals)",
    )
    args = parser.parse_args(argv)
    if args.add_intervals:
        torch.set_num_threads(1)
        results_file = Path(args.out) / "results.json"
        results = add_intervals(json.loads(results_file.read_text()), args.eval_samples, args.seed)
        write_report(Path(args.out), results)
        log(f"wrote {Path(args.out) / 'report.md'}")
        return
    if args.report_only:
        write_report(Path(args.out), json.loads((Path(args.out) / "results.json").read_text()))
        return
    torch.set_num_threads(1)
    if args.ablations:
        from course_lib.data import load_dataset

        results_file = Path(args.out) / "results.json"
        if not results_file.is_file():
            raise SystemExit(f"{results_file} not found: run the measurement without --ablations first")
        results = json.loads(results_file.read_text())
        rows = run_ablations(load_dataset("mnist", split="train"), args.ablation_steps, Path(args.work), args.seed)
        from course_lib.nn import style

        results["ablations"] = {
            "seed": args.seed,
            "rows": rows,
            "machine": machine(),
            "collapsed_below": COLLAPSED,
            "initial_scale": [activation_scale(gain, args.seed) for gain in (1.0, style.ACTIVATION_GAIN)],
        }
        write_report(Path(args.out), results)
        log(f"wrote {Path(args.out) / 'report.md'}")
        return
    from course_lib.core.plots import save_image_grid
    from course_lib.data import load_dataset
    from course_lib.metrics.ppl import perceptual_path_length

    out, work = Path(args.out), Path(args.work)
    wall, cpu = time.perf_counter(), time.process_time()
    results = {
        "settings": {
            "train_cpu_seconds": args.train_cpu_seconds,
            "eval_samples": args.eval_samples,
            "ppl_samples": args.ppl_samples,
            "ppl_epsilon": 1e-4,
            "seed": args.seed,
            "threads": torch.get_num_threads(),
            "fast_mode": fast,
            "compute": "equal CPU seconds (process time, 1 thread)",
        },
        "machine_start": machine(),
        "models": {},
        "ppl": [],
    }
    data = load_dataset("mnist", split="train")
    generators, grids = {}, []
    for name in MODELS:
        trainer, plan = train(name, data, args.train_cpu_seconds, work, args.seed, args.chunk)
        generator = trainer.generator_for_eval()
        log(f"{name}: evaluating")
        results["models"][name] = {
            "steps": trainer.step,
            "cpu_seconds": plan["cpu_seconds"],
            "lr_g": trainer.config.optim.lr_g,
            "lr_d": trainer.config.optim.lr_d,
            "seconds_per_step": plan["seconds_per_step"],
            "generator_flops": generator_flops(generator),
            "quality": evaluate(generator, args.eval_samples, args.seed),
        }
        log(f"{name}: {results['models'][name]}")
        generators[name] = generator
        grids.append(
            generator(
                torch.randn(64, generator.latent_dim, generator=torch.Generator().manual_seed(args.seed))
            ).detach()
        )
    for name, space in (("style", "z"), ("style", "w"), ("dcgan", "z"), ("progressive", "z")):
        log(f"PPL {name} in {space.upper()}")
        result = perceptual_path_length(generators[name], args.ppl_samples, space, similarity="mnist", seed=args.seed)
        results["ppl"].append({"model": name, **result.to_dict()})
        log(str(result))
    results["real"] = real_row(args.eval_samples, args.seed)
    save_image_grid(torch.cat(grids), out / "samples.png", nrow=8)
    results["mixing"] = mixing_grid(generators["style"], out / "style_mixing.png", args.seed)
    results["machine_end"] = machine()
    results["wall_seconds"] = time.perf_counter() - wall
    results["cpu_seconds"] = time.process_time() - cpu
    results["finished"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    write_report(out, results)
    log(f"wrote {out / 'report.md'}")


if __name__ == "__main__":
    main()
