"""Seconds a training step takes on the CPU for every preset, sized as `course-lib train --preset NAME` sizes it.

    nice -n 19 python benchmarks/preset_step_time.py                      # prints JSON
    nice -n 19 python benchmarks/preset_step_time.py --report docs/results/preset_step_times

Each preset is set up as `course-lib train --preset NAME --out DIR` on the embedded MNIST digits sets it up:
`TrainConfig.from_dict({"preset": [NAME]})`, i.e. the preset's own settings and the library defaults for every
field it leaves alone (DCGAN width 64, batch 128, 1,000 steps, unless the preset says otherwise; `mnist-main-job`,
the recipe `course-lib train` applies without --preset, is width 32 and batch 64), on the CPU, one after the
other in this one process with `--threads` torch threads (default 1). A step is what `Trainer.train` does per
generator update: the discriminator step(s) (5 for the WGANs), the generator step and the callbacks the preset
turns on (the EMA update, ...); a callback added after those stamps the time. The first `--warmup` steps are not
counted (allocator and first-call costs), then `--steps` steps are: their median wall seconds, and their median
CPU seconds of this process (user + system of all its threads), are reported, with the minutes the preset's own
number of steps would take at that rate. `progressive` is timed in its first stage (7x7 images); its later
stages (14x14, 28x28) cost more.

On a machine shared with other jobs the wall time of a step includes waiting for a core; the CPU seconds do not,
and with one thread they are about what the step takes on an idle core of this machine. The 1-minute load average
is recorded before and after every preset. The last printed line is JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from course_lib.core.reports import write_report
from course_lib.training import TrainConfig, Trainer
from course_lib.training.presets import MAIN_JOB_PRESET, PRESETS

REPO = Path(__file__).resolve().parent.parent


def field(config, name: str):
    """A setting of a TrainConfig, whether it keeps its fields flat or in sections (config.optim.batch_size)."""
    if hasattr(config, name):
        return getattr(config, name)
    for value in vars(config).values():
        if dataclasses.is_dataclass(value) and hasattr(value, name):
            return getattr(value, name)
    raise AttributeError(name)


def _has(config, name: str) -> bool:
    try:
        field(config, name)
    except AttributeError:
        return False
    return True


def set_field(config, name: str, value) -> None:
    if hasattr(config, name):
        setattr(config, name, value)
        return
    for section in vars(config).values():
        if dataclasses.is_dataclass(section) and hasattr(section, name):
            setattr(section, name, value)
            return
    raise AttributeError(name)


class StepStamps:
    """A callback f(trainer, metrics) run after every step, after the preset's own callbacks: the clocks then."""

    def __init__(self):
        self.wall = [time.perf_counter()]
        self.cpu = [time.process_time()]

    def __call__(self, trainer, metrics) -> None:
        self.wall.append(time.perf_counter())
        self.cpu.append(time.process_time())

    def per_step(self, warmup: int) -> tuple[list[float], list[float]]:
        def diffs(stamps):
            return [b - a for a, b in zip(stamps, stamps[1:])][warmup:]

        return diffs(self.wall), diffs(self.cpu)


def time_preset(name: str, warmup: int, steps: int) -> dict:
    config = TrainConfig.from_dict({"preset": [name]})
    set_field(config, "device", "cpu")
    stamps = StepStamps()
    trainer = Trainer(config, out_dir=None, callbacks=[stamps], progress=False)
    load_before = os.getloadavg()[0]
    stamps.wall, stamps.cpu = [time.perf_counter()], [time.process_time()]
    trainer.train(steps=warmup + steps)
    load_after = os.getloadavg()[0]
    wall, cpu = stamps.per_step(warmup)
    run_steps = field(config, "steps")
    cpu_median = statistics.median(cpu)
    description = PRESETS[name].get("description", "") if isinstance(PRESETS[name], dict) else ""
    return {
        "preset": name,
        "description": description,
        "settings": {k: v for k, v in PRESETS[name].items() if k != "description"},
        "arch": field(config, "arch"),
        "task": field(config, "task") if _has(config, "task") else "generation",
        "width": field(config, "width"),
        "batch_size": field(config, "batch_size"),
        "d_steps": field(config, "d_steps"),
        "image_size": getattr(trainer.generator, "resolution", trainer.image_size),  # progressive: its stage's
        "steps": run_steps,
        "n_timed": len(wall),
        "warmup": warmup,
        "seconds_per_step": statistics.median(wall),
        "seconds_per_step_min_max": [min(wall), max(wall)],
        "cpu_seconds_per_step": cpu_median,
        "cpu_seconds_per_step_min_max": [min(cpu), max(cpu)],
        "minutes_for_its_steps_at_cpu_rate": cpu_median * run_steps / 60,
        "load_1min_before_after": [load_before, load_after],
    }


def machine() -> dict:
    model = ""
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        model = platform.processor()
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def _median_range(median: float, low_high: list[float]) -> str:
    return f"{median:.2f} ({low_high[0]:.2f}-{low_high[1]:.2f})"


