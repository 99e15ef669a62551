"""Reports have one writer (course_lib.core.reports): every shipped report.md under docs/results is exactly what its
renderer makes of the report.json beside it, so no sentence or number in the markdown can drift from the JSON."""

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

from course_lib.core.reports import machine, render_again, rendered, write_report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"

# folder under docs/results -> (the script or module that measured it, the name of its renderer)
RENDERERS = {
    "wgan_toy_coverage": ("scripts/wgan_toy_report.py", "render_markdown"),
    "notebook_times": ("scripts/time_notebooks.py", "render_markdown"),
    "celeba_attribute_directions": ("scripts/check_celeba_attribute_directions.py", "report_markdown"),
    "celeba_dcgan": ("scripts/train_pretrained_celeba_dcgan.py", "report_markdown"),
    "course_site": ("scripts/measure_site.py", "render_markdown"),
    "preset_step_times": ("benchmarks/preset_step_time.py", "render_markdown"),
    "grade_class": ("benchmarks/grade_class.py", "render_markdown"),
    "main_job": ("benchmarks/main_job.py", "report_markdown"),
    "mnist_improvements": ("course_lib.experiment.report", "render_markdown"),
    "mnist_diversity": ("course_lib.experiment.report", "render_markdown"),
    "mnist_improvements_study": ("course_lib.experiment.report", "render_markdown"),
    "mnist_diversity_study": ("course_lib.experiment.report", "render_markdown"),
    "distributed_scaling": ("benchmarks/distributed_scaling.py", "render_markdown"),
    "image_translation": ("scripts/measure_image_translation.py", "report"),
    "stylegan_mnist": ("scripts/measure_stylegan_progressive.py", "render_markdown"),
    "mnist_truncation": ("scripts/measure_mnist_truncation.py", "render_markdown"),
}
# Reports whose JSON is called results.json (written before the name report.json was the rule).
JSON_NAMES = {"image_translation": "results.json", "stylegan_mnist": "results.json"}


def _renderer(folder: str):
    source, name = RENDERERS[folder]
    if source.endswith(".py"):
        spec = importlib.util.spec_from_file_location(Path(source).stem, ROOT / source)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(source)
    render = getattr(module, name)
    if source == "course_lib.experiment.report":  # experiment reports link their figures relative to the folder
        return lambda report: render(report, RESULTS / folder)
    return render


@pytest.mark.parametrize("folder", sorted(RENDERERS))
def test_each_shipped_markdown_is_its_json_rendered(folder):
    shipped = (RESULTS / folder / "report.md").read_text(encoding="utf-8")
    json_name = JSON_NAMES.get(folder, "report.json")
    assert rendered(RESULTS / folder, _renderer(folder), json_name=json_name) == shipped, (
        f"docs/results/{folder}/report.md is not what {RENDERERS[folder][0]} renders from its report.json: re-render "
        "it (the script's --render-only, or course_lib.core.reports.render_again)"
    )


def test_every_report_folder_with_both_files_has_a_renderer():
    folders = {
        p.parent.name
        for p in RESULTS.glob("*/report.md")
        if (p.parent / "report.json").is_file() or (p.parent / "results.json").is_file()
    }
    assert folders <= set(RENDERERS), f"register the renderer of {sorted(folders - set(RENDERERS))} here"


def test_the_markdown_is_rendered_from_the_json_as_written(tmp_path):
    seen = []

    def render(report):
        seen.append(report)
        return f"# {report['name']}: {report['sizes']} ({report['machine']['cpu_cores']} cores)\n"

    report = {"name": "demo", "sizes": (1, 2), "machine": machine()}
    json_path, md_path = write_report(tmp_path / "out", report, render)
    assert seen[0]["sizes"] == [1, 2]  # what the JSON holds (a list), not the tuple the script had
    assert json.loads(json_path.read_text())["name"] == "demo"
    assert md_path.read_text() == f"# demo: [1, 2] ({report['machine']['cpu_cores']} cores)\n"
    md_path.write_text("stale")
    render_again(tmp_path / "out", render)
    assert md_path.read_text().startswith("# demo: [1, 2]")
    with pytest.raises(TypeError):  # a value JSON cannot hold fails when written, not in a reader's hands
        write_report(tmp_path / "bad", {"name": "x", "sizes": object(), "machine": {}}, render)
    assert not (tmp_path / "bad" / "report.md").exists()


