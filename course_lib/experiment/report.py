"""An experiment's report: per-variant means and spreads over seeds (report.json), the same as
Markdown tables (report.md), and figures (samples.png, metrics.png, losses.png).

Every metric column, plot panel and "better" note comes from one description of the metrics
(`course_lib.metrics.table.METRICS`), in the order of `REPORT_METRICS` below. Reports written before
callbacks replaced hooks (with `hook_seconds` and `hooks`) are still read and rendered.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from course_lib.core.io import save_figure_atomic
from course_lib.experiment.config import ExperimentConfig
from course_lib.metrics.table import METRICS

# What an experiment evaluates and reports, in the order of its table columns and plot panels.
REPORT_METRICS = ("is", "fid", "kid", "precision", "recall")
TIMES = ("steps", "train_seconds", "eval_seconds", "callback_seconds")
SPREAD_KEYS = ("is_std",)  # reported per run beside the metrics (IS spread over its splits)


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    # One seed has no spread to show: None, not 0 (a table would print "± 0.00" and look certain).
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else None


def _callback_seconds(result: dict) -> float:
    return result.get("callback_seconds", result.get("hook_seconds", 0.0))  # hook_seconds: older results


def summarise(
    config: ExperimentConfig,
    results: list[dict],
    extractor_label: str,
    reference: str,
    real: dict | None = None,
    missing: list[dict] | None = None,
) -> dict:
    """Per-variant means and spreads over seeds, with the comparison against the first variant (the baseline).

    `missing` ({variant, seed} of runs not finished) makes it a partial report: `partial` true, the missing runs
    listed, and rows only for the variants with a finished run (no comparison while the baseline has none)."""
    rows = []
    for variant in config.variants:
        runs = [r for r in results if r["variant"] == variant["name"]]
        if not runs and missing:
            continue
        row: dict[str, Any] = {
            "variant": variant["name"],
            "seeds": [r["seed"] for r in runs],
            "settings": {k: v for k, v in variant.items() if k != "name"},
        }
        for key in (*REPORT_METRICS, *SPREAD_KEYS):
            row[key], row[f"{key}_spread"] = _mean_std([r["final"].get(key) for r in runs])
        for key in TIMES:
            values = [_callback_seconds(r) if key == "callback_seconds" else r[key] for r in runs]
            row[key], row[f"{key}_spread"] = _mean_std(values)
        row["per_seed"] = [{"seed": r["seed"], **r["final"]} for r in runs]
        row["callbacks"] = [c for r in runs for c in r.get("callbacks", r.get("hooks", []))]
        rows.append(row)
    baseline_name = config.variants[0]["name"]
    baseline = next((row for row in rows if row["variant"] == baseline_name), None)
    is_better, fid_better = METRICS["is"].beats, METRICS["fid"].beats
    for row in rows:
        if row is baseline:
            continue
        beats = (is_better(row["is"], baseline["is"]), fid_better(row["fid"], baseline["fid"])) if baseline else (None,)
        row["beats_baseline_on_is_and_fid"] = None if None in beats else all(beats)
    partial = {"partial": True, "missing": list(missing)} if missing else {"partial": False}
    return {
        **partial,
        "name": config.name,
        "description": config.description,
        "extractor": extractor_label,
        "reference": reference,
        "n_samples": config.eval.n_samples,
        "seeds": config.seeds,
        "base": config.base,
        "baseline": baseline_name,
        "variants": rows,
        "real_data": real,
    }


def _better_sentence() -> str:
    groups: dict[str, list[str]] = {}
    for key in REPORT_METRICS:
        groups.setdefault(METRICS[key].better, []).append(METRICS[key].label)
    return "; ".join(f"{', '.join(labels)}: {better} is better" for better, labels in groups.items()) + "."


def render_markdown(report: dict, out: Path | None = None) -> str:
    """report.md: the summary table (every variant, and the real images), per-seed numbers, settings, figures."""
    metrics = [METRICS[key] for key in REPORT_METRICS]
    lines = [f"# Experiment: {report['name']}", ""]
    if report.get("partial"):
        missing = report["missing"]
        runs = sum(len(row["per_seed"]) for row in report["variants"])
        lines += [
            f"**Partial report: {runs} of {runs + len(missing)} runs finished.** Missing: "
            + ", ".join(f"{m['variant']} seed {m['seed']}" for m in missing)
            + ". Means are over the seeds that finished; the real-image row comes with the full report, which "
            "replaces this one when the same command has finished every run.",
            "",
        ]
    if report["description"]:
        lines += [report["description"], ""]
    header = [
        "variant",
        *(m.label for m in metrics),
        "steps",
        "train s",
        "eval s",
        "callback s",
        "beats baseline (IS and FID)",
    ]
    lines += [
        f"Features: **{report['extractor']}**. Reference images: `{report['reference']}`; "
        f"{report['n_samples']} samples per evaluation; seeds {report['seeds']}; mean ± standard deviation over seeds.",
        f"{_better_sentence()} Precision measures quality, recall coverage. "
        f'The first variant, `{report["baseline"]}`, is the baseline. "callback s": time the trainer measured in '
        "callbacks (EMA, FID tracking, the diversity controller).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for row in report["variants"]:
        beats = row.get("beats_baseline_on_is_and_fid")
        mark = (
            "baseline" if row["variant"] == report["baseline"] else "n/a" if beats is None else "yes" if beats else "no"
        )
        callback_seconds = row.get("callback_seconds", row.get("hook_seconds"))  # hook_seconds: older reports
        cells = [
            row["variant"],
            *(m.format(row[m.key], row[f"{m.key}_spread"]) for m in metrics),
            f"{row['steps']:.0f}",
            f"{row['train_seconds']:.0f}",
            f"{row['eval_seconds']:.0f}",
            "n/a" if callback_seconds is None else f"{callback_seconds:.0f}",
            mark,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    real = report.get("real_data")
    if real:
        cells = ["*real training images*", *(m.format(real.get(m.key)) for m in metrics), "", "", "", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    per_seed_header = ["variant", "seed", *(m.label for m in metrics)]
    lines += ["", "## Per seed", "", "| " + " | ".join(per_seed_header) + " |", "|" + "---|" * len(per_seed_header)]
    for row in report["variants"]:
        for r in row["per_seed"]:
            cells = [row["variant"], str(r["seed"]), *(m.format(r.get(m.key)) for m in metrics)]
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Settings", ""]
    lines += [f"- base: `{json.dumps(report['base'])}`"]
    lines += [f"- {row['variant']}: `{json.dumps(row['settings'])}`" for row in report["variants"]]
    if out is not None:
        lines += [
            "",
            "## Figures",
            "",
            "Samples (first seed, fixed noise, EMA generator where kept):",
            "",
            "![samples](samples.png)",
            "",
            "Metrics during training (mean over seeds):",
            "",
            "![metrics](metrics.png)",
            "",
            "Losses (first seed):",
            "",
            "![losses](losses.png)",
            "",
        ]
    return "\n".join(lines) + "\n"


def _save(fig, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=90)
    plt.close(fig)


def write_figures(out: Path, config: ExperimentConfig, results: list[dict]) -> None:
    """samples.png (a grid per variant), metrics.png (each report metric against steps), losses.png."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from PIL import Image

    names = [v["name"] for v in config.variants]
    first_seed = config.seeds[0]
    cols = min(4, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        grid = out / "runs" / name / f"seed{first_seed}" / "samples.png"
        if grid.is_file():
            ax.imshow(np.asarray(Image.open(grid)), cmap="gray")
        ax.set_title(name, fontsize=10)
    for ax in axes.flat:
        ax.axis("off")
    _save(fig, out / "samples.png")

    metrics = [METRICS[key] for key in REPORT_METRICS]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.4))
    for name in names:
        runs = [r for r in results if r["variant"] == name]
        if not runs:  # a partial report: this variant has no finished run yet
            continue
        steps = [e["step"] for e in runs[0]["evals"]]
        for ax, m in zip(axes, metrics):
            values = [[e.get(m.key) for e in r["evals"]] for r in runs]
            if any(v is None for vs in values for v in vs):
                continue
            ax.plot(steps, np.mean(values, axis=0) * m.scale, marker="o", label=name)
    for ax, m in zip(axes, metrics):
        ax.set_title(f"{m.label} ({m.better} is better)")
        ax.set_xlabel("step")
    axes[0].legend(fontsize=8)
    _save(fig, out / "metrics.png")

    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4))
    for name in names:
        log = out / "runs" / name / f"seed{first_seed}" / "log.jsonl"
        if not log.is_file():
            continue
        history = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
        steps = [h["step"] for h in history]
        axes[0].plot(steps, [h["loss_d"] for h in history], label=name, lw=1)
        axes[1].plot(steps, [h["loss_g"] for h in history], label=name, lw=1)
    axes[0].set_title("discriminator / critic loss")
    axes[1].set_title("generator loss")
    for ax in axes:
        ax.set_xlabel("step")
    axes[0].legend(fontsize=8)
    _save(fig, out / "losses.png")
