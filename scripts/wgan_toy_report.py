"""The mode-coverage report of notebook 04: GAN, GAN with 5 D steps, WGAN-clip and WGAN-GP on the ring and grid.

    python scripts/wgan_toy_report.py [--seeds 0 1 2 3 4] [--out docs/results/wgan_toy_coverage]

Trains every (mixture, method, seed) with notebook 04's settings (`toy.default_config`, 800 generator steps),
measures the modes covered and the high-quality fraction of 2500 samples (`toy.compare_methods`), and writes
report.json (every per-seed value, the settings, the machine) and report.md. Finished runs are kept in
OUT/partial.json, so an interrupted run resumes where it stopped; the report is rewritten after every run,
with the (mixture, method) pairs whose seeds are all done.
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
    args = parser.parse_args()
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
    }
    write_report(args.out, report, render_markdown)


def render_markdown(report: dict) -> str:
    """report.md, from report.json alone (course_lib.core.reports)."""
    seeds, rows, missing = report["seeds"], report["rows"], report["not_run"]
    batch = next(iter(report["settings"].values()))["batch_size"]
    lines = [
        "# Mode coverage of the 2-D toy GANs (notebook 04)",
        "",
        f"`python scripts/wgan_toy_report.py` with notebook 04's settings: {report['steps']} generator steps, "
        f"batch {batch}, {len(seeds)} seeds ({', '.join(map(str, seeds))}), {report['samples_per_model']} samples "
        "per trained model; mean ± standard deviation over seeds, then every seed.",
        f"Machine: {report['machine']['platform']}, {report['machine']['cpu_count']} CPU cores shared with other "
        f"jobs, {report['machine']['torch_threads']} torch thread.",
        "",
        "| data | method | modes covered | per seed | high-quality samples | per seed |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['mixture']} | {r['method']} | {r['modes_mean']:.1f} ± {r['modes_std']:.1f} of {r['n_modes']} "
            f"| {', '.join(map(str, r['modes_per_seed']))} | {100 * r['high_quality_mean']:.1f} ± "
            f"{100 * r['high_quality_std']:.1f} % | {', '.join(f'{100 * h:.0f}' for h in r['high_quality_per_seed'])} |"
        )
    if missing:
        lines += ["", f"Not run (the machine's time ran out before them): {', '.join(missing)}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
