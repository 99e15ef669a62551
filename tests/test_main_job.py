"""The main job (README's quick start): the recipe `course-lib train` applies to MNIST, and what `--epochs N` says."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

from course_lib.cli import main
from course_lib.cli.commands import describe_epochs, main_job_recipe
from course_lib.cli.main import build_parser
from course_lib.training import TrainConfig, steps_for_epochs
from course_lib.training.presets import MAIN_JOB_PRESET, PRESETS

BENCHMARK = Path(__file__).resolve().parent.parent / "benchmarks" / "main_job.py"


def parse(argv: list[str]):
    return build_parser().parse_args(argv)


def load_benchmark():
    spec = importlib.util.spec_from_file_location("main_job_benchmark", BENCHMARK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_command_gets_the_main_job_recipe():
    argv = load_benchmark().readme_command()  # the command benchmarks/main_job.py times
    assert argv[:2] == ["course-lib", "train"]
    assert main_job_recipe(parse(argv[1:])) == MAIN_JOB_PRESET


@pytest.mark.parametrize(
    "extra",
    [
        ["--config", "x.yaml"],
        ["--preset", "dcgan"],
        ["--dataset", "celeba"],
        ["--dataset", "mnist-full"],
        ["--arch", "mlp"],
    ],
)
def test_recipe_only_when_nothing_else_chose_the_settings(extra):
    assert main_job_recipe(parse(["train", "--out", "x", *extra])) is None


def test_recipe_departs_from_the_defaults_but_not_from_dcgan():
    recipe, defaults = TrainConfig.from_dict({"preset": MAIN_JOB_PRESET}), TrainConfig()
    assert recipe.model.arch == "dcgan" and recipe.loss.name == defaults.loss.name == "non-saturating"
    optim = recipe.optim
    assert (optim.optimizer, optim.beta1, optim.beta2, recipe.model.g_upsample) == ("adam", 0.5, 0.999, "nearest")
    assert optim.lr_g == optim.lr_d  # one learning rate, as in the paper (its value is the recipe's choice)
    preset = PRESETS[MAIN_JOB_PRESET]
    for section in ("model", "optim"):  # what differs from the defaults is exactly what the preset sets
        ours, base = recipe.to_dict()[section], defaults.to_dict()[section]
        changed = {k for k, v in ours.items() if v != base[k]}
        assert changed == {k for k, v in preset[section].items() if v != base[k]}
    assert recipe.callbacks == preset["callbacks"] and defaults.callbacks == []


def test_cli_trains_with_the_recipe_and_flags_override_it(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--dataset", "mnist", "--out", str(out), "--steps", "2", "--quiet", "--device", "cpu"]) == 0
    assert MAIN_JOB_PRESET in capsys.readouterr().out
    config = json.loads((out / "config.json").read_text())
    preset = PRESETS[MAIN_JOB_PRESET]
    assert {k: config["model"][k] for k in preset["model"]} == preset["model"]
    assert {k: config["optim"][k] for k in preset["optim"]} == {**preset["optim"], "steps": 2}
    assert config["callbacks"] == preset["callbacks"]


def test_epochs_states_its_steps_and_warns_when_far_too_few(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), "--epochs", "0.02", "--quiet", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    batch = PRESETS[MAIN_JOB_PRESET]["optim"]["batch_size"]
    steps = steps_for_epochs(0.02, 10_000, batch)  # the embedded set: 10,000 training digits
    assert f"--epochs 0.02 = {steps} generator steps" in captured.out
    assert "warning" in captured.err and str(PRESETS[MAIN_JOB_PRESET]["optim"]["steps"]) in captured.err
    assert json.loads((out / "config.json").read_text())["optim"]["steps"] == steps


def test_epochs_warning_suggests_enough_epochs():
    info, warning = describe_epochs(1, 156, 1500, 10_000, 64)
    assert "156 generator steps" in info
    suggested = float(re.search(r"--epochs ([\d.]+)", warning).group(1))
    assert steps_for_epochs(suggested, 10_000, 64) >= 1500  # the suggestion really reaches the recipe
    assert steps_for_epochs(suggested - 0.1, 10_000, 64) < 1500  # and is the smallest such tenth
    assert describe_epochs(5, 780, 1500, 10_000, 64)[1] is None  # half the recipe or more: no warning
    assert "5 discriminator steps" in describe_epochs(1, 32, 1500, 10_000, 64, d_steps=5)[0]
