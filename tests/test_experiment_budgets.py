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
    rows = re.findall(r"^\| ([a-z0-9-]+) \| (.+) \|$", section.split("### The diversity controller")[0], re.M)
    shown = {name: [c.strip() for c in cells.split("|")] for name, cells in rows if name != "variant"}
    early, late = (report["budgets"][i]["rows"] for i in (0, 1))
    short = {"better": "better", "worse": "worse", "no clear difference": "="}
    assert list(shown) == [r["variant"] for r in early]
    for a, b in zip(early, late):
        expected = [
            f"{a['fid']:.2f} ± {a['fid_ci']:.2f}",
            f"{a['recall']:.3f} ± {a['recall_ci']:.3f}",
            short[a["verdicts"]["fid"]] if "verdicts" in a else "(baseline)",
            f"{b['fid']:.2f} ± {b['fid_ci']:.2f}",
            f"{b['recall']:.3f} ± {b['recall_ci']:.3f}",
            short[b["verdicts"]["fid"]] if "verdicts" in b else "(baseline)",
        ]
        assert shown[a["variant"]] == expected, a["variant"]
    finished = sum(len(v["seeds"]) for v in report["variants"])
    assert f"{finished} of the {finished + len(report.get('missing', []))} runs" in section
