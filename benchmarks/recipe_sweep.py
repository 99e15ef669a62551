"""Variants of the main-job recipe, each trained in its own process and scored along the way.

Every variant is the `mnist-main-job` preset plus a few overrides (JSON), trained on the embedded MNIST digits
with one torch thread, and scored every `--every` steps: the fraction of 1,000 fixed samples (seed 123) that the
shipped MNIST classifier assigns to one digit with p >= 0.9 and the rarest digit's share, for the raw generator
and two EMA copies (the recipe's EMA class, updated after every step as the trainer does; its decay warms up
as min(decay, (1 + n) / (10 + n)), so 0.995 and 0.999 only differ after ~1,800 steps). The CPU seconds are those
of the training steps alone (process time: much less sensitive to a shared machine's load than wall time).

    python benchmarks/recipe_sweep.py run NAME '{"optim.lr_g": 1e-3, "optim.lr_d": 1e-3}' --steps 1500 --out DIR
    python benchmarks/recipe_sweep.py report --out DIR      # DIR/*.jsonl -> DIR/report.md + report.json

A run appends one JSON line per scoring to DIR/NAME.jsonl, so several runs can go in parallel; a stopped run
keeps the rows it wrote.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch


def run_variant(
    name: str, overrides: dict, steps: int, every: int, out: Path, samples: int = 1000, seed: int = 123
) -> None:
    from course_lib.latent import sample_latents
    from course_lib.latent.pretrained import classify_digits, generate_uint8
    from course_lib.training import TrainConfig, Trainer
    from course_lib.training.callbacks.ema import ExponentialMovingAverage
    from course_lib.training.presets import MAIN_JOB_PRESET

    torch.set_num_threads(1)
    # The recipe without its EMA callback: the EMA copies below (two decays) replace it.
    config = TrainConfig.from_dict(
        {
            "preset": MAIN_JOB_PRESET,
            **overrides,
            "callbacks.ema.enabled": False,
            "optim.steps": steps,
            "run.device": "cpu",
        }
    )
    trainer = Trainer(config, None, progress=False)
    emas = {d: ExponentialMovingAverage(trainer.generator, d) for d in (0.995, 0.999)}
    z = sample_latents(samples, config.model.latent_dim, seed=seed)

    def score(generator) -> dict:
        labels, confidence = classify_digits(generate_uint8(generator, z))
        histogram = torch.bincount(labels, minlength=10).tolist()
        return {
            "recognised_0.9": round(float((confidence >= 0.9).double().mean()), 4),
            "rarest_digit": min(histogram) / samples,
            "digit_histogram": histogram,
        }

    out.mkdir(parents=True, exist_ok=True)
    cpu = 0.0
    with open(out / f"{name}.jsonl", "a") as log:
        while trainer.step < steps:
            started = time.process_time()
            trainer.train_step()
            trainer.step += 1
            for ema in emas.values():
                ema.update(trainer.generator)
            cpu += time.process_time() - started
            if trainer.step % every == 0:
                row = {
                    "name": name,
                    "overrides": overrides,
                    "step": trainer.step,
                    "train_cpu_s": round(cpu, 1),
                    "load1": round(os.getloadavg()[0], 1),
                    "samples": samples,
                    "raw": score(trainer.generator),
                    **{f"ema{d}": score(e.module) for d, e in emas.items()},
                }
                log.write(json.dumps(row) + "\n")
                log.flush()
                print(json.dumps({k: row[k] for k in ("name", "step", "train_cpu_s")}), flush=True)


def read_rows(out: Path) -> list[dict]:
    rows = []
    for path in sorted(out.glob("*.jsonl")):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not rows:
        raise SystemExit(f"no *.jsonl rows in {out}: run some variants first")
    return rows


SCORED = ("raw", "ema0.995", "ema0.999")  # the generators each row scores


def with_intervals(row: dict) -> dict:
    """The row with Wilson 95% intervals of its shares over its samples: the recognised share, and the rarest
    digit's share (that digit's own share; which digit is rarest is itself chosen from the same samples)."""
    from course_lib.metrics.uncertainty import binomial_interval, interval_record

    n = row["samples"]
    for key in SCORED:
        if key in row:
            row[key]["intervals"] = {
                name: interval_record(binomial_interval(round(row[key][name] * n), n))
                for name in ("recognised_0.9", "rarest_digit")
            }
    return row


def _share(scores: dict, name: str) -> str:
    from course_lib.metrics.uncertainty import Interval, interval_cell

    return interval_cell(scores[name], Interval(**scores["intervals"][name]), 1, 100, "%")


def report_markdown(rows: list[dict], machine: str) -> str:
    names = list(dict.fromkeys(r["name"] for r in rows))
    steps = sorted({r["step"] for r in rows})
    lines = [
        "# Main-job recipe variants (issue 18)",
        "",
        "Each variant = the `mnist-main-job` preset plus the overrides shown; embedded MNIST, one torch thread, "
        f"seed 0. Cell: % of {rows[0]['samples']:,} samples the shipped MNIST classifier recognises with "
        "p >= 0.9 (EMA 0.995 generator), and (rarest digit's share), each with its Wilson 95% interval over the "
        f"n = {rows[0]['samples']:,} samples (`± h`, or `[low, high]` when lopsided); one training run per variant "
        "(n = 1 run: the spread over training seeds is not in these intervals). CPU seconds of the training steps "
        "at the last row (one run). Machine: " + machine + ".",
        "",
        "| variant | overrides | " + " | ".join(f"step {s}" for s in steps) + " | CPU s / 250 steps |",
        "|---|---|" + "---|" * (len(steps) + 1),
    ]
    for name in names:
        mine = {r["step"]: r for r in rows if r["name"] == name}
        cells = [
            f"{_share(mine[s]['ema0.995'], 'recognised_0.9')} ({_share(mine[s]['ema0.995'], 'rarest_digit')})"
            if s in mine
            else ""
            for s in steps
        ]
        last = mine[max(mine)]
        per = last["train_cpu_s"] / last["step"] * 250
        lines.append(f"| {name} | `{json.dumps(last['overrides'])}` | " + " | ".join(cells) + f" | {per:.0f} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["run", "report"])
    parser.add_argument("name", nargs="?")
    parser.add_argument(
        "overrides",
        nargs="?",
        default="{}",
        help='JSON settings on top of the preset, by dotted path (e.g. {"optim.lr_g": 1e-3})',
    )
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--every", type=int, default=250)
    parser.add_argument("--out", type=Path, default=Path("docs/results/main_job/recipe_sweep"))
    parser.add_argument(
        "--machine",
        default=f"{platform.machine()}, {os.cpu_count()} shared CPU cores "
        "(other jobs running; see each row's load1 in report.json)",
    )
    args = parser.parse_args(argv)
    if args.action == "run":
        if not args.name:
            parser.error("run needs a NAME")
        run_variant(args.name, json.loads(args.overrides), args.steps, args.every, args.out)
        return 0
    from course_lib.core.io import write_json_atomic, write_text_atomic

    rows = [with_intervals(row) for row in read_rows(args.out)]
    write_json_atomic(args.out / "report.json", {"machine": args.machine, "rows": rows})
    write_text_atomic(args.out / "report.md", report_markdown(rows, args.machine))
    print((args.out / "report.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
