"""The main job, timed and scored as a new user would meet it.

Runs README's quick-start training command (read from README.md, so the two cannot drift apart) in a
fresh temporary folder, exactly as typed there, then scores the run's generator with the shipped MNIST
classifier:

- wall seconds of the command, the CPU seconds of the child process (user + system, from getrusage:
  on a shared machine the wall time depends on the load, the CPU time much less), the 1-minute load
  average before and after, and images/s (real images the discriminator saw per wall second of training);
- `recognised_0.9`: the fraction of `--samples` samples (default 1,000) that the classifier assigns to
  one digit with probability >= 0.9, and the per-digit histogram of its predictions;
- FID, precision and recall (k = 3) against the 2,000 embedded MNIST test digits in the classifier's
  feature space (not comparable with Inception FIDs).

Goals (issue 18): at most 240 s on 2 CPU cores, recognised_0.9 >= 0.85, every digit >= 5% of samples.

    python benchmarks/main_job.py                              # prints JSON
    python benchmarks/main_job.py --report docs/results/main_job  # also writes report.md + report.json
    python benchmarks/main_job.py --run-dir runs/mnist         # score an existing run, no training

The last printed line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
GOALS = {"wall_seconds_max": 240.0, "recognised_0.9_min": 0.85, "digit_fraction_min": 0.05}


def readme_command(readme: Path = REPO / "README.md") -> list[str]:
    """The `course-lib train ...` command of README's quick start, as argv."""
    text = readme.read_text()
    quick = text.split("## Quick start", 1)[-1]
    match = re.search(r"course-lib train [^\n`&|;]*", quick)
    if match is None:
        raise SystemExit(f"no `course-lib train` command found in the quick start of {readme}")
    return shlex.split(match.group(0).strip())


def run_command(argv: list[str], cwd: Path) -> dict:
    """Run argv in cwd; wall seconds, the child's CPU seconds and the load around it."""
    executable = shutil.which(argv[0])
    if executable is None:  # not installed as a script: the same entry point through this interpreter
        argv = [sys.executable, "-m", "course_lib.cli", *argv[1:]]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
    summary = {}
    for line in proc.stdout.splitlines():  # the command's own summary line: {"step": ..., "seconds": ...}
        if line.startswith("{"):
            summary = json.loads(line)
    return {
        "wall_seconds": round(wall, 1),
        "cpu_seconds": round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 1),
        "train_seconds": summary.get("seconds"),
        "load1_before": round(load_before, 2),
        "load1_after": round(os.getloadavg()[0], 2),
        "stdout_head": proc.stdout.splitlines()[:1],
    }


LEVEL, RESAMPLES, RECALL_DRAWS = 0.95, 200, 8  # the quality rows' intervals (see score_run)


def score_run(run_dir: Path, n_samples: int, seed: int) -> dict:
    """Classifier scores of the run's generator (its EMA copy when the run kept one), each with its 95% interval
    over the samples (`scores["intervals"]`): bootstrap for FID and precision, recall's spread over fresh latent
    draws, Wilson for the recognised fraction and each digit's share, bootstrap for the rarest digit's share."""
    import numpy as np

    from course_lib.latent.pretrained import evaluate_generator
    from course_lib.metrics.uncertainty import binomial_interval, bootstrap_interval, interval_record
    from course_lib.training.checkpoint import load_checkpoint, load_generator

    checkpoint = run_dir / "checkpoints" / "last.pt"
    config = load_checkpoint(checkpoint)["config"]
    generator = load_generator(checkpoint)
    scores = evaluate_generator(
        generator,
        n_samples,
        seed=seed,
        reference="mnist:test",
        ci=LEVEL,
        resamples=RESAMPLES,
        recall_draws=RECALL_DRAWS,
    )
    histogram = scores["digit_histogram"]
    scores["digit_fraction_min"] = min(histogram) / n_samples
    predicted = np.repeat(np.arange(10), histogram)  # the shares depend on the labels' counts alone
    rarest = bootstrap_interval(
        lambda index: np.bincount(predicted[index], minlength=10).min() / len(index), n_samples, resamples=RESAMPLES
    )
    scores["intervals"]["digit_fraction_min"] = interval_record(rarest)
    scores["intervals"]["digit_shares"] = [interval_record(binomial_interval(c, n_samples, LEVEL)) for c in histogram]
    return {"config": config, "scores": scores}


