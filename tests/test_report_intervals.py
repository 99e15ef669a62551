"""Intervals of the report tables (issue 31: no shipped table lacks its sample size and uncertainty).

The helpers are checked against independent references (scipy's Wilson and t intervals, a plain k-NN pass per
bootstrap resample); the shipped reports are checked to print an interval in every metric cell and to hold its
bounds and n in the JSON, so a report table without intervals fails here."""

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats

from course_lib.metrics.errors import MetricInputError
from course_lib.metrics.precision_recall import precision_recall_from_features, precision_recall_intervals
from course_lib.metrics.uncertainty import (
    Interval,
    binomial_interval,
    bootstrap_interval,
    interval_cell,
    interval_record,
    mean_interval,
)


def test_mean_interval_is_scipys_t_interval():
    values = np.random.default_rng(0).normal(3.0, 2.0, 50)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    interval = mean_interval(values)
    assert (interval.low, interval.high) == pytest.approx((low, high), abs=1e-12)
    assert interval.method == "t over 50 samples" and interval.n == 50


def test_precision_recall_intervals_match_a_knn_pass_per_resample():
    rng = np.random.default_rng(1)
    generated = torch.as_tensor(rng.normal(0.3, 1.0, (60, 4)))
    real = torch.as_tensor(rng.normal(0.0, 1.0, (70, 4)))
    precision, recall = precision_recall_intervals(generated, real, resamples=20, seed=5)

    def plain(which):  # the slow way: a full k-NN pass on each resample, as bootstrap_ci would run it
        return bootstrap_interval(
            lambda index: precision_recall_from_features(generated[torch.as_tensor(index)], real)[which],
            len(generated),
            resamples=20,
            seed=5,
        )

    for ours, theirs in [(precision, plain(0)), (recall, plain(1))]:
        assert (ours.low, ours.high) == pytest.approx((theirs.low, theirs.high), abs=1e-12)
        assert ours.n == 60


def test_interval_cell_and_record():
    symmetric = Interval(11.0, 12.0, 0.95, "bootstrap over 2000 samples, B=200", 2000)
    assert interval_cell(11.5, symmetric, digits=2) == "11.50 ± 0.50"
    lopsided = Interval(0.996, 1.0, 0.95, "Wilson over 1000 samples", 1000)
    assert interval_cell(1.0, lopsided, digits=1, scale=100, unit="%") == "100.0% [99.6%, 100.0%]"
    assert interval_record(symmetric) == {
        "low": 11.0,
        "high": 12.0,
        "level": 0.95,
        "method": "bootstrap over 2000 samples, B=200",
        "n": 2000,
    }


# ------------------------------------------------------------------------------ the shipped reports
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
CELL = re.compile(r"^-?[\d.,]+%? (± [\d.,]+%?|\[-?[\d.,]+%?, -?[\d.,]+%?\])$")  # `v ± h` or `v [lo, hi]`

