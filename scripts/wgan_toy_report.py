"""The mode-coverage report of notebook 04: GAN, GAN with 5 D steps, WGAN-clip and WGAN-GP on the ring and grid.

    python scripts/wgan_toy_report.py [--seeds 0 1 2 3 4] [--out docs/results/wgan_toy_coverage] [--render-only]

Trains every (mixture, method, seed) with notebook 04's settings (`toy.default_config`, 800 generator steps),
measures the modes covered and the high-quality fraction of 2500 samples (`toy.compare_methods`), and writes
report.json (every per-seed value, the settings, the machine) and report.md. Finished runs are kept in
OUT/partial.json, so an interrupted run resumes where it stopped; the report is rewritten after every run,
with the (mixture, method) pairs whose seeds are all done. Each mean comes with the half-width of its 95% Student-t
interval over seeds; `--render-only` adds those to a report.json written before them and re-renders report.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from course_lib.core.io import write_json_atomic
from course_lib.core.reports import write_report
from course_lib.course import toy
from course_lib.metrics.uncertainty import seeds_interval

METHODS = {
    "gan": dict(method="gan"),
    "gan, 5 D steps": dict(method="gan", critic_steps=5),
    "wgan-clip": dict(method="wgan-clip"),
    "wgan-gp": dict(method="wgan-gp"),
}
MIXTURES = ["ring", "grid"]


def machine() -> dict:
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "load_average_at_end": [round(x, 2) for x in load] if load else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--samples", type=int, default=2500)
    parser.add_argument("--out", type=Path, default=Path("docs/results/wgan_toy_coverage"))
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="add intervals to OUT/report.json from its per-seed values, re-render",
    )
    args = parser.parse_args()
    if args.render_only:
        report = json.loads((args.out / "report.json").read_text(encoding="utf-8"))
        write_report(args.out, add_intervals(report), render_markdown)
        print(f"re-rendered {args.out}/report.md from its report.json (no training)")
        return
    partial_path = args.out / "partial.json"
    done = json.loads(partial_path.read_text()) if partial_path.exists() else {}
    started = time.time()
    for mixture in MIXTURES:
        for label, settings in METHODS.items():
            # the notebook's settings, snapshots included (so a seed here is the same run as there)
            config = toy.default_config(steps=args.steps, snapshot_every=max(args.steps // 4, 1), **settings)
            for seed in args.seeds:
                key = f"{mixture}|{label}|{seed}"
                if key in done:
                    continue
                t0 = time.time()
                row = toy.compare_methods([mixture], {label: config}, [seed], n_samples=args.samples)[0]
                done[key] = {
                    "modes": int(row.modes[0]),
                    "n_modes": int(row.n_modes),
                    "high_quality": float(row.high_quality[0]),
                    "seconds": round(time.time() - t0, 1),
                }
                write_json_atomic(partial_path, done)
                print(f"{key}: {done[key]}", flush=True)
                report_runs(args, done, time.time() - started)
    report_runs(args, done, time.time() - started)
    print(f"wrote {args.out}/report.md and report.json in {time.time() - started:.0f} s")


def report_runs(args, done: dict, seconds: float) -> None:
    rows, missing = [], []
    for mixture in MIXTURES:
        for label in METHODS:
            if not all(f"{mixture}|{label}|{s}" in done for s in args.seeds):
                missing.append(f"{mixture} / {label}")
                continue
            runs = [done[f"{mixture}|{label}|{s}"] for s in args.seeds]
            modes, hq = [r["modes"] for r in runs], [r["high_quality"] for r in runs]
            rows.append(
                {
                    "mixture": mixture,
                    "method": label,
                    "n_modes": runs[0]["n_modes"],
                    "seeds": args.seeds,
                    "modes_per_seed": modes,
                    "high_quality_per_seed": hq,
                    "modes_mean": float(np.mean(modes)),
                    "modes_std": float(np.std(modes, ddof=1)) if len(modes) > 1 else 0.0,
                    "high_quality_mean": float(np.mean(hq)),
                    "high_quality_std": float(np.std(hq, ddof=1)) if len(hq) > 1 else 0.0,
                    **seed_intervals(modes, hq),
                    "train_seconds_per_seed": [r["seconds"] for r in runs],
                }
            )
    report = {
        "name": "wgan-toy-coverage",
        "steps": args.steps,
        "samples_per_model": args.samples,
        "seeds": args.seeds,
        "settings": {
            label: {
                k: v
                for k, v in vars(toy.default_config(steps=args.steps, **s)).items()
                if isinstance(v, (int, float, str, bool, type(None)))
            }
            for label, s in METHODS.items()
        },
        "rows": rows,
        "not_run": missing,
        "machine": machine(),
        "wall_seconds": round(seconds),
        "note": "wall times measured on a shared, loaded machine (other jobs running); one torch thread",
        "uncertainty": "mean over seeds ± half-width of its 95% Student-t interval (n = seeds)",
    }
    write_report(args.out, report, render_markdown)


def seed_intervals(modes: list[int], high_quality: list[float]) -> dict:
    """Half-widths of the 95% Student-t intervals over seeds (None below two seeds: one run has no interval)."""
    if len(modes) < 2:
        return {"n_seeds": len(modes), "modes_ci95": None, "high_quality_ci95": None}
    return {
        "n_seeds": len(modes),
        "modes_ci95": seeds_interval(modes).half_width,
        "high_quality_ci95": seeds_interval(high_quality).half_width,
    }


def add_intervals(report: dict) -> dict:
    """A report written before the intervals gets them from its per-seed values (no training; idempotent)."""
    for row in report["rows"]:
        row.update(seed_intervals(row["modes_per_seed"], row["high_quality_per_seed"]))
    report["uncertainty"] = "mean over seeds ± half-width of its 95% Student-t interval (n = seeds)"
    return report


def _interval(mean: float, half: float | None, scale: float = 1.0) -> str:
    return f"{scale * mean:.1f}" if half is None else f"{scale * mean:.1f} ± {scale * half:.1f}"


def _width_words(n_seeds: int) -> str:
    if n_seeds < 2:
        return ""
    from scipy import stats  # imported here: only the renderer needs it, and scipy is heavy

    factor = float(stats.t.ppf(0.975, n_seeds - 1)) / n_seeds**0.5
    return f"; with {n_seeds} seeds that is {factor:.2f} standard deviations, so it is wide"


def render_markdown(report: dict) -> str:
    """report.md, from report.json alone (course_lib.core.reports)."""
    seeds, rows, missing = report["seeds"], report["rows"], report["not_run"]
    batch = next(iter(report["settings"].values()))["batch_size"]
    lines = [
        "# Mode coverage of the 2-D toy GANs (notebook 04)",
        "",
        f"`python scripts/wgan_toy_report.py` with notebook 04's settings: {report['steps']} generator steps, "
        f"batch {batch}, {len(seeds)} seeds ({', '.join(map(str, seeds))}), {report['samples_per_model']} samples "
        "per trained model. Each cell: the mean over the n seeds ± the half-width of its 95% Student-t interval "
        f"(t_(0.975, n-1) s / sqrt(n){_width_words(len(seeds))}), then every seed.",
        f"Machine: {report['machine']['platform']}, {report['machine']['cpu_count']} CPU cores shared with other "
        f"jobs, {report['machine']['torch_threads']} torch thread.",
        "",
        "| data | method | n (seeds) | modes covered (± 95% CI) | per seed | high-quality samples (± 95% CI) | per seed |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mixture']} | {r['method']} | {r['n_seeds']} | {_interval(r['modes_mean'], r['modes_ci95'])} "
            f"of {r['n_modes']} | {', '.join(map(str, r['modes_per_seed']))} "
            f"| {_interval(r['high_quality_mean'], r['high_quality_ci95'], 100)} % "
            f"| {', '.join(f'{100 * h:.0f}' for h in r['high_quality_per_seed'])} |"
        )
    if missing:
        lines += ["", f"Not run (the machine's time ran out before them): {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
