"""An experiment's report: per-variant means over seeds with their 95% confidence intervals (report.json), the
same as Markdown tables (report.md), and figures (samples.png, metrics.png, losses.png).

Uncertainty: each mean over k seeds comes with the half-width of its 95% Student-t interval (t_{0.975, k-1} s /
sqrt(k)); "± ..." in the tables is that half-width. A variant is compared with the baseline at each budget (the
steps at which every run was evaluated, `eval.budgets`) by Welch's t-interval for the difference of the two means:
"better" or "worse" only when that interval excludes 0, else "no clear difference". Verdicts that change between
budgets are listed: those are the lessons a shorter run would have taught wrongly.

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
from course_lib.metrics.uncertainty import seeds_interval, welch_difference

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


def t_half_width(values: list[float | None], level: float = 0.95) -> float | None:
    """Half-width of the Student-t interval of the mean over seeds (`metrics.uncertainty.seeds_interval`); None
    below two finite values (a single seed, or a diverged run's NaN, has no interval to show)."""
    values = [v for v in values if v is not None and math.isfinite(v)]
    if len(values) < 2:
        return None
    return seeds_interval(values, level).half_width


def _verdict(key: str, variant: list[float], baseline: list[float]) -> str | None:
    """ "better" / "worse" than the baseline when the 95% interval of the difference excludes 0, else "no clear
    difference"; None when either side has fewer than two seeds."""
    found = welch_difference(variant, baseline)
    if found is None:
        return None
    diff, half = found
    if abs(diff) <= half:
        return "no clear difference"
    return "better" if METRICS[key].beats(diff, 0.0) else "worse"


def _clearly_beats(row: dict, baseline: dict | None) -> bool | None:
    """Whether a variant is clearly better than the baseline on IS and on FID (both Welch verdicts "better"), from
    the per-seed values; None for the baseline itself or when a side has fewer than two seeds."""
    if baseline is None or row is baseline:
        return None
    verdicts = [
        _verdict(
            key,
            [s[key] for s in row["per_seed"] if s.get(key) is not None],
            [s[key] for s in baseline["per_seed"] if s.get(key) is not None],
        )
        for key in ("is", "fid")
    ]
    return None if None in verdicts else all(v == "better" for v in verdicts)


def _at_step(run: dict, step: int) -> dict | None:
    return next((e for e in run.get("evals", []) if e.get("step") == step), None)


def budget_comparison(config: ExperimentConfig, results: list[dict], budgets: list[int]) -> list[dict]:
    """Per budget (a step every run was evaluated at): each variant's mean and 95% CI over seeds, its rank by
    FID, and its verdict against the baseline on every report metric."""
    baseline_name = config.variants[0]["name"]
    out = []
    for step in budgets:
        values: dict[str, dict[str, list[float]]] = {}
        for variant in config.variants:
            runs = [r for r in results if r["variant"] == variant["name"]]
            evals = [e for e in (_at_step(r, step) for r in runs) if e is not None]
            if evals:
                values[variant["name"]] = {
                    key: [e[key] for e in evals if e.get(key) is not None] for key in REPORT_METRICS
                }
        rows = []
        for name, by_key in values.items():
            row: dict[str, Any] = {"variant": name, "n_seeds": max(len(v) for v in by_key.values())}
            for key, vals in by_key.items():
                row[key] = float(np.mean(vals)) if vals else None
                row[f"{key}_ci"] = t_half_width(vals)
            if name != baseline_name and baseline_name in values:
                row["verdicts"] = {
                    key: _verdict(key, by_key[key], values[baseline_name][key]) for key in REPORT_METRICS
                }
            rows.append(row)
        ranked = sorted((r for r in rows if r.get("fid") is not None), key=lambda r: METRICS["fid"].sign * -r["fid"])
        for rank, row in enumerate(ranked, 1):
            row["fid_rank"] = rank
        out.append({"step": step, "rows": rows})
    return out


def verdict_changes(budgets: list[dict]) -> list[dict]:
    """The (variant, metric) pairs whose verdict against the baseline is not the same at every budget."""
    changes = []
    names = [row["variant"] for row in budgets[0]["rows"]] if budgets else []
    for name in names:
        for key in REPORT_METRICS:
            seen = []
            for budget in budgets:
                row = next((r for r in budget["rows"] if r["variant"] == name), None)
                verdict = (row or {}).get("verdicts", {}).get(key)
                seen.append({"step": budget["step"], "verdict": verdict})
            if None not in (v["verdict"] for v in seen) and len({v["verdict"] for v in seen}) > 1:
                changes.append({"variant": name, "metric": key, "verdicts": seen})
    return changes


def report_budgets(config: ExperimentConfig, results: list[dict]) -> list[int]:
    """The budgets the report compares at: `eval.budgets` where given, else the final step; only steps every
    finished run was evaluated at."""
    wanted = list(getattr(config.eval, "budgets", None) or [])
    if not wanted:
        return []
    return [step for step in wanted if results and all(_at_step(r, step) is not None for r in results)]


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
        for key in REPORT_METRICS:
            row[f"{key}_ci"] = t_half_width([r["final"].get(key) for r in runs])
        for key in TIMES:
            values = [_callback_seconds(r) if key == "callback_seconds" else r[key] for r in runs]
            row[key], row[f"{key}_spread"] = _mean_std(values)
        row["per_seed"] = [{"seed": r["seed"], **r["final"]} for r in runs]
        row["callbacks"] = [c for r in runs for c in r.get("callbacks", r.get("hooks", []))]
        rows.append(row)
    baseline_name = config.variants[0]["name"]
    baseline = next((row for row in rows if row["variant"] == baseline_name), None)
    for row in rows:
        if row is not baseline:  # both Welch verdicts "better" (the means alone would call noise a win)
            row["beats_baseline_on_is_and_fid"] = _clearly_beats(row, baseline)
    partial = {"partial": True, "missing": list(missing)} if missing else {"partial": False}
    budgets = budget_comparison(config, results, report_budgets(config, results))
    return {
        **partial,
        "uncertainty": "mean over seeds ± half-width of its 95% Student-t interval",
        "budgets": budgets,
        "verdict_changes": verdict_changes(budgets),
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


def _spread_key(report: dict) -> str:
    return "_ci" if "uncertainty" in report else "_spread"  # reports before intervals: the standard deviation


def _spread_words(report: dict) -> str:
    if "uncertainty" in report:
        return "mean over seeds ± half-width of its 95% Student-t interval (n = number of seeds)"
    return "mean ± standard deviation over seeds"


def _budget_lines(report: dict, metrics: list) -> list[str]:
    """## Budgets: a table per budget (mean ± 95% CI, FID rank, verdicts against the baseline), then the verdicts
    that change with the budget."""
    budgets = report.get("budgets") or []
    if not budgets:
        return []
    lines = [
        "",
        "## Budgets",
        "",
        f"Each variant against the baseline (`{report['baseline']}`) at "
        + " and ".join(f"{b['step']:,}" for b in budgets)
        + " generator steps. Verdict per metric: better / worse when the 95% Welch interval of the difference of "
        "the two means excludes 0, else no clear difference (= in the table). Rank: by mean FID, 1 is best.",
    ]
    short = {"better": "better", "worse": "worse", "no clear difference": "=", None: "n/a"}
    for budget in budgets:
        header = [
            "variant",
            "seeds",
            *(m.label for m in metrics),
            "FID rank",
            "verdicts (" + ", ".join(m.label for m in metrics) + ")",
        ]
        lines += ["", f"### {budget['step']:,} steps", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in budget["rows"]:
            verdicts = row.get("verdicts")
            cells = [
                row["variant"],
                str(row["n_seeds"]),
                *(m.format(row.get(m.key), row.get(f"{m.key}_ci")) for m in metrics),
                str(row.get("fid_rank", "n/a")),
                "baseline"
                if verdicts is None and row["variant"] == report["baseline"]
                else ", ".join(short[verdicts.get(m.key)] for m in metrics)
                if verdicts
                else "n/a",
            ]
            lines.append("| " + " | ".join(cells) + " |")
    changes = report.get("verdict_changes") or []
    lines += ["", "### Verdicts that change with the budget", ""]
    if not changes:
        lines.append("None: every variant's verdict on every metric is the same at each budget.")
    for change in changes:
        label = METRICS[change["metric"]].label
        path = " → ".join(f"{v['verdict']} at {v['step']:,}" for v in change["verdicts"])
        lines.append(f"- {change['variant']}, {label}: {path}")
    return lines


def _half(interval: dict | None) -> float | None:
    """Half-width of a stored interval {low, high} (None: none)."""
    return None if not interval else (interval["high"] - interval["low"]) / 2


SHORT_VERDICTS = {"better": "better", "worse": "worse", "no clear difference": "="}


def _mean_ci_cell(row: dict, key: str, digits: int) -> str:
    """`mean ± t half-width`, or `mean (1 seed)` where one seed leaves no interval, or n/a."""
    if row.get(key) is None:
        return "n/a"
    ci = row.get(f"{key}_ci")
    return f"{row[key]:.{digits}f} ± {ci:.{digits}f}" if ci is not None else f"{row[key]:.{digits}f} (1 seed)"


def budget_summary_table(report: dict) -> str:
    """The short table README quotes: FID, recall and the FID verdict of every variant at each budget, one
    column group per budget, from a report's `budgets` (what `summarise` wrote)."""
    budgets = report.get("budgets") or []
    header = ["variant"] + [f"{what} at {b['step']:,}" for b in budgets for what in ("FID", "recall", "FID verdict")]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    names = [row["variant"] for row in budgets[0]["rows"]] if budgets else []
    for name in names:
        cells = [name]
        for budget in budgets:
            row = next((r for r in budget["rows"] if r["variant"] == name), {})
            verdict = (
                SHORT_VERDICTS.get((row["verdicts"] or {}).get("fid"), "n/a") if "verdicts" in row else "(baseline)"
            )
            cells += [_mean_ci_cell(row, "fid", 2), _mean_ci_cell(row, "recall", 3), verdict]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


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
        "clearly beats baseline (IS and FID)",
    ]
    lines += [
        f"Features: **{report['extractor']}**. Reference images: `{report['reference']}`; "
        f"{report['n_samples']} samples per evaluation; seeds {report['seeds']}; {_spread_words(report)}.",
        f"{_better_sentence()} Precision measures quality, recall coverage. "
        f'The first variant, `{report["baseline"]}`, is the baseline; "clearly beats" means better on both IS and FID '
        "with the 95% Welch interval of each difference excluding 0 (n/a: fewer than 2 seeds on a side). "
        '"callback s": time the trainer measured in callbacks (EMA, FID tracking, the diversity controller). '
        "Precision and recall lie in [0, 1]; with few seeds their ± can reach past those bounds, and the interval is "
        "then cut at the bound.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    baseline_row = next((r for r in report["variants"] if r["variant"] == report["baseline"]), None)
    for row in report["variants"]:
        beats = _clearly_beats(row, baseline_row)
        mark = (
            "baseline" if row["variant"] == report["baseline"] else "n/a" if beats is None else "yes" if beats else "no"
        )
        callback_seconds = row.get("callback_seconds", row.get("hook_seconds"))  # hook_seconds: older reports
        cells = [
            row["variant"],
            *(m.format(row[m.key], row[f"{m.key}{_spread_key(report)}"]) for m in metrics),
            f"{row['steps']:.0f}",
            f"{row['train_seconds']:.0f}",
            f"{row['eval_seconds']:.0f}",
            "n/a" if callback_seconds is None else f"{callback_seconds:.0f}",
            mark,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    real = report.get("real_data")
    if real:
        intervals = real.get("intervals", {})
        label = "*real training images*" + (f" (n = {real['n_images']:,}, ± bootstrap)" if intervals else "")
        cells = [label, *(m.format(real.get(m.key), _half(intervals.get(m.key))) for m in metrics), "", "", "", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    lines += _budget_lines(report, metrics)
    per_seed_header = ["variant", "seed", *(m.label for m in metrics)]
    lines += [
        "",
        "## Per seed",
        "",
        f"Each row is one run, scored on {report['n_samples']:,} samples; the intervals over seeds are in the tables "
        "above.",
        "",
        "| " + " | ".join(per_seed_header) + " |",
        "|" + "---|" * len(per_seed_header),
    ]
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