# The settings the report shows, by config section (the rest are the defaults or do not change the result).
SHOWN = {
    "data": ("dataset",),
    "model": ("arch", "width", "g_upsample"),
    "loss": ("name", "terms"),
    "optim": ("batch_size", "steps", "lr_g", "lr_d", "beta1", "beta2"),
    "run": ("seed",),
}


# What reports written before the sectioned config showed of their run's flat config.json (kept so that a
# shipped report renders from its JSON exactly as it was written).
SHOWN_FLAT = ("dataset", "arch", "width", "g_upsample", "batch_size", "steps", "lr_g", "lr_d", "beta1", "beta2")
SHOWN_FLAT += ("loss", "ema", "seed")


def shown_settings(cfg: dict) -> dict:
    """The SHOWN part of a run's (sectioned) config.json, with its callbacks (the EMA among them); for a report
    measured before the sections, the part of its flat config those reports showed."""
    if "optim" not in cfg:
        return {k: cfg[k] for k in SHOWN_FLAT if k in cfg}
    shown = {section: {k: cfg[section][k] for k in keys if k in cfg[section]} for section, keys in SHOWN.items()}
    return {**shown, "callbacks": cfg["callbacks"]}


def earlier_runs(previous: dict, keep: int = 3) -> list[dict]:
    """The timing and headline quality of the report a new one replaces (and the ones it kept), newest first: a
    timing is one run on a machine whose load decides the wall time, so the report keeps the last few beside it."""
    run, scores = previous.get("run", {}), previous.get("scores", {})
    if run.get("wall_seconds") is None:  # a scoring of an existing run: no timing to keep
        return previous.get("earlier_runs", [])[:keep]
    entry = {key: run.get(key) for key in ("wall_seconds", "cpu_seconds", "load1_before", "load1_after")}
    entry |= {"machine": previous.get("machine"), "recognised_0.9": scores.get("recognised_0.9")}
    entry["n_samples"] = scores.get("n_samples")
    return [entry, *previous.get("earlier_runs", [])][:keep]


def earlier_recognised(entry: dict) -> str:
    from course_lib.metrics.uncertainty import binomial_interval, interval_cell

    n = entry["n_samples"]
    return interval_cell(entry["recognised_0.9"], binomial_interval(round(entry["recognised_0.9"] * n), n), 1, 100, "%")


