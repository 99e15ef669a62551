"""`course-lib experiment`: config validation, runs, report, and resuming without redoing finished work."""

import json
import math

import pytest

from course_lib.cli import main
from course_lib.core.errors import ConfigError
from course_lib.experiment import load_experiment, run_experiment
from course_lib.training.checkpoint import load_generator

TINY = {
    "name": "tiny",
    "base": {
        "dataset": "mnist",
        "limit": 256,
        "width": 8,
        "batch_size": 16,
        "steps": 6,
        "log_every": 3,
        "sample_every": 3,
        "checkpoint_every": 3,
    },
    "seeds": [0, 1],
    "eval": {"every": 3, "n_samples": 64, "n_reference": 200, "extractor": "mnist", "kid_subset": 50},
    "variants": [{"name": "baseline"}, {"name": "ema", "preset": "ema"}],
}


def test_config_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="unknown key"):
        load_experiment({**TINY, "varients": []})
    with pytest.raises(ConfigError, match="unique"):
        load_experiment({**TINY, "variants": [{"name": "a"}, {"name": "a"}]})
    with pytest.raises(ConfigError, match="variant 'bad'.*unknown setting"):
        load_experiment({**TINY, "variants": [{"name": "ok"}, {"name": "bad", "learning_rate": 1}]})
    with pytest.raises(ConfigError, match="extractor"):
        load_experiment({**TINY, "eval": {"extractor": "vgg"}})
    with pytest.raises(ConfigError, match="not found"):
        load_experiment(tmp_path / "missing.yaml")
    (tmp_path / "broken.yaml").write_text("variants: [unclosed")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_experiment(tmp_path / "broken.yaml")


def test_shipped_configs_are_valid():
    from pathlib import Path

    configs = sorted((Path(__file__).parents[1] / "configs").glob("*experiment*.yaml")) + sorted(
        (Path(__file__).parents[1] / "configs").glob("mnist_*.yaml")
    )
    assert configs
    for path in configs:
        load_experiment(path)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("experiment")
    report = run_experiment(TINY, out, progress=False)
    return out, report


def test_report_has_every_variant_averaged_over_seeds(finished):
    out, report = finished
    assert [row["variant"] for row in report["variants"]] == ["baseline", "ema"]
    assert report["extractor"].startswith("MNIST classifier")
    for row in report["variants"]:
        assert row["seeds"] == [0, 1] and row["steps"] == 6
        per_seed = [r["fid"] for r in row["per_seed"]]
        assert row["fid"] == pytest.approx(sum(per_seed) / 2)
        for key in ("is", "fid", "kid", "precision", "recall", "train_seconds"):
            assert row[key] is not None and row[f"{key}_spread"] is not None
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["variants"][1]["fid"] == report["variants"][1]["fid"]
    text = (out / "report.md").read_text()
    assert "| baseline |" in text and "| ema |" in text and "MNIST classifier" in text
    for name in ("samples.png", "metrics.png", "losses.png"):
        assert (out / name).stat().st_size > 1000
    evals = json.loads((out / "runs" / "ema" / "seed1" / "evals.json").read_text())
    assert [e["step"] for e in evals] == [3, 6]


def test_reported_fid_matches_a_direct_computation(finished):
    """The report's number is the metrics package's FID of the run's (EMA) generator on the same samples."""
    from course_lib import metrics

    out, report = finished
    generator = load_generator(out / "runs" / "ema" / "seed0")
    direct = metrics.fid(
        generator, "mnist:test", extractor="mnist", n_samples=64, seed=12345, limit=200, progress=False, use_cache=False
    )
    assert report["variants"][1]["per_seed"][0]["fid"] == pytest.approx(float(direct), rel=1e-6)


def test_finished_runs_are_not_redone_and_interrupted_ones_resume(finished, tmp_path):
    import shutil

    out, report = finished
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    done = copy / "runs" / "baseline" / "seed0" / "result.json"
    stamp = done.stat().st_mtime_ns
    # Interrupt one run half-way: drop its result and its last evaluation, keep the step-3 checkpoint.
    run = copy / "runs" / "ema" / "seed1"
    (run / "result.json").unlink()
    (run / "evals.json").write_text(json.dumps(json.loads((run / "evals.json").read_text())[:1]))
    again = run_experiment(TINY, copy, progress=False)
    assert done.stat().st_mtime_ns == stamp
    assert again["variants"][1]["per_seed"][1]["fid"] == pytest.approx(report["variants"][1]["per_seed"][1]["fid"])
    # A config that changed under a finished run is refused instead of silently mixed.
    changed = {**TINY, "base": {**TINY["base"], "width": 16}}
    with pytest.raises(ConfigError, match="other settings"):
        run_experiment(changed, copy, progress=False)


