"""Experiment reports compare variants at several budgets with 95% intervals over seeds (issue 31).

The intervals are checked against scipy's own t-interval and Welch test; the verdicts and the list of verdicts
that change with the budget on hand-made results whose answer is known."""

import numpy as np
import pytest
from scipy import stats

from course_lib.core.errors import ConfigError
from course_lib.experiment.config import load_experiment
from course_lib.experiment.report import (
    budget_comparison,
    budget_summary_table,
    render_markdown,
    summarise,
    t_half_width,
    verdict_changes,
)
from course_lib.metrics.uncertainty import welch_difference


def test_t_half_width_is_scipys_t_interval():
    values = [9.6, 8.94, 8.69]
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert t_half_width(values) == pytest.approx((high - low) / 2, rel=1e-12)
    assert t_half_width([1.0]) is None  # one seed has no interval


def test_welch_difference_is_scipys_welch_interval():
    a, b = [7.41, 7.9, 7.73], [9.6, 8.94, 8.69, 9.1]
    diff, half = welch_difference(a, b)
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert diff == pytest.approx(np.mean(a) - np.mean(b))
    assert diff - half == pytest.approx(ci.low, rel=1e-9)
    assert diff + half == pytest.approx(ci.high, rel=1e-9)


def _config(tmp_path, budgets="[1000, 3000]"):
    path = tmp_path / "study.yaml"
    path.write_text(
        f"""
name: budgets
base: {{optim: {{steps: 3000}}, data: {{dataset: mnist}}}}
seeds: [0, 1, 2]
eval: {{every: 500, n_samples: 100, extractor: pixels, budgets: {budgets}}}
variants:
  - {{name: baseline}}
  - {{name: slow-starter, optim: {{lr_g: 0.0005}}}}
  - {{name: same}}
"""
    )
    return load_experiment(path)


def _run(variant, seed, fid_1000, fid_3000):
    evals = [
        {"step": step, "is": 5.0 + 0.01 * seed, "fid": fid, "kid": fid / 100, "precision": 0.6, "recall": 0.8}
        for step, fid in ((500, fid_1000 + 5), (1000, fid_1000), (3000, fid_3000))
    ]
    return {
        "variant": variant,
        "seed": seed,
        "settings": {},
        "steps": 3000,
        "train_seconds": 1.0,
        "eval_seconds": 1.0,
        "callback_seconds": 0.0,
        "callbacks": [],
        "final": evals[-1],
        "evals": evals,
    }


def test_a_verdict_that_flips_with_the_budget_is_listed(tmp_path):
    config = _config(tmp_path)
    jitter = [0.0, 0.1, -0.1]
    results = [_run("baseline", s, 10 + jitter[s], 9 + jitter[s]) for s in range(3)]
    results += [_run("slow-starter", s, 14 + jitter[s], 7 + jitter[s]) for s in range(3)]  # worse early, better late
    results += [_run("same", s, 10 - jitter[s], 9 - jitter[s]) for s in range(3)]
    budgets = budget_comparison(config, results, [1000, 3000])
    by = {b["step"]: {r["variant"]: r for r in b["rows"]} for b in budgets}
    assert by[1000]["slow-starter"]["verdicts"]["fid"] == "worse"
    assert by[3000]["slow-starter"]["verdicts"]["fid"] == "better"
    assert by[3000]["same"]["verdicts"]["fid"] == "no clear difference"
    assert by[3000]["slow-starter"]["fid_rank"] == 1 and by[1000]["slow-starter"]["fid_rank"] == 3
    assert by[1000]["baseline"]["fid_ci"] == pytest.approx(t_half_width([10.0, 10.1, 9.9]))
    changes = verdict_changes(budgets)
    assert {(c["variant"], c["metric"]) for c in changes} == {("slow-starter", "fid"), ("slow-starter", "kid")}

    report = summarise(config, results, "pixels", "mnist:test")
    assert [b["step"] for b in report["budgets"]] == [1000, 3000]
    text = render_markdown(report)
    assert "### 1,000 steps" in text and "- slow-starter, FID: worse at 1,000 → better at 3,000" in text
    assert "95% Student-t interval" in text


def test_budgets_must_be_evaluated_steps(tmp_path):
    with pytest.raises(ConfigError, match="not evaluated steps"):
        _config(tmp_path, budgets="[1000, 1200]")
    with pytest.raises(ConfigError, match="positive step counts"):
        _config(tmp_path, budgets="[0]")


def test_readme_study_table_is_the_shipped_report():
    """README's table of the improvements study is the shipped report.json, cell for cell."""
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    report = json.loads((root / "docs/results/mnist_improvements_study/report.json").read_text())
    readme = (root / "README.md").read_text()
    section = readme[readme.index("### Improving DCGAN on MNIST (`configs/mnist_improvements_study.yaml`") :]
    table = budget_summary_table(report)
    assert table in section.split("### The diversity controller")[0]
    assert [r["variant"] for r in report["budgets"][0]["rows"]] == re.findall(r"^\| ([a-z0-9-]+) \|", table, re.M)[1:]
    finished = sum(len(v["seeds"]) for v in report["variants"])
    assert f"{finished} of the {finished + len(report.get('missing', []))} runs" in section


def test_budget_summary_table_cells_and_a_variant_with_one_seed():
    report = {
        "budgets": [
            {
                "step": 1000,
                "rows": [
                    {"variant": "baseline", "fid": 10.8, "fid_ci": 0.86, "recall": 0.8, "recall_ci": 0.081},
                    {
                        "variant": "wgan-gp",
                        "fid": 20.0,
                        "fid_ci": None,
                        "recall": 0.5,
                        "recall_ci": None,
                        "verdicts": {"fid": None},
                    },
                    {
                        "variant": "r1",
                        "fid": 7.5,
                        "fid_ci": 0.5,
                        "recall": None,
                        "recall_ci": None,
                        "verdicts": {"fid": "better"},
                    },
                ],
            }
        ]
    }
    lines = budget_summary_table(report).splitlines()
    assert lines[0] == "| variant | FID at 1,000 | recall at 1,000 | FID verdict at 1,000 |"
    assert lines[2] == "| baseline | 10.80 ± 0.86 | 0.800 ± 0.081 | (baseline) |"
    assert lines[3] == "| wgan-gp | 20.00 (1 seed) | 0.500 (1 seed) | n/a |"
    assert lines[4] == "| r1 | 7.50 ± 0.50 | n/a | better |"
