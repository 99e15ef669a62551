"""The computing times the notebooks state come from docs/results/notebook_times (scripts/time_notebooks.py).

Every lecture notebook's first markdown cell has a "**Time:**" paragraph. Where it cites the timing report, the
figures it states (CPU and wall time, cores, load, torch threads, as rounded in the text) must be the
report's; otherwise it must say plainly that the computing time was not measured, or cite the shipped report of
the experiment it stands on.
"""

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent  # the checkout these tests check (course_lib no longer names it)
RESULTS = REPO_ROOT / "docs" / "results" / "notebook_times"
REPORT = json.loads((RESULTS / "report.json").read_text())["notebooks"]
CITATION = "docs/results/notebook_times/report.md"
DURATION = r"([\d.]+ (?:s|minutes))"
MEASURED = re.compile(
    rf"computing in normal mode took {DURATION} of CPU time \({DURATION} wall clock "
    r"on a shared (\d+)-core machine at load ([\d.]+), with (\d+) torch threads?"
)
STOPPED = re.compile(
    rf"stopped after {DURATION} wall clock on a shared (\d+)-core machine at load ([\d.]+), "
    rf"having used {DURATION} of CPU time"
)
READING = re.compile(r"about \d+ minutes of reading")  # an estimate of reading, not a measurement
DURATION_FIGURE = re.compile(r"\d[\d.]*\s*(?:s|sec|seconds?|min|minutes?|h|hours?)\b")
FAILED = re.compile(r"the timing run failed \((.+?)\) on a shared")
LECTURES = sorted(p for folder in ("solutions", "notebooks") for p in (REPO_ROOT / folder).glob("[0-9][0-9]_*.ipynb"))


def time_paragraph(path: Path) -> str:
    nb = nbformat.read(str(path), as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "markdown")
    assert "**Time:**" in first.source, f"{path.name}: the first markdown cell has no **Time:** paragraph"
    return " ".join(first.source.split("**Time:**", 1)[1].split("\n\n", 1)[0].split())


def as_written(seconds):
    """The text's rounding: whole seconds under two minutes, minutes to one decimal above."""
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} minutes"


def load_of(record):
    return max(record["load_1min_before"], record["load_1min_after"])