def report_markdown(result: dict) -> str:
    from course_lib.metrics.uncertainty import Interval, interval_cell

    s, run, cfg = result["scores"], result["run"], result["config"]

    def cell(key: str, digits: int, scale: float = 1.0, unit: str = "") -> str:
        return interval_cell(s[key], Interval(**s["intervals"][key]), digits, scale, unit)

    hist = s["digit_histogram"]
    n = s["n_samples"]
    goal = result["goals_met"]
    lines = [
        "# The main job (README quick start)",
        "",
        f"Command: `{result['command']}`, run in a fresh folder by `benchmarks/main_job.py`.",
        f"Machine: {result['machine']}; 1-minute load average {run['load1_before']} before and "
        f"{run['load1_after']} after the run (a shared machine: wall time depends on the load, CPU time much less).",
        f"Timing rows: n = 1 run of the command; quality rows: its generator on n = {n:,} samples, each with its 95% "
        "interval (below the table: how each is computed).",
        "",
        "| measure | value | goal |",
        "|---|---|---|",
        f"| wall seconds | {run['wall_seconds']} | <= {GOALS['wall_seconds_max']:.0f} ({'met' if goal['wall'] else 'not met'}) |",
        f"| CPU seconds (user + system, all threads) | {run['cpu_seconds']} | |",
        f"| training seconds (the trainer's own clock) | {run['train_seconds']} | |",
        f"| images/s (real images seen by D per training second) | {result['images_per_s']} | |",
        f"| recognised with p >= 0.9 | {cell('recognised_0.9', 1, 100, '%')} | >= {GOALS['recognised_0.9_min']:.0%} "
        f"({'met' if goal['recognised'] else 'not met'}) |",
        f"| rarest digit | {cell('digit_fraction_min', 1, 100, '%')} | >= {GOALS['digit_fraction_min']:.0%} "
        f"({'met' if goal['digits'] else 'not met'}) |",
        f"| FID (MNIST-classifier features) | {cell('fid_mnist', 2)} | |",
        f"| precision (k = 3) | {cell('precision', 3)} | |",
        f"| recall (k = 3) | {cell('recall', 3)} | |",
        "",
        *(
            f"An earlier run of the same command (n = 1 run): {e['wall_seconds']} s wall, {e['cpu_seconds']} CPU "
            f"seconds, 1-minute load average {e['load1_before']} before and {e['load1_after']} after; "
            f"{earlier_recognised(e)} recognised (Wilson 95% interval, n = {e['n_samples']:,} samples)."
            for e in result.get("earlier_runs", [])
        ),
        *([""] if result.get("earlier_runs") else []),
        f"The timing rows are one run (n = 1 run; no spread measured). The quality rows are the run's generator on "
        f"n = {n:,} samples (latent seed {result.get('seed', 123)}), each with its 95% interval over the samples "
        f"(`± h` when symmetric, else `[low, high]`): {s['intervals']['fid_mnist']['method']} for FID and "
        f"precision (the reference held fixed); for recall, {s['intervals']['recall']['method']} (value ± t s: a "
        "bootstrap duplicates samples, which shrinks the k-NN radii recall uses); Wilson for the recognised "
        f"fraction; {s['intervals']['digit_fraction_min']['method']} for the rarest digit's share. One training "
        "run: the spread over training seeds is not in these intervals.",
        "",
        f"Predicted digits of the samples (shipped MNIST classifier; each share with its Wilson 95% interval over "
        f"the n = {n:,} samples):",
        "",
        "| " + " | ".join(str(d) for d in range(10)) + " |",
        "|" + "---|" * 10,
        "| "
        + " | ".join(
            interval_cell(c / n, Interval(**record), 1, 100, "%")
            for c, record in zip(hist, s["intervals"]["digit_shares"], strict=True)
        )
        + " |",
        "",
        f"Reference: {s['reference']}; features: {s['extractor']}.",
        "",
        "Settings the command trained with (config.json of the run):",
        "",
        "```json",
        json.dumps(shown_settings(cfg), indent=1),
        "```",
        "",
    ]
    return "\n".join(lines)