def readme_table(report: dict) -> str:
    """README's short table of the same report (tests/test_cli_papercuts.py checks README's cells against the report)."""
    lines = [
        "| preset | width / batch | D steps | CPU s a step: median (min-max), n = "
        f"{report['n_timed']} steps | minutes for 1,000 steps |",
        "|---|---|---|---|---|",
    ]
    for r in report["presets"]:
        minutes = r["cpu_seconds_per_step"] * 1000 / 60
        lines.append(
            f"| `{r['preset']}` | {r['width']} / {r['batch_size']} | {r['d_steps']} | "
            f"{_median_range(r['cpu_seconds_per_step'], r['cpu_seconds_per_step_min_max'])} | {minutes:.0f} |"
        )
    return "\n".join(lines) + "\n"


def render_markdown(report: dict) -> str:
    rows = report["presets"]
    lines = [
        "# Seconds a training step takes on the CPU, per preset",
        "",
        f"Measured by `benchmarks/preset_step_time.py` on {report['date']}: every preset set up as `course-lib train "
        "--preset NAME` sets it up on the embedded MNIST digits (the preset's settings, the library defaults for the "
        "rest: DCGAN width 64 and batch 128 unless the preset says otherwise), on the CPU with "
        f"{report['threads']} torch thread(s), in one process, one preset after the other. A step is one generator "
        "update with its discriminator step(s) and the preset's callbacks. "
        f"{report['warmup']} warm-up steps, then {report['n_timed']} timed steps per preset: the median is given "
        "(wall seconds, and CPU seconds of the process). Minutes: the preset's own number of steps at the CPU rate.",
        "",
        (
            "**Measured on a shared machine**, with other jobs running"
            if report["shared_machine"]
            else "Measured on a machine without other jobs"
        )
        + f" ({report['machine']['cores']} cores, {report['machine']['cpu']}), at niceness {report['niceness']}. "
        f"The 1-minute load average was "
        f"{report['load_1min_before']:.1f} before and {report['load_1min_after']:.1f} after (per preset below). Where "
        "the load is above the number of cores the wall time includes waiting for a core; the CPU seconds do not, and "
        "with one thread they are about what a step takes on an idle core of this machine. A laptop with more "
        "threads for torch is faster per step; the ratios between presets are the more portable figure.",
        "",
        f"Sample size: each figure is the median of n = {report['n_timed']} timed steps of one run of the preset "
        "(n (steps) below), with the minimum and maximum of those steps in parentheses; the minutes column is that "
        "median times the preset's steps, so it carries the same spread.",
        "",
        "| preset | arch | width | batch | D steps per G step | image | n (steps) | CPU s / step: median (min-max) "
        "| wall s / step: median (min-max) | steps | minutes for its steps (CPU) | load before / after |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['preset']} | {r['arch']} | {r['width']} | {r['batch_size']} | {r['d_steps']} | "
            f"{r['image_size']}x{r['image_size']} | {r['n_timed']} "
            f"| {_median_range(r['cpu_seconds_per_step'], r['cpu_seconds_per_step_min_max'])} "
            f"| {_median_range(r['seconds_per_step'], r['seconds_per_step_min_max'])} | "
            f"{r['steps']:,} | {r['minutes_for_its_steps_at_cpu_rate']:.0f} | "
            f"{r['load_1min_before_after'][0]:.1f} / {r['load_1min_before_after'][1]:.1f} |"
        )
    lines += [
        "",
        "`progressive` is timed in its first stage (7x7 images); its 14x14 and 28x28 stages cost more per step.",
        f"Machine: {report['machine']['platform']}, Python {report['machine']['python']}, "
        f"torch {report['machine']['torch']}.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--warmup", type=int, default=2, help="steps run before timing (default 2)")
    parser.add_argument("--steps", type=int, default=5, help="steps timed per preset (default 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--presets", help="comma-separated presets (default: every preset)")
    parser.add_argument("--report", type=Path, help="folder to write report.md and report.json to")
    parser.add_argument(
        "--shared-machine", action="store_true", help="say in the report that other jobs shared the machine"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.presets.split(",")] if args.presets else list(PRESETS)
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise SystemExit(f"unknown preset(s) {', '.join(unknown)}; presets: {', '.join(PRESETS)}")
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    rows = []
    for name in names:
        row = time_preset(name, args.warmup, args.steps)
        print(
            f"{name}: {row['cpu_seconds_per_step']:.2f} CPU-s, {row['seconds_per_step']:.2f} wall s a step "
            f"(width {row['width']}, batch {row['batch_size']}, load {row['load_1min_before_after'][1]:.1f})",
            file=sys.stderr,
            flush=True,
        )
        rows.append(row)
    report = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "threads": args.threads,
        "warmup": args.warmup,
        "n_timed": args.steps,
        "niceness": os.nice(0),
        "shared_machine": args.shared_machine,
        "load_1min_before": load_before,
        "load_1min_after": os.getloadavg()[0],
        "seconds_total": time.perf_counter() - started,
        "machine": machine(),
        "main_job_preset": MAIN_JOB_PRESET,
        "presets": rows,
    }
    if args.report:
        write_report(args.report, report, render_markdown)
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