# Every table of a shipped report says how many measurements each figure is and how uncertain it is (issue 31:
# "no shipped table lacks its sample size and uncertainty"). Read in the table itself or in the text between the
# heading above it and the table: a sample size is an `n = ...` / `(n=...)` / `n (seeds)` statement, the list of
# seeds (`seeds [0, 1, 2]`) or a column of seeds (a per-seed table's rows are its sample); an uncertainty is a ±,
# an interval ("95%", "[low, high]"), a min-max range, every repeat listed, or the plain statement that there is
# none (`n = 1`, "not recorded", "no interval").
SAMPLE_SIZE = re.compile(
    r"\bn ?= ?[\d,]+|\(n ?= ?\d|\bn \((?:runs|seeds|steps|rounds|builds|positives)|\| seeds? \||\bseeds \[[\d, ]+\]"
)
UNCERTAINTY = re.compile(
    r"±|\b95 ?%|\[\s*-?[\d.]+%?,\s*-?[\d.]+%?\s*\]|min-max|\(min|every round|\| seed \||\bn ?= ?1\b|not recorded|\bno interval\b"
)
# Every Markdown file under docs/results is checked (report.md, and e.g. mnist_dcgan/tau_sweep.md), except these,
# each with the reason it cannot comply yet.
NOT_YET_CHECKED: set[str] = set()  # e.g. "some_report/report.md", with a comment saying why
SHIPPED_MARKDOWN = sorted(p.relative_to(RESULTS).as_posix() for p in RESULTS.rglob("*.md"))


