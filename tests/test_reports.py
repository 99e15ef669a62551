"""Reports have one writer (course_lib.core.reports): every shipped report.md under docs/results is exactly what its
renderer makes of the report.json beside it, so no sentence or number in the markdown can drift from the JSON."""

import importlib.util
import json
from pathlib import Path

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