def load_script():
    spec = importlib.util.spec_from_file_location("time_notebooks", REPO_ROOT / "scripts" / "time_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", LECTURES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_the_time_a_notebook_states_is_the_measured_one_or_it_says_it_was_not_measured(path):
    text = time_paragraph(path)
    if CITATION not in text:
        cited = re.findall(r"docs/results/([\w-]+)", text)
        if any((REPO_ROOT / "docs" / "results" / name / "report.md").is_file() for name in cited):
            return  # its figures are the experiment report's (08's hours are checked below)
        assert "not measured" in text or "not timed" in text, (
            f"{path.name}: its time is neither measured ({CITATION}), nor a shipped report, nor said to be "
            f"unmeasured: {text}"
        )
        typed_in = DURATION_FIGURE.findall(
            text.replace(READING.search(text).group(0), "") if READING.search(text) else text
        )
        assert not typed_in, f"{path.name}: says it was not measured but states a time: {typed_in}: {text}"
        return
    assert path.name in REPORT, f"{path.name} cites {CITATION} but the report has no entry for it"
    record = REPORT[path.name]
    measured = MEASURED.search(text)
    if record["ok"]:
        assert measured, f"{path.name}: the report has a complete run, the text states no measured time: {text}"
        cpu, wall, cores, load, threads = measured.groups()
        assert cpu == as_written(record["cpu_s"]) and wall == as_written(record["wall_s"]), (path.name, text)
        assert int(cores) == record["machine"]["cpu_cores"]
        assert load == f"{load_of(record):.1f}"
        assert int(threads) == record["torch_threads"]
        return
    assert not measured and "not measured" in text, f"{path.name}: its timing run did not finish: {text}"
    if record.get("stopped"):
        stopped = STOPPED.search(text)
        assert stopped, text
        wall, cores, load, cpu = stopped.groups()
        assert wall == as_written(record["wall_s"]) and cpu == as_written(record["cpu_s"])
        assert int(cores) == record["machine"]["cpu_cores"] and load == f"{load_of(record):.1f}"
    else:
        failed = FAILED.search(text)
        assert failed and failed.group(1) == record["error"], text


def test_every_report_entry_ran_in_normal_mode_on_a_fresh_copy_and_has_its_machine_and_load():
    assert REPORT, "docs/results/notebook_times/report.json has no notebook"
    for name, record in REPORT.items():
        assert record["mode"] == "normal" and record["notebook"].endswith(name)
        assert (REPO_ROOT / record["notebook"]).is_file(), record["notebook"]
        assert record["wall_s"] > 0 and record["cpu_s"] >= 0
        assert record["machine"]["cpu_cores"] >= 1 and record["machine"]["torch"]
        assert record["load_1min_before"] >= 0 and record["load_1min_after"] >= 0
        assert record["ok"] == (record["error"] is None), name


def test_the_markdown_report_is_generated_from_the_json_and_states_the_load_caveat():
    script = load_script()
    text = (RESULTS / "report.md").read_text()
    assert text == script.render_markdown({"notebooks": REPORT}), (
        "report.md is stale: run `python scripts/time_notebooks.py --render-only`"
    )
    assert "over-estimate" in text and "CPU seconds" in text
    for name in REPORT:
        assert name in text


def test_the_time_sentence_round_trips_through_the_checks_and_keeps_the_reading_estimate():
    script = load_script()
    record = {
        "ok": True,
        "cpu_s": 47.0,
        "wall_s": 125.0,
        "load_1min_before": 7.44,
        "load_1min_after": 6.0,
        "machine": {"cpu_cores": 2},
        "torch_threads": 1,
    }
    old = "Intro.\n\n**Time:** about 30 minutes of reading; computing took\n3 minutes (typed in).\n\n**Next**"
    reading = script.reading_estimate(old.split("**Time:**")[1])
    new = script.rewrite_time_paragraph(old, script.time_sentence(record, reading))
    assert new.startswith("Intro.\n\n**Time:** about 30 minutes of reading; ") and new.endswith("\n\n**Next**")
    assert "typed in" not in new
    assert MEASURED.search(new).groups() == ("47 s", "2.1 minutes", "2", "7.4", "1")
    stopped = dict(record, ok=False, stopped=True, error="over 25 min (stopped)", wall_s=1502.0)
    assert STOPPED.search(script.time_sentence(stopped, None)).groups() == ("25.0 minutes", "2", "7.4", "47 s")


def test_a_timing_copy_starts_without_run_folders_and_links_everything_else(tmp_path):
    script = load_script()
    notebook = REPO_ROOT / "solutions" / "03_wasserstein_distance.ipynb"
    copy = script.fresh_layout(notebook, tmp_path)
    assert copy.read_bytes() == notebook.read_bytes()
    assert sorted(p.name for p in copy.parent.iterdir()) == [notebook.name]  # no runs/, no checkpoints
    root = tmp_path / "repo"
    assert not (root / "runs").exists()
    assert (root / "docs").is_symlink() and (root / "docs" / "results").is_dir()
    assert not (root / "solutions").is_symlink()


def test_notebook_08_states_the_hours_its_shipped_experiment_report_adds_up_to():
    # 08's normal mode trains a slice of the study (hours): it is not timed here; its times come from the study's report.
    text = time_paragraph(REPO_ROOT / "solutions" / "08_improving_gans.ipynb")
    assert "docs/results/mnist_improvements_study/report.md" in text
    report = json.loads((REPO_ROOT / "docs" / "results" / "mnist_improvements_study" / "report.json").read_text())
    per_run = {v["variant"]: v["train_seconds"] + v["eval_seconds"] for v in report["variants"]}
    runs = sum(len(v["seeds"]) for v in report["variants"])
    whole = sum(per_run[v["variant"]] * len(v["seeds"]) for v in report["variants"])
    notebook = REPO_ROOT / "solutions" / "08_improving_gans.ipynb"
    code = "".join("".join(c["source"]) for c in json.loads(notebook.read_text())["cells"] if c["cell_type"] == "code")
    variants = re.search(r'v\["name"\] in \(([^)]*)\)', code).group(1)
    seeds = re.search(r'config\["seeds"\] = \[([^]]*)\]', code).group(1)
    sliced = [name.strip().strip('"') for name in variants.split(",")]
    n_seeds = len(seeds.split(","))
    slice_seconds = sum(per_run[name] for name in sliced) * n_seeds
    assert f"({len(sliced) * n_seeds} of its {runs} runs)" in text
    assert f"adds up to {slice_seconds / 3600:.1f} hours" in text
    assert f"the whole study adds up to {whole / 3600:.1f} hours" in text
    fastest, slowest = min(per_run.values()) / 60, max(per_run.values()) / 60
    assert f"from {fastest:.0f} to {slowest:.0f} minutes" in text