def tables_with_context(markdown: str) -> list[tuple[str, str]]:
    """(the table's first line, the text from the heading above it to the table's end) for each Markdown table."""
    out, context, table = [], [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            table.append(line)
            continue
        if table:
            out.append((table[0], "\n".join(context + table)))
            context, table = [], []
        if line.startswith("#"):
            context = []
        context.append(line)
    return out


def missing_sample_size_or_uncertainty(markdown: str) -> list[str]:
    found = []
    for header, text in tables_with_context(markdown):
        if not SAMPLE_SIZE.search(text):
            found.append(f"no sample size (n) for the table {header!r}")
        if not UNCERTAINTY.search(text):
            found.append(f"no uncertainty (± / interval / min-max, or n = 1 said plainly) for the table {header!r}")
    return found


@pytest.mark.parametrize("markdown", [m for m in SHIPPED_MARKDOWN if m not in NOT_YET_CHECKED])
def test_every_table_of_a_shipped_report_states_its_sample_size_and_uncertainty(markdown):
    problems = missing_sample_size_or_uncertainty((RESULTS / markdown).read_text(encoding="utf-8"))
    assert not problems, f"docs/results/{markdown}: " + "; ".join(problems)


def _numeric_tables_only(markdown: str) -> str:
    """The markdown without its tables that hold no figure (lists of names, settings, links)."""
    kept, table = [], []
    for line in markdown.splitlines() + [""]:
        if line.startswith("|"):
            table.append(line)
            continue
        cells = [cell.strip() for row in table[2:] for cell in row.strip("|").split("|")]
        if any(re.match(r"[-+]?\d", cell) for cell in cells):  # a cell that is a figure, not a name with digits
            kept += table
        table = []
        kept.append(line)
    return "\n".join(kept)


@pytest.mark.parametrize(
    "markdown",
    ["README.md", "course_lib/assets/README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))],
)
def test_every_table_of_numbers_in_the_readme_and_docs_states_its_sample_size_and_uncertainty(markdown):
    problems = missing_sample_size_or_uncertainty(_numeric_tables_only((ROOT / markdown).read_text(encoding="utf-8")))
    assert not problems, f"{markdown}: " + "; ".join(problems)


def test_the_reports_not_yet_checked_still_exist():
    assert NOT_YET_CHECKED <= set(SHIPPED_MARKDOWN), "drop the entries of NOT_YET_CHECKED whose report is gone"


def test_the_table_check_fails_a_table_without_n_or_interval():
    bare = "# Report\n\nSome text.\n\n| variant | FID |\n|---|---|\n| a | 12.3 |\n"
    assert len(missing_sample_size_or_uncertainty(bare)) == 2
    with_n = "# Report\n\nMean over n = 3 seeds.\n\n| variant | FID |\n|---|---|\n| a | 12.3 |\n"
    assert missing_sample_size_or_uncertainty(with_n) == [
        "no uncertainty (± / interval / min-max, or n = 1 said plainly) for the table '| variant | FID |'"
    ]
    full = "# R\n\nn = 3 seeds, 95% t interval.\n\n| variant | FID |\n|---|---|\n| a | 12.3 ± 0.4 |\n\n## Next\n\n"
    assert missing_sample_size_or_uncertainty(full + "| x | y |\n|---|---|\n| 1 | 2 |\n") == [
        "no sample size (n) for the table '| x | y |'",
        "no uncertainty (± / interval / min-max, or n = 1 said plainly) for the table '| x | y |'",
    ]  # a heading ends what the text above says: the second table has to say it again
    assert missing_sample_size_or_uncertainty("# R\n\nOne run: n = 1.\n\n| a |\n|---|\n| 5 |\n") == []


def _t_half_width(values: list[float]) -> float:
    """The reference: scipy's own t interval of the mean, not course_lib's."""
    from scipy import stats

    if np.ptp(values) == 0:
        return 0.0  # all seeds equal: scipy returns NaN for a zero standard error; the interval has zero width
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    return (high - low) / 2


@pytest.mark.parametrize("folder", ["mnist_improvements", "mnist_diversity"])
def test_older_experiment_reports_give_the_t_intervals_of_their_seeds(folder):
    """Intervals added without retraining (scripts/rerender_experiment_intervals.py) are the 95% t intervals of the
    per-seed values the report stores, and the keys notebooks and tests read are kept."""
    report = json.loads((RESULTS / folder / "report.json").read_text(encoding="utf-8"))
    assert report["intervals_added"]["retrained"] is False and "uncertainty" in report
    for row in report["variants"]:
        assert {"train_seconds", "eval_seconds", "per_seed"} <= set(row)
        for key in ("is", "fid", "kid", "precision", "recall"):
            values = [seed[key] for seed in row["per_seed"]]
            assert row[f"{key}_ci"] == pytest.approx(_t_half_width(values), rel=1e-9, abs=1e-12), (row["variant"], key)
            assert row[key] == pytest.approx(np.mean(values))


def test_toy_coverage_intervals_are_the_t_intervals_of_its_seeds():
    report = json.loads((RESULTS / "wgan_toy_coverage" / "report.json").read_text(encoding="utf-8"))
    for row in report["rows"]:
        assert row["n_seeds"] == len(row["seeds"]) == len(row["modes_per_seed"])
        assert row["modes_ci95"] == pytest.approx(_t_half_width(row["modes_per_seed"]), abs=1e-12)
        assert row["high_quality_ci95"] == pytest.approx(_t_half_width(row["high_quality_per_seed"]), abs=1e-12)


def test_attribute_report_proportion_intervals_are_binomial_intervals_of_its_counts():
    from scipy.stats import binomtest

    report = json.loads((RESULTS / "celeba_attribute_directions" / "report.json").read_text(encoding="utf-8"))
    for scores in report["held_out"].values():
        for s in scores.values():
            for fraction, interval in (
                (s["positives"] / s["n"], s["base_rate_95ci"]),
                (s["accuracy"], s["accuracy_95ci"]),
            ):
                count = round(fraction * s["n"])
                wilson = binomtest(count, s["n"]).proportion_ci(0.95, method="wilson")
                assert interval == pytest.approx([wilson.low, wilson.high], abs=1e-9)
    n = report["fresh_samples"]
    for kind, directions in report["effects"].items():
        for name, by_alpha in directions.items():
            for alpha, rates in by_alpha.items():
                for attribute, fraction in rates.items():
                    wilson = binomtest(round(fraction * n), n).proportion_ci(0.95, method="wilson")
                    stored = report["effects_95ci"][kind][name][alpha][attribute]
                    assert stored == pytest.approx([wilson.low, wilson.high], abs=1e-9)


def test_the_rerender_script_adds_intervals_once_and_refuses_a_folder_without_a_report(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("rerender", ROOT / "scripts" / "rerender_experiment_intervals.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    old = json.loads((RESULTS / "mnist_diversity" / "report.json").read_text(encoding="utf-8"))
    for key in ("uncertainty", "intervals_added", "budgets", "verdict_changes"):
        old.pop(key)
    old["description"] = old["description"].split(" Intervals added")[0]
    for row in old["variants"]:
        for key in [k for k in row if k.endswith("_ci")]:
            row.pop(key)
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "report.json").write_text(json.dumps(old))
    assert script.main([str(folder), "--check"]) == 1  # an old report: needs intervals
    assert script.main([str(folder)]) == 0
    first = (folder / "report.json").read_text()
    assert script.main([str(folder)]) == 0 and (folder / "report.json").read_text() == first  # idempotent
    assert script.main([str(folder), "--check"]) == 0
    report = json.loads(first)
    assert report["description"].count("Intervals added") == 1 and "t = 4.30 for 3 seeds" in report["description"]
    assert "± half-width of its 95% Student-t interval" in (folder / "report.md").read_text()
    assert script.main([str(tmp_path / "nothing")]) == 2
    assert "not found" in capsys.readouterr().err