# report -> (markdown file, JSON file, [(the JSON's rows, the metric keys each of them holds with an interval)], the
# table headers of those metrics' columns)
PIX2PIX_KEYS = ("l1", "psnr", "ssim", "sharpness", "fid_mnist", "accuracy")
CYCLEGAN_KEYS = ("cycle_l1_a", "cycle_l1_b", "accuracy_a_to_b", "accuracy_b_to_a")
INTERVAL_REPORTS = {
    "mnist_truncation": (
        "report.md",
        "report.json",
        [(lambda report: report["rows"], ("fid_mnist", "precision", "recall", "recognised_0.9"))],
        ("FID", "precision", "recall", "recognised (p >= 0.9)"),
    ),
    "mnist_dcgan": (
        "tau_sweep.md",
        "tau_sweep.json",
        [(lambda report: report["rows"], ("mean_norm", "mean_pixel", "recognised_0.9", "rarest_digit"))],
        ("mean ‖z‖", "mean pixel", "recognised p >= 0.9", "rarest digit"),
    ),
    "image_translation": (
        "report.md",
        "results.json",
        [
            (lambda report: list(report["pix2pix"].values()), PIX2PIX_KEYS),
            (lambda report: [report["pix2pix_reference"]["input (upsampled 7x7)"]], PIX2PIX_KEYS),
            (lambda report: list(report["cyclegan"].values()), CYCLEGAN_KEYS),
        ],
        ("L1 (lower)", "PSNR dB", "SSIM", "sharpness", "MNIST-feature FID (lower)", "classifier accuracy")
        + ("cycle L1, A->B->A", "cycle L1, B->A->B", "accuracy of G(a)", "accuracy of F(b)"),
    ),
    "stylegan_mnist": (
        "report.md",
        "results.json",
        [
            (lambda report: [model["quality"] for model in report["models"].values()], ("precision", "recognised")),
            (lambda report: [report["real"]], ("fid", "precision", "recall", "recognised")),
            (
                lambda report: [{"mean": r["mean"], "intervals": {"mean": r["interval"]}} for r in report["ppl"]],
                ("mean",),
            ),
            (
                lambda report: [
                    {"recognised": r["ema"]["recognised"], "intervals": {"recognised": r["ema"]["recognised_interval"]}}
                    for r in report["ablations"]["rows"]
                ],
                ("recognised",),
            ),
        ],
        ("precision", "recognised", "PPL mean", "recognised (EMA)"),
    ),
}


def tables(markdown: str) -> list[tuple[list[str], list[list[str]]]]:
    """Every markdown table: (header cells, body rows' cells), and the paragraph just above it."""
    found, lines = [], markdown.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("|") and i + 1 < len(lines) and lines[i + 1].startswith("|---"):
            header = [c.strip() for c in lines[i].strip("|").split("|")]
            body = []
            j = i + 2
            while j < len(lines) and lines[j].startswith("|"):
                body.append([c.strip() for c in lines[j].strip("|").split("|")])
                j += 1
            found.append((header, body))
            i = j
        else:
            i += 1
    return found


def interval_problems(markdown: str, columns) -> list[str]:
    """Cells of the named metric columns that print no interval; tables with such columns but no n and level
    stated above them."""
    problems = []
    for header, body in tables(markdown):
        wanted = [header.index(c) for c in columns if c in header]
        if not wanted:
            continue
        for row in body:
            problems += [
                f"{header[i]} = {row[i]!r} (row {row[0]})" for i in wanted if row[i] and not CELL.match(row[i])
            ]
    if not re.search(r"95% interval", markdown) or not re.search(r"\bn = [\d,]+", markdown):
        problems.append("no '95% interval' and 'n = ...' stated above the tables")
    return problems


@pytest.mark.parametrize("folder", sorted(INTERVAL_REPORTS))
def test_every_metric_cell_of_the_report_prints_its_interval(folder):
    md_name, _, _, columns = INTERVAL_REPORTS[folder]
    problems = interval_problems((RESULTS / folder / md_name).read_text(encoding="utf-8"), columns)
    assert not problems, f"docs/results/{folder}/{md_name}: " + "; ".join(problems[:8])


@pytest.mark.parametrize("folder", sorted(INTERVAL_REPORTS))
def test_every_metric_value_of_the_json_holds_its_interval_and_n(folder):
    _, json_name, parts, _ = INTERVAL_REPORTS[folder]
    report = json.loads((RESULTS / folder / json_name).read_text(encoding="utf-8"))
    for rows_of, keys in parts:
        rows = rows_of(report)
        assert rows
        for row, key in ((row, key) for row in rows for key in keys):
            record = row["intervals"][key]
            assert set(record) >= {"low", "high", "level", "method", "n"} and record["level"] == 0.95
            assert record["n"] >= 2 and record["low"] <= record["high"], (folder, key, record)
            if "bootstrap" not in record["method"]:  # t, Wilson and spread intervals contain their estimate
                assert record["low"] - 1e-9 <= row[key] <= record["high"] + 1e-9, (folder, key, row[key], record)