def test_cli_runs_a_subset_and_reports_when_complete(tmp_path, capsys):
    import yaml

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({**TINY, "seeds": [0], "base": {**TINY["base"], "steps": 3}}))
    out = tmp_path / "out"
    assert main(["experiment", str(config), "--out", str(out), "--quiet", "--only", "ema"]) == 0
    assert "wrote a partial report" in capsys.readouterr().out  # of ema alone, baseline listed as missing
    assert json.loads((out / "report.json").read_text())["missing"] == [{"variant": "baseline", "seed": 0}]
    assert main(["experiment", str(config), "--out", str(out), "--quiet"]) == 0
    assert (out / "report.md").exists() and "| baseline |" in capsys.readouterr().out
    assert main(["experiment", str(config), "--out", str(out), "--only", "nope"]) == 2


def test_reports_written_before_callbacks_still_render():
    """report.json files from before the callback rename (hook_seconds, hooks) are still read."""
    from pathlib import Path

    from course_lib.experiment.report import render_markdown

    shipped = Path(__file__).parents[1] / "docs" / "results" / "mnist_improvements" / "report.json"
    report = json.loads(shipped.read_text())
    text = render_markdown(report)
    assert "callback s" in text and "| baseline |" in text
    first = report["variants"][0]
    assert f"| {first['hook_seconds']:.0f} | baseline |" in text


def test_shipped_controller_report_has_what_notebook_11_prints():
    """Notebook 11 (normal mode) prints docs/results/mnist_diversity instead of training nine runs: the report must be
    the experiment of configs/mnist_diversity.yaml, complete (every variant and seed), with the controller logs and
    the provenance line the notebook reads."""
    from pathlib import Path

    import yaml

    from course_lib.experiment.report import render_markdown

    root = Path(__file__).parents[1]
    shipped = root / "docs" / "results" / "mnist_diversity"
    config = yaml.safe_load((root / "configs" / "mnist_diversity.yaml").read_text())
    report = json.loads((shipped / "report.json").read_text())
    assert report["name"] == config["name"] and report["seeds"] == config["seeds"]
    assert [row["variant"] for row in report["variants"]] == [v["name"] for v in config["variants"]]
    for row in report["variants"]:
        assert [s["seed"] for s in row["per_seed"]] == config["seeds"]
        for seed in row["per_seed"]:
            assert all(
                isinstance(seed[k], float) and math.isfinite(seed[k])
                for k in ("is", "fid", "kid", "precision", "recall")
            )
        controllers = [c for c in row["callbacks"] if c["callback"] == "diversity_controller"]
        assert len(controllers) == len(config["seeds"]) and all(c["seconds"] > 0 for c in controllers)
        assert "| " + row["variant"] + " |" in render_markdown(report)
    for variant in ("is-guided", "is-interpolation"):
        for seed in config["seeds"]:
            entries = [
                json.loads(line)
                for line in (shipped / "runs" / variant / f"seed{seed}" / "controller.jsonl").read_text().splitlines()
            ]
            decisions = [e for e in entries if "chosen_r" in e]
            assert len(decisions) == config["base"]["optim"]["steps"] // 100 and all(
                0 <= e["chosen_r"] <= 1 for e in decisions
            )
    made = json.loads((shipped / "provenance.json").read_text())
    assert {"command", "date", "machine", "wall_minutes", "load_before", "load_after"} <= set(made)


def test_real_image_row_carries_bootstrap_intervals_and_its_count(finished):
    """The real-image row is one set of images, not seeds: its intervals are a bootstrap over those images, and
    the report says how many there are."""
    out, report = finished
    real = report["real_data"]
    assert real["n_images"] == 64
    for key in ("fid", "precision", "recall"):
        interval = real["intervals"][key]
        assert interval["low"] <= interval["high"] and interval["method"].startswith("bootstrap over 64")
    assert real["intervals"]["precision"]["low"] <= real["precision"] <= real["intervals"]["precision"]["high"]
    text = (out / "report.md").read_text()
    assert "*real training images* (n = 64, ± bootstrap)" in text
    assert "Each row is one run, scored on 64 samples" in text