def learning_curve(
    steps: int, every: int, n_samples: int = 1000, seed: int = 123, decays=(0.99, 0.995, 0.999)
) -> list[dict]:
    """The main-job recipe trained in this process (same Trainer, same seed as the command), scored every
    `every` steps: the raw generator and EMA copies of several decays (the recipe's EMA class, updated after
    every step exactly as the trainer does), plus the CPU and wall seconds of the training steps alone."""
    from course_lib.latent import sample_latents
    from course_lib.latent.pretrained import classify_digits, generate_uint8
    from course_lib.training import TrainConfig, Trainer
    from course_lib.training.callbacks.ema import ExponentialMovingAverage
    from course_lib.training.presets import MAIN_JOB_PRESET

    # The recipe without its EMA callback: the EMA copies below (several decays) replace it.
    config = TrainConfig.from_dict(
        {"preset": MAIN_JOB_PRESET, "callbacks.ema.enabled": False, "optim.steps": steps, "run.device": "cpu"}
    )
    trainer = Trainer(config, None, progress=False)
    emas = {d: ExponentialMovingAverage(trainer.generator, d) for d in decays}
    z = sample_latents(n_samples, config.model.latent_dim, seed=seed)

    def score(generator):
        labels, confidence = classify_digits(generate_uint8(generator, z))
        histogram = torch.bincount(labels, minlength=10).tolist()
        return {
            "recognised_0.9": round(float((confidence >= 0.9).double().mean()), 4),
            "rarest_digit": min(histogram) / n_samples,
            "digit_histogram": histogram,
        }

    rows, cpu, wall = [], 0.0, 0.0
    while trainer.step < steps:
        c, w = time.process_time(), time.perf_counter()
        trainer.train_step()
        trainer.step += 1
        for ema in emas.values():
            ema.update(trainer.generator)
        cpu += time.process_time() - c
        wall += time.perf_counter() - w
        if trainer.step % every == 0:
            row = {
                "step": trainer.step,
                "train_cpu_s": round(cpu, 1),
                "train_wall_s": round(wall, 1),
                "threads": torch.get_num_threads(),
                "load1": round(os.getloadavg()[0], 1),
                "raw": score(trainer.generator),
                **{f"ema{d}": score(e.module) for d, e in emas.items()},
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def curve_markdown(rows: list[dict], note: str = "") -> str:
    emas = [k for k in rows[0] if k.startswith("ema")]
    head = ["step", "train CPU s", "train wall s", "load", "raw G", *[f"EMA {k[3:]}" for k in emas]]
    lines = [
        "# The main-job recipe: recognised fraction over training",
        "",
        f"`{MAIN_JOB_NOTE}`: each column the fraction of {sum(rows[0]['raw']['digit_histogram'])} samples "
        "the shipped MNIST classifier recognises with p >= 0.9, and (rarest digit's share).",
        "",
    ]
    if note:
        lines += [note, ""]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [str(r["step"]), str(r["train_cpu_s"]), str(r["train_wall_s"]), str(r["load1"])]
        cells += [f"{r[k]['recognised_0.9']:.1%} ({r[k]['rarest_digit']:.1%})" for k in ("raw", *emas)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


MAIN_JOB_NOTE = "python benchmarks/main_job.py --curve STEPS --report DIR"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1000, help="samples scored by the classifier (default 1000)")
    parser.add_argument("--seed", type=int, default=123, help="seed of the scored latents (default 123)")
    parser.add_argument("--run-dir", help="score this existing run folder instead of training a new one")
    parser.add_argument("--report", metavar="DIR", help="also write DIR/report.md and DIR/report.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary run folder (its path is printed)")
    parser.add_argument(
        "--extra",
        default="",
        help="flags appended to README's command, e.g. '--steps 5' for a "
        "smoke test (the result then is not the main job's)",
    )
    parser.add_argument(
        "--curve",
        type=int,
        metavar="STEPS",
        help="instead: train the recipe in this process for STEPS steps, scoring raw and EMA "
        "generators every --every steps (DIR/curve.json + curve.md with --report)",
    )
    parser.add_argument("--every", type=int, default=250)
    args = parser.parse_args(argv)

    if args.curve:
        rows = learning_curve(args.curve, args.every, args.samples, args.seed)
        if args.report:
            from course_lib.core.io import write_json_atomic, write_text_atomic

            write_json_atomic(Path(args.report) / "curve.json", {"rows": rows})
            write_text_atomic(Path(args.report) / "curve.md", curve_markdown(rows))
        return 0

    argv_cmd = readme_command() + shlex.split(args.extra)
    workdir = Path(tempfile.mkdtemp(prefix="main_job_"))
    try:
        if args.run_dir:
            run_dir, run = (
                Path(args.run_dir),
                {
                    "wall_seconds": None,
                    "cpu_seconds": None,
                    "train_seconds": None,
                    "load1_before": None,
                    "load1_after": None,
                },
            )
        else:
            out = argv_cmd[argv_cmd.index("--out") + 1] if "--out" in argv_cmd else None
            if out is None:
                raise SystemExit("README's command has no --out; cannot find its run folder")
            run = run_command(argv_cmd, workdir)
            run_dir = workdir / out
        scored = score_run(run_dir, args.samples, args.seed)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    cfg, scores = scored["config"], scored["scores"]
    optim = cfg["optim"]
    seen = optim["steps"] * optim["batch_size"] * optim["d_steps"]
    train_s = run.get("train_seconds") or run.get("wall_seconds")
    result = {
        "benchmark": "main_job",
        "command": " ".join(argv_cmd),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads in this process)",
        "run": run,
        "seed": args.seed,
        "images_per_s": round(seen / train_s, 1) if train_s else None,
        "scores": scores,
        "config": cfg,
    }
    result["goals"] = GOALS
    result["goals_met"] = {
        "wall": run["wall_seconds"] is not None and run["wall_seconds"] <= GOALS["wall_seconds_max"],
        "recognised": scores["recognised_0.9"] >= GOALS["recognised_0.9_min"],
        "digits": scores["digit_fraction_min"] >= GOALS["digit_fraction_min"],
    }
    if args.keep and not args.run_dir:
        result["run_dir"] = str(run_dir)
    if args.report:
        from course_lib.core.reports import write_report

        previous = Path(args.report) / "report.json"
        if previous.is_file():
            result["earlier_runs"] = earlier_runs(json.loads(previous.read_text(encoding="utf-8")))
        write_report(Path(args.report), result, report_markdown)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