def test_a_table_without_intervals_fails_the_check():
    bare = (
        "Made from n = 2,000 samples, 95% intervals.\n\n| tau | FID | recall |\n|---|---|---|\n| 1 | 15.35 | 0.685 |\n"
    )
    assert len(interval_problems(bare, ("FID", "recall"))) == 2
    good = bare.replace("15.35 |", "15.35 [14.92, 16.09] |").replace("0.685 |", "0.685 ± 0.041 |")
    assert interval_problems(good, ("FID", "recall")) == []
    assert interval_problems(good.replace("n = 2,000", "many"), ("FID",)) != []


def test_the_tau_sweep_markdown_is_its_json_rendered():
    spec = importlib.util.spec_from_file_location(
        "train_pretrained", ROOT / "scripts" / "train_pretrained_mnist_dcgan.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    folder = RESULTS / "mnist_dcgan"
    report = json.loads((folder / "tau_sweep.json").read_text(encoding="utf-8"))
    assert module.render_tau_markdown(report) == (folder / "tau_sweep.md").read_text(encoding="utf-8")


def test_recall_bootstrap_sits_below_the_estimate_and_fresh_draws_do_not():
    """Why reports take recall's interval from fresh draws (spread_interval), not from a bootstrap over samples."""
    from course_lib.metrics.uncertainty import spread_interval

    def draw(seed, n=300):
        return torch.as_tensor(np.random.default_rng(seed).normal(0.0, 1.0, (n, 4)))

    real, generated = draw(0), draw(1)
    recall = precision_recall_from_features(generated, real)[1]
    _, bootstrapped = precision_recall_intervals(generated, real, resamples=50)
    assert bootstrapped.high < recall  # the whole interval below the estimate: duplicates shrink the k-NN radii
    fresh = [precision_recall_from_features(draw(seed), real)[1] for seed in range(2, 10)]
    spread = spread_interval(recall, fresh)
    assert spread.contains(recall) and spread.contains(float(np.mean(fresh)))


def test_spread_interval_is_the_value_plus_minus_t_times_the_replicates_std():
    from course_lib.metrics.uncertainty import spread_interval

    replicates = [0.70, 0.74, 0.78, 0.72, 0.75]
    half = stats.t.ppf(0.975, 4) * np.std(replicates, ddof=1)
    interval = spread_interval(0.756, replicates, what="2,000 samples")
    assert (interval.low, interval.high) == pytest.approx((0.756 - half, 0.756 + half), abs=1e-12)
    assert interval.n == 5 and interval.method == "t from the spread over 5 independent draws of 2,000 samples"
    with pytest.raises(MetricInputError):
        spread_interval(0.7, [0.7])


def test_the_stylegan_models_fid_and_recall_say_why_they_have_no_interval():
    """The one gap left: the shipped StyleGAN run's generators were not kept, so its models' FID and recall have
    no interval until the script runs again; each such cell must say so, and the JSON must give the reason."""
    report = json.loads((RESULTS / "stylegan_mnist" / "results.json").read_text(encoding="utf-8"))
    markdown = (RESULTS / "stylegan_mnist" / "report.md").read_text(encoding="utf-8")
    missing = [q for q in (m["quality"] for m in report["models"].values()) if q["intervals"].get("fid") is None]
    for quality in missing:
        assert quality["intervals"]["recall"] is None and "not kept" in quality["intervals_missing"]
    header, body = next((h, b) for h, b in tables(markdown) if "FID (lower better)" in h)
    for row in body:
        for column in ("FID (lower better)", "recall"):
            cell = row[header.index(column)]
            assert CELL.match(cell) or (missing and cell.endswith("(no interval)")), cell
    assert not missing or "**No interval**" in markdown


def test_the_main_job_quality_rows_carry_intervals_and_its_timing_says_one_run():
    report = json.loads((RESULTS / "main_job" / "report.json").read_text(encoding="utf-8"))
    markdown = (RESULTS / "main_job" / "report.md").read_text(encoding="utf-8")
    scores = report["scores"]
    for key in ("fid_mnist", "precision", "recall", "recognised_0.9", "digit_fraction_min"):
        record = scores["intervals"][key]
        assert record["low"] <= record["high"] and record["n"] >= 2 and record["level"] == 0.95, key
    assert len(scores["intervals"]["digit_shares"]) == 10
    (_, measures), (_, shares) = tables(markdown)[:2]
    quality = [row for row in measures if row[0].split()[0] in ("recognised", "rarest", "FID", "precision", "recall")]
    assert len(quality) == 5 and all(CELL.match(row[1]) for row in quality), quality
    assert all(CELL.match(cell) for cell in shares[0]), shares
    assert "n = 1 run" in markdown and f"n = {scores['n_samples']:,} samples" in markdown


def test_the_recipe_sweep_cells_carry_binomial_intervals():
    folder = RESULTS / "main_job" / "recipe_sweep"
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    for row in report["rows"]:
        record = row["ema0.995"]["intervals"]["recognised_0.9"]
        assert record["n"] == row["samples"] and record["low"] <= row["ema0.995"]["recognised_0.9"] <= record["high"]
    header, body = tables((folder / "report.md").read_text(encoding="utf-8"))[0]
    pair = re.compile(r"^(?P<recognised>.+) \((?P<rarest>.+)\)$")
    cells = [cell for row in body for name, cell in zip(header, row, strict=True) if name.startswith("step") and cell]
    assert cells
    for cell in cells:
        match = pair.match(cell)
        assert match and CELL.match(match["recognised"]) and CELL.match(match["rarest"]), cell


def test_evaluate_generator_intervals_contain_their_values_where_they_should():
    from course_lib import metrics
    from course_lib.latent.pretrained import evaluate_generator, load_pretrained

    generator = load_pretrained("mnist-dcgan")
    real = metrics.extract_features("mnist:test", "mnist", limit=120, progress=False, device="cpu")
    plain = evaluate_generator(generator, 100, seed=3, reference_features=real)
    scored = evaluate_generator(generator, 100, seed=3, reference_features=real, ci=0.95, resamples=10, recall_draws=3)
    assert {k: scored[k] for k in plain} == plain and "intervals" not in plain  # ci only adds
    intervals = scored["intervals"]
    assert set(intervals) == {"fid_mnist", "precision", "recall", "recognised_0.5", "recognised_0.9"}
    wilson = binomial_interval(round(scored["recognised_0.9"] * 100), 100)
    assert (intervals["recognised_0.9"]["low"], intervals["recognised_0.9"]["high"]) == (wilson.low, wilson.high)
    assert len(scored["recall_draws"]) == 3 and intervals["recall"]["method"].startswith("t from the spread over 3")
    assert intervals["recall"]["low"] < scored["recall"] < intervals["recall"]["high"]
    assert intervals["fid_mnist"]["n"] == 100 and "bootstrap" in intervals["fid_mnist"]["method"]


def test_paired_score_intervals_are_over_the_per_image_values_whose_mean_is_the_score():
    from course_lib.metrics.translation import paired_scores

    rng = torch.Generator().manual_seed(0)
    targets = torch.rand(24, 1, 28, 28, generator=rng) * 2 - 1
    outputs = (targets + 0.3 * torch.randn(24, 1, 28, 28, generator=rng)).clamp(-1, 1)
    labels = torch.randint(0, 10, (24,), generator=rng)
    scores = paired_scores(outputs, targets, labels, ci=0.95, resamples=10)
    for key in ("l1", "psnr", "ssim", "sharpness", "sharpness_targets"):
        record = scores["intervals"][key]  # a t interval is centred on the mean of the per-image values
        assert (record["low"] + record["high"]) / 2 == pytest.approx(scores[key], rel=1e-9), key
        assert record["n"] == 24 and record["method"] == "t over 24 samples"
    per_image_l1 = ((outputs.double() - targets.double()).abs().flatten(1).mean(1) / 2).numpy()
    low, high = stats.t.interval(0.95, 23, loc=per_image_l1.mean(), scale=stats.sem(per_image_l1))
    assert (scores["intervals"]["l1"]["low"], scores["intervals"]["l1"]["high"]) == pytest.approx((low, high))
    assert scores["intervals"]["accuracy"]["method"] == "Wilson over 24 samples"
