"""Give an experiment report written before intervals (mean ± standard deviation over seeds) its 95% intervals,
without retraining: the Student-t half-width over seeds of every metric, from the per-seed values report.json
stores, then report.md re-rendered by the current renderer (course_lib.experiment.report.render_markdown).

    python scripts/rerender_experiment_intervals.py docs/results/mnist_improvements docs/results/mnist_diversity

What changes in report.json: each variant gets `<metric>_ci` (the half-width, None below two seeds), the report
gets `uncertainty` (which makes the renderer print the intervals instead of the standard deviations), `budgets`
(the renderer's comparison with the baseline by Welch's interval, at the last step: the only one every run was
evaluated at that the report stores) and
`intervals_added` (when, from what, and what a t interval over so few seeds means); the description gets one
sentence saying the same, because the renderer prints the description and has no other place for it. Every
other key (per_seed, train_seconds, eval_seconds, the standard deviations `<key>_spread`) is kept as it was.
Running it again changes nothing.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import math
import sys
from pathlib import Path
from types import SimpleNamespace

from scipy import stats

from course_lib.core.reports import rendered, write_report
from course_lib.experiment.report import (
    REPORT_METRICS,
    budget_comparison,
    render_markdown,
    t_half_width,
    verdict_changes,
)

# What summarise() writes for reports made with intervals (course_lib.experiment.report); the renderer keys on it.
UNCERTAINTY = "mean over seeds ± half-width of its 95% Student-t interval"
NOTE_MARK = "Intervals added"


def t_factor_text(n_seeds: int) -> str:
    """How wide a 95% t interval over n seeds is, in standard deviations: t_{0.975, n-1} / sqrt(n)."""
    t = float(stats.t.ppf(0.975, n_seeds - 1))
    return f"t = {t:.2f} for {n_seeds} seeds, so each ± is {t / math.sqrt(n_seeds):.2f} standard deviations"


def final_step_comparison(report: dict) -> list[dict]:
    """The renderer's budget table at the one step these reports evaluated every run at (the last): each variant's
    mean and 95% interval, its FID rank and its verdict against the baseline by Welch's interval
    (course_lib.experiment.report.budget_comparison, fed the per-seed values as each run's only evaluation)."""
    steps = {row["steps"] for row in report["variants"]}
    if len(steps) != 1:
        return []  # runs of different lengths: no common step to compare at
    step = int(steps.pop())
    variants = [{"name": row["variant"]} for row in report["variants"]]
    if variants[0]["name"] != report["baseline"]:
        return []
    results = [
        {"variant": row["variant"], "seed": seed["seed"], "evals": [{**seed, "step": step}]}
        for row in report["variants"]
        for seed in row["per_seed"]
    ]
    return budget_comparison(SimpleNamespace(variants=variants), results, [step])


def with_intervals(report: dict, today: str) -> dict:
    """The report with t half-widths over seeds from its per-seed values (idempotent)."""
    n_seeds = sorted({len(row["per_seed"]) for row in report["variants"]})
    for row in report["variants"]:
        for key in REPORT_METRICS:
            row[f"{key}_ci"] = t_half_width([seed.get(key) for seed in row["per_seed"]])
    report["uncertainty"] = UNCERTAINTY
    if not report.get("budgets"):
        report["budgets"] = final_step_comparison(report)
        report["verdict_changes"] = verdict_changes(report["budgets"])
    today = report.get("intervals_added", {}).get("date", today)  # a second run keeps the first run's date
    widths = "; ".join(t_factor_text(n) for n in n_seeds if n >= 2)
    note = (
        f"{NOTE_MARK} on {today} from the per-seed values (no retraining): {widths}. "
        "With this few seeds the intervals are wide; that is the honest uncertainty of the study, and a "
        "difference inside them is not evidence. Only the last step's values are stored, so the Budgets table "
        "compares at that one step (its list of verdicts that change with the budget is empty by construction)."
    )
    report["intervals_added"] = {"date": today, "from": "per_seed", "retrained": False, "note": note}
    original = report["description"].split(f" {NOTE_MARK} on ")[0].split(f"{NOTE_MARK} on ")[0]
    report["description"] = f"{original} {note}".strip()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path, help="report folders (each with report.json)")
    parser.add_argument("--check", action="store_true", help="only say whether each report.md is up to date")
    args = parser.parse_args(argv)
    today = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")

    stale = 0
    for folder in args.folders:
        path = folder / "report.json"
        if not path.is_file():
            print(f"error: {path} not found (give a folder that holds an experiment's report.json)", file=sys.stderr)
            return 2
        report = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(report.get("variants"), list) or not all("per_seed" in r for r in report["variants"]):
            print(f"error: {path} is not an experiment report (no variants with per_seed)", file=sys.stderr)
            return 2
        if args.check:
            markdown = folder / "report.md"
            up_to_date = (
                "intervals_added" in report
                and markdown.is_file()
                and markdown.read_text(encoding="utf-8")
                == rendered(folder, functools.partial(render_markdown, out=folder))
            )
            print(f"{folder}: {'up to date' if up_to_date else 'needs intervals'}")
            stale += not up_to_date
            continue
        write_report(folder, with_intervals(report, today), functools.partial(render_markdown, out=folder))
        print(f"wrote {folder}/report.json and report.md")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
