"""Measure image translation on the embedded MNIST (issue 19, notebook 13): writes docs/results/image_translation/.

1. pix2pix, 7x7 -> 28x28 super-resolution (configs/pix2pix_mnist.yaml): L1 only vs L1 + GAN vs GAN only, scored
   on the embedded test digits with L1, PSNR, SSIM, sharpness, MNIST-feature FID and classifier accuracy.
2. CycleGAN, digits <-> stroke-thickened digits, unpaired (configs/cyclegan_mnist.yaml): with vs without the
   cycle term, scored by the cycle reconstruction error and the shipped classifier's accuracy on translations.

Every run goes through the one trainer with the configs' settings, scaled down (--width, --steps, ...) to fit a
CPU budget; each run checkpoints in --work and its scores are saved as soon as it finishes, so an interrupted
script resumes where it stopped and the report always holds what has been measured. One torch thread.

    nice -n 10 python scripts/measure_image_translation.py            # the shipped report
    COURSE_LIB_FAST=1 python scripts/measure_image_translation.py --out /tmp/x --work /tmp/y   # seconds
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from course_lib.core.images import to_float
from course_lib.core.plots import save_image_grid
from course_lib.core.reports import write_report
from course_lib.core.runtime import fast_mode
from course_lib.data.translation import load_translation
from course_lib.metrics.translation import classifier_accuracy, cycle_scores, paired_scores, translate
from course_lib.metrics.uncertainty import binomial_interval, interval_record
from course_lib.training import Trainer
from course_lib.training.config import TrainConfig, read_settings

ROOT = Path(__file__).resolve().parent.parent
# Each variant's change to its config, by dotted path; `enabled: false` removes the preset's loss term.
PIX2PIX = [
    ("L1 only", {"loss.adversarial_weight": 0.0}),
    ("L1 + GAN", {}),
    ("GAN only", {"loss.terms.l1.enabled": False}),
]
CYCLEGAN = [("with cycle loss", {}), ("without cycle loss", {"loss.terms.cycle.enabled": False})]
LEVEL, RESAMPLES = 0.95, 200  # every score's interval: its level, and the bootstrap resamples of the FID's
# The settings each run records in results.json beside its scores.
RECORDED = ("loss.name", "loss.adversarial_weight", "loss.terms", "optim.steps", "optim.batch_size", "model.width")


def slug(name: str) -> str:
    return name.lower().replace(" + ", "-").replace(" ", "-")


def train_run(task: str, name: str, variant: dict, args, work: Path) -> tuple[Trainer, dict]:
    """Train (or resume, or reload) one run; returns the trainer and its timing."""
    source = ROOT / "configs" / f"{task}_mnist.yaml"
    settings = {
        **read_settings(source),
        "model.width": args.width,
        "optim.steps": args.steps[task],
        "optim.batch_size": args.batch[task],
        "run.seed": args.seed,
        "run.log_every": 25,
        "run.sample_every": max(args.steps[task] // 2, 1),
        "run.checkpoint_every": max(args.steps[task] // 4, 1),
        "data.limit": args.limit,
        **variant,
    }
    run_dir = work / f"{task}-{slug(name)}"
    if (run_dir / "checkpoints" / "last.pt").is_file():
        trainer = Trainer.resume(run_dir, progress=False)
    else:
        trainer = Trainer(TrainConfig.from_dict(settings, source=str(source)), run_dir, progress=False)
    cpu = time.process_time()
    trainer.train()
    return trainer, {
        "train_wall_seconds_total": round(trainer.elapsed, 1),
        "train_cpu_seconds_this_session": round(time.process_time() - cpu, 1),
    }


def measure_pix2pix(args, work: Path, results: dict) -> None:
    test = load_translation("pix2pix", "superres", split="test", limit=args.eval_n)
    results.setdefault("pix2pix", {})
    outputs = {}
    for name, variant in PIX2PIX:
        trainer, timing = train_run("pix2pix", name, variant, args, work)
        outputs[name] = translate(trainer.generator_for_eval(), test.sources.images)
        if "intervals" not in results["pix2pix"].get(name, {}):  # not yet scored, or scored without intervals
            results["pix2pix"][name] = {
                **paired_scores(outputs[name], test.targets.images, test.labels, ci=LEVEL, resamples=RESAMPLES),
                **timing,
                "settings": {path: trainer.config.get(path) for path in RECORDED},
            }
            save(args, results)
        print(name, json.dumps(results["pix2pix"][name]), flush=True)
    results["pix2pix_reference"] = {
        "input (upsampled 7x7)": paired_scores(
            to_float(test.sources.images), test.targets.images, test.labels, ci=LEVEL, resamples=RESAMPLES
        ),
        "n_test": len(test),
    }
    n = 8
    grid = (
        [to_float(test.sources.images[:n])]
        + [outputs[name][:n] for name, _ in PIX2PIX]
        + [to_float(test.targets.images[:n])]
    )
    save_image_grid(torch.cat(grid), Path(args.out) / "pix2pix_examples.png", nrow=n)
    save(args, results)


def measure_cyclegan(args, work: Path, results: dict) -> None:
    test = load_translation("cyclegan", "thicken", split="test", limit=args.eval_n)
    results.setdefault("cyclegan", {})
    examples = []
    for name, variant in CYCLEGAN:
        trainer, timing = train_run("cyclegan", name, variant, args, work)
        generator = trainer.generator_for_eval()
        if "intervals" not in results["cyclegan"].get(name, {}):
            results["cyclegan"][name] = {
                **cycle_scores(generator, test.a.images, test.b.images, test.a.labels, test.b.labels, ci=LEVEL),
                **timing,
                "settings": {path: trainer.config.get(path) for path in RECORDED},
            }
            save(args, results)
        print(name, json.dumps(results["cyclegan"][name]), flush=True)
        a = to_float(test.a.images[:8])
        to_b = translate(generator, torch.cat([a, a]))[8:]  # second half: G(a)
        back = translate(generator, torch.cat([to_b, to_b]))[:8]  # first half: F(G(a))
        examples += [a, to_b, back]
    reference = {
        "accuracy on real A (thickened)": classifier_accuracy(test.a.images, test.a.labels),
        "accuracy on real B (digits)": classifier_accuracy(test.b.images, test.b.labels),
    }
    results["cyclegan_reference"] = {
        **reference,
        "n_test_per_domain": len(test.a),
        "intervals": {
            key: interval_record(binomial_interval(round(value * len(test.a)), len(test.a), LEVEL))
            for key, value in reference.items()
        },
    }
    save_image_grid(torch.cat(examples), Path(args.out) / "cyclegan_examples.png", nrow=8)
    save(args, results)


def save(args, results: dict) -> None:
    out = Path(args.out)
    results["machine"] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average_at_write": list(os.getloadavg()),
        "note": "a 2-core machine shared with 4-5 other jobs; wall times are not speeds",
    }
    results["settings"] = {
        "width": args.width,
        "steps": args.steps,
        "batch": args.batch,
        "seed": args.seed,
        "train_limit": args.limit,
        "eval_n": args.eval_n,
        "fast_mode": fast_mode(),
    }
    write_report(out, results, report, json_name="results.json")


def _fmt(value) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


# Decimals each score's cell prints with its interval.
DIGITS = {"l1": 4, "psnr": 2, "ssim": 3, "sharpness": 4, "fid_mnist": 2, "accuracy": 3}
DIGITS |= {"cycle_l1_a": 4, "cycle_l1_b": 4, "accuracy_a_to_b": 3, "accuracy_b_to_a": 3, "sharpness_targets": 4}
DIGITS |= {"accuracy on real A (thickened)": 4, "accuracy on real B (digits)": 4}


def _cell(row: dict, key: str) -> str:
    """A score with its interval (`value ± h`, or `value [low, high]` when lopsided)."""
    from course_lib.metrics.uncertainty import Interval, interval_cell

    if row.get(key) is None:
        return ""
    if key not in row.get("intervals", {}):  # a run scored before intervals (tests/test_report_intervals.py fails)
        return _fmt(row[key])
    return interval_cell(row[key], Interval(**row["intervals"][key]), DIGITS[key])


def _interval_note(n: int, what: str, fid: bool) -> str:
    return (
        f"Each score: value and its 95% interval over the n = {n:,} {what} (`± h` when symmetric, else "
        "`[low, high]`): t interval of the per-image mean for the "
        + (
            "L1, PSNR, SSIM and sharpness, percentile bootstrap over the translations (200 resamples, the "
            "targets held fixed) for the FID, "
            if fid
            else "cycle errors, "
        )
        + "Wilson for the accuracies. One training seed: these are the test-sample noise, not the spread over "
        "training runs; the train CPU seconds are one run (n = 1)."
    )


def report(results: dict) -> str:
    s, m = results["settings"], results["machine"]
    lines = [
        "# Image translation on the embedded MNIST (pix2pix, CycleGAN)",
        "",
        "Written by `scripts/measure_image_translation.py` (issue 19, notebook 13). One seed "
        f"({s['seed']}); training on the embedded MNIST train split"
        f"{'' if s['train_limit'] is None else ' (first ' + str(s['train_limit']) + ')'}, scores on the first "
        f"{s['eval_n']:,} embedded test digits. U-Net/PatchGAN width {s['width']}; steps {s['steps']}, "
        f"batch {s['batch']}. Machine: {m['processor']}, {m['cpu_count']} cores shared with other jobs "
        f"(load average {m['load_average_at_write'][0]:.1f} when written), {m['torch_threads']} torch thread; "
        f"torch {m['torch']}. Times are CPU seconds of this process (wall seconds on the loaded machine are "
        "longer).",
        "",
    ]
    if results.get("pix2pix"):
        keys = [
            ("l1", "L1 (lower)"),
            ("psnr", "PSNR dB"),
            ("ssim", "SSIM"),
            ("sharpness", "sharpness"),
            ("fid_mnist", "MNIST-feature FID (lower)"),
            ("accuracy", "classifier accuracy"),
        ]
        lines += [
            "## pix2pix: 7x7 -> 28x28 super-resolution",
            "",
            _interval_note(results.get("pix2pix_reference", {}).get("n_test", s["eval_n"]), "test pairs", True),
            "",
            "| variant | " + " | ".join(label for _, label in keys) + " | train CPU s |",
            "|---|" + "---|" * (len(keys) + 1),
        ]
        rows = dict(results["pix2pix"])
        for name, row in list(rows.items()) + list(
            {k: v for k, v in results.get("pix2pix_reference", {}).items() if isinstance(v, dict)}.items()
        ):
            lines.append(
                f"| {name} | "
                + " | ".join(_cell(row, k) for k, _ in keys)
                + f" | {_fmt(row.get('train_cpu_seconds_this_session'))} |"
            )
        first = next(iter(rows.values()))
        lines += [
            "",
            f"Sharpness of the real targets: {_cell(first, 'sharpness_targets')}. L1 is on the [0, 1] pixel "
            "scale; the FID uses the shipped MNIST classifier's features (not comparable with Inception FIDs); "
            "accuracy is the shipped classifier's on the translations. Examples: pix2pix_examples.png (rows: "
            "input, " + ", ".join(results["pix2pix"]) + ", target).",
            "",
        ]
    if results.get("cyclegan"):
        keys = [
            ("cycle_l1_a", "cycle L1, A->B->A"),
            ("cycle_l1_b", "cycle L1, B->A->B"),
            ("accuracy_a_to_b", "accuracy of G(a)"),
            ("accuracy_b_to_a", "accuracy of F(b)"),
        ]
        per_domain = results.get("cyclegan_reference", {}).get("n_test_per_domain", s["eval_n"] // 2)
        lines += [
            "## CycleGAN: thickened digits (A) <-> digits (B), unpaired",
            "",
            _interval_note(per_domain, "test images per domain", False),
            "",
            "| variant | " + " | ".join(label for _, label in keys) + " | train CPU s |",
            "|---|" + "---|" * (len(keys) + 1),
        ]
        for name, row in results["cyclegan"].items():
            lines.append(
                f"| {name} | "
                + " | ".join(_cell(row, k) for k, _ in keys)
                + f" | {_fmt(row.get('train_cpu_seconds_this_session'))} |"
            )
        ref = results.get("cyclegan_reference")
        if ref:
            lines += [
                "",
                f"The classifier on the real test images: {_cell(ref, 'accuracy on real A (thickened)')} on A "
                f"(thickened), {_cell(ref, 'accuracy on real B (digits)')} on B (Wilson 95% intervals), "
                f"{ref['n_test_per_domain']} images per domain. Examples: cyclegan_examples.png (for each variant: "
                "a, G(a), F(G(a))).",
            ]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    fast = fast_mode()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "results" / "image_translation"))
    parser.add_argument("--work", default=str(ROOT / "runs" / "image_translation"), help="run folders (checkpoints)")
    parser.add_argument("--width", type=int, default=8 if fast else 16)
    parser.add_argument("--pix2pix-steps", type=int, default=4 if fast else 300)
    parser.add_argument("--cyclegan-steps", type=int, default=4 if fast else 200)
    parser.add_argument("--limit", type=int, default=256 if fast else None, help="training images (default: all)")
    parser.add_argument("--eval-n", type=int, default=64 if fast else 1000, help="test digits scored")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", choices=("pix2pix", "cyclegan"))
    args = parser.parse_args()
    args.steps = {"pix2pix": args.pix2pix_steps, "cyclegan": args.cyclegan_steps}
    args.batch = {"pix2pix": 8 if fast else 32, "cyclegan": 8 if fast else 16}
    torch.set_num_threads(1)
    out, work = Path(args.out), Path(args.work)
    previous = out / "results.json"
    results = json.loads(previous.read_text()) if previous.is_file() else {}
    if results.get("settings", {}).get("steps") not in (None, args.steps):
        results = {}  # other settings: start the tables again
    scored = [row for task in ("pix2pix", "cyclegan") for row in results.get(task, {}).values()]
    if any("intervals" not in row for row in scored):
        results = {}  # scored before the tables had intervals: score every run again (the checkpoints stay)
    if args.only != "cyclegan":
        measure_pix2pix(args, work, results)
    if args.only != "pix2pix":
        measure_cyclegan(args, work, results)
    print(f"wrote {out / 'report.md'}")


if __name__ == "__main__":
    main()
