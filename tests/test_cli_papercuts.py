"""Issue 34: the command line as a newcomer meets it. Where the shell matters (what is printed, the exit code, the
files left behind), the CLI runs as a subprocess from an empty folder, as after a fresh install."""

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import course_lib
from course_lib.cli import main
from course_lib.cli.commands import replaced_recipe_warning, settings_by_name
from course_lib.cli.main import build_parser
from course_lib.data import DATASETS
from course_lib.latent.pretrained import PRETRAINED
from course_lib.metrics.features import EXTRACTORS
from course_lib.metrics.inception import PREPROCESSING
from course_lib.nn.losses import LOSSES
from course_lib.nn.models import ARCHITECTURES
from course_lib.training import TrainConfig
from course_lib.training.presets import MAIN_JOB_PRESET, PRESETS

REPO = Path(course_lib.__file__).resolve().parents[1]
TINY = ["--batch-size", "16", "--quiet", "--device", "cpu"]


def course_lib_cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    """`course-lib ARGV` in a fresh process started in `cwd`, with this checkout's course_lib."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return subprocess.run(
        [sys.executable, "-m", "course_lib.cli", *argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    err = proc.stderr.strip()
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def snapshot(folder: Path) -> dict:
    """Every file under folder with its bytes and modification time."""
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("papercuts") / "run"
    cfg = out.parent / "tiny.json"
    cfg.write_text('{"width": 8, "latent_dim": 16, "log_every": 1}')
    assert main(["train", "--out", str(out), "--config", str(cfg), "--steps", "3", *TINY]) == 0
    return out


# 1. --resume with fewer steps than the run has: an error that says how many, and nothing rewritten.
def test_resume_with_fewer_steps_than_done_is_refused_and_rewrites_nothing(run_dir, tmp_path):
    before = snapshot(run_dir)
    proc = course_lib_cli("train", "--resume", str(run_dir), "--steps", "2", "--quiet", cwd=tmp_path)
    err = one_line_error(proc)
    assert "has 3 steps already" in err and "--steps 2" in err, err
    assert snapshot(run_dir) == before
    assert not list(tmp_path.iterdir())  # nor anything where it was started


def test_resume_of_a_finished_run_trains_and_writes_nothing(run_dir, capsys):
    before = snapshot(run_dir)
    assert main(["train", "--resume", str(run_dir), "--steps", "3", "--quiet"]) == 0
    assert "at step 3 of 3: nothing to train" in capsys.readouterr().out
    assert snapshot(run_dir) == before


# 2. Every list of names a user can pass comes from the registry it is checked against.
def help_of(command: str) -> str:
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return " ".join(subparsers.choices[command].format_help().split())


def names_in(text: str, names) -> list[str]:
    """The names that do NOT appear in text as whole words (wgan-gp is not found in wgan-gp-x)."""
    return [n for n in names if not re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", text)]


def test_help_lists_every_registered_name():
    train = help_of("train")
    for registry in (DATASETS, ARCHITECTURES, LOSSES, PRESETS):
        assert names_in(train, registry) == []
    assert names_in(help_of("sample"), PRETRAINED) == []
    for command in ("fid", "is"):
        assert names_in(help_of(command), (*EXTRACTORS, *PREPROCESSING)) == []


def test_help_and_errors_follow_the_registry(monkeypatch, tmp_path, capsys):
    """A name registered later shows up without anyone editing a help text."""
    monkeypatch.setitem(PRETRAINED, "newly-shipped-gan", PRETRAINED["mnist-dcgan"])
    monkeypatch.setitem(PRESETS, "newly-published-trick", {"description": "a trick published tomorrow"})
    monkeypatch.setitem(LOSSES, "newly-added-loss", LOSSES["hinge"])
    assert "newly-shipped-gan" in help_of("sample")
    assert "newly-published-trick" in help_of("train") and "newly-added-loss" in help_of("train")
    assert main(["sample", "--out", str(tmp_path / "g.png")]) == 2
    assert names_in(capsys.readouterr().err, PRETRAINED) == []


@pytest.mark.parametrize(
    "argv,registry",
    [
        (["sample", "--out", "{tmp}/g.png"], PRETRAINED),
        (["sample", "--pretrained", "nope", "--out", "{tmp}/g.png"], PRETRAINED),
        (["train", "--out", "{tmp}/x", "--dataset", "imagenet"], DATASETS),
        (["train", "--out", "{tmp}/x", "--preset", "nope"], PRESETS),
        (["train", "--out", "{tmp}/x", "--loss", "nope"], LOSSES),
    ],
)
def test_errors_list_every_registered_name(argv, registry, tmp_path, capsys):
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and names_in(err, registry) == [], err


def test_unknown_extractor_lists_the_registry(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["fid", "a", "b", "--extractor", "vgg"])
    assert exit_.value.code == 2 and names_in(capsys.readouterr().err, EXTRACTORS) == []


# 3. A corrupt config: one line with the file, the line and the column; exit code 2.
def test_corrupt_yaml_config_is_one_line_with_its_position(tmp_path):
    (tmp_path / "bad.yaml").write_text("width: 8\nsteps: : 3\n")  # the second colon of line 2, column 8
    proc = course_lib_cli("train", "--out", "run", "--config", "bad.yaml", cwd=tmp_path)
    err = one_line_error(proc)
    assert "bad.yaml: line 2, column 8: mapping values are not allowed here" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.yaml"]  # no run folder started


def test_corrupt_json_configs_are_one_line_with_their_position(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "width": 8,\n  "steps" 3\n}\n')  # line 3: the 3 in column 11 where ':' belongs
    assert main(["train", "--out", str(tmp_path / "run"), "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("bad.json: line 3, column 11: Expecting ':' delimiter") and len(err.splitlines()) == 1, err
    bad.write_text('{"name": "x",\n "variants": [{"name": "a"},]}')  # a trailing comma: the ] in line 2, column 29
    assert main(["experiment", str(bad), "--out", str(tmp_path / "exp")]) == 2
    err = capsys.readouterr().err.strip()
    assert "bad.json: line 2, column 29: Expecting value" in err and len(err.splitlines()) == 1, err


# 4. A preset that replaces the main-job recipe with a larger network or batch says so.
def test_a_preset_that_replaces_the_recipe_warns_about_its_size(tmp_path, capsys):
    argv = ["train", "--out", str(tmp_path / "ema"), "--preset", "ema", "--steps", "1", "--batch-size", "8", "--quiet"]
    assert main(argv) == 0
    err = capsys.readouterr().err
    recipe = settings_by_name(PRESETS[MAIN_JOB_PRESET])
    ema = TrainConfig.from_dict({"preset": "ema"})  # the fields ema leaves alone take the defaults
    assert f"--preset ema replaces the main job's recipe ({MAIN_JOB_PRESET})" in err
    assert f"width {ema.model.width} and batch_size 8" in err
    assert f"the recipe has {recipe['width']} and {recipe['batch_size']}" in err


def test_no_size_warning_where_nothing_is_replaced_or_the_size_is_kept():
    parse = build_parser().parse_args

    def warning(argv, values):
        return replaced_recipe_warning(parse(["train", "--out", "x", *argv]), TrainConfig.from_dict(values))

    recipe = settings_by_name(PRESETS[MAIN_JOB_PRESET])
    assert warning([], {"preset": [MAIN_JOB_PRESET]}) is None  # no --preset: the recipe itself
    assert warning(["--preset", "ema", "--dataset", "fashion-mnist"], {"preset": "ema"}) is None  # no recipe there
    kept = {"preset": "ema", "width": recipe["width"], "batch_size": recipe["batch_size"]}
    assert warning(["--preset", "ema"], kept) is None
    only_width = warning(["--preset", "ema", "--batch-size", str(recipe["batch_size"])], {**kept, "width": 64})
    assert "width 64" in only_width and "batch_size" not in only_width


# 5. `course-lib experiment --steps/--set`, and a partial report of what finished.
EXPERIMENT = {
    "name": "tiny",
    "base": {"dataset": "mnist", "limit": 256, "width": 8, "batch_size": 16, "steps": 600, "log_every": 3},
    "seeds": [0, 1],
    "eval": {"every": 300, "n_samples": 64, "n_reference": 200, "extractor": "mnist", "kid_subset": 50},
    "variants": [{"name": "baseline"}, {"name": "ema", "preset": "ema", "steps": 900}],
}
SMALL = ["--steps", "3", "--set", "seeds=[0]", "--set", "eval.every=0", "--set", "variants.ema.ema=0.99", "--quiet"]


def test_experiment_overrides_and_partial_reports(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(EXPERIMENT))
    out = tmp_path / "out"
    assert main(["experiment", str(config), "--out", str(out), *SMALL, "--only", "ema"]) == 0
    assert "wrote a partial report" in capsys.readouterr().out
    recorded = json.loads((out / "experiment.json").read_text())
    assert recorded["seeds"] == [0] and recorded["base"]["steps"] == 3 and recorded["variants"][1]["steps"] == 3
    assert recorded["variants"][1]["ema"] == 0.99 and recorded["eval"]["every"] == 0
    report = json.loads((out / "report.json").read_text())
    assert report["partial"] is True and report["missing"] == [{"variant": "baseline", "seed": 0}]
    assert [row["variant"] for row in report["variants"]] == ["ema"] and report["variants"][0]["steps"] == 3
    assert report["variants"][0]["beats_baseline_on_is_and_fid"] is None  # no baseline to compare with yet
    text = (out / "report.md").read_text()
    assert "Partial report: 1 of 2 runs finished" in text and "Missing: baseline seed 0" in text
    assert "| ema |" in text and "| baseline |" not in text
    # The same command without --only finishes the rest; the full report replaces the partial one.
    assert main(["experiment", str(config), "--out", str(out), *SMALL]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["partial"] is False and "missing" not in report
    assert [row["variant"] for row in report["variants"]] == ["baseline", "ema"]
    assert "Partial" not in (out / "report.md").read_text()


def test_an_interrupted_experiment_reports_what_finished(tmp_path, capsys, monkeypatch):
    from course_lib.experiment import runner

    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(EXPERIMENT))
    real_run_one, calls = runner.run_one, []

    def interrupted_second_run(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run_one(*args, **kwargs)

    monkeypatch.setattr(runner, "run_one", interrupted_second_run)
    out = tmp_path / "out"
    assert main(["experiment", str(config), "--out", str(out), *SMALL]) == 130
    report = json.loads((out / "report.json").read_text())
    assert report["partial"] is True and report["missing"] == [{"variant": "ema", "seed": 0}]
    assert [row["variant"] for row in report["variants"]] == ["baseline"]
    assert "interrupted" in capsys.readouterr().err


def test_bad_overrides_are_one_line_errors(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(EXPERIMENT))
    for argv, message in (
        (["--set", "nonsense"], "expects KEY=VALUE"),
        (["--set", "variants.nope.ema=0.9"], "no 'variants.nope'"),
        (["--set", "base.learning_rate=1"], "unknown setting"),
        (["--steps", "0"], "--steps must be a positive integer"),
    ):
        assert main(["experiment", str(config), "--out", str(tmp_path / "out"), *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "out").exists()


# 7. Each default shown once in every command's help.
def option_entries(help_text: str) -> list[str]:
    """The help of each option: its lines from '  --flag' to the next option."""
    entries, current = [], None
    for line in help_text.splitlines():
        if re.match(r"^  -", line):
            current = [line]
            entries.append(current)
        elif current is not None and line.startswith("   "):
            current.append(line)
        else:
            current = None
    return [" ".join(" ".join(e).split()) for e in entries]


def test_every_default_is_shown_once():
    subparsers = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    for command, parser in subparsers.choices.items():
        for entry in option_entries(parser.format_help()):
            assert entry.lower().count("default") <= 1, (command, entry)


def test_train_help_from_the_shell_shows_defaults_once(tmp_path):
    proc = course_lib_cli("train", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "[default: mnist]" in text and "(default: None)" not in text and "(default: False)" not in text
    assert text.count("[default: mnist]") == 1


def test_readme_preset_times_are_the_shipped_reports():
    """README's per-preset table states the numbers of docs/results/preset_step_times/report.json, no others."""
    root = Path(__file__).resolve().parents[1]
    report = json.loads((root / "docs/results/preset_step_times/report.json").read_text())
    rows = {
        line.split("|")[1].strip().strip("`"): [cell.strip() for cell in line.split("|")[2:-1]]
        for line in (root / "README.md").read_text().splitlines()
        if line.startswith("| `")
    }
    for preset in report["presets"]:
        width_batch, d_steps, cpu, minutes = rows[preset["preset"]]
        assert width_batch == f"{preset['width']} / {preset['batch_size']}" and d_steps == str(preset["d_steps"])
        low, high = preset["cpu_seconds_per_step_min_max"]
        assert cpu == f"{preset['cpu_seconds_per_step']:.2f} ({low:.2f}-{high:.2f})"  # median (min-max)
        assert minutes == f"{preset['minutes_for_its_steps_at_cpu_rate']:.0f}" and preset["steps"] == 1000
