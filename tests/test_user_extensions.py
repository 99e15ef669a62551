"""Adding a loss term, a callback or a metric in one file of your own (issue 27, point 4): the classes live in
tests/user_extensions.py, outside course_lib, and are used by name from a config, a resume, the evaluator and the
command line."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import user_extensions
import yaml

from course_lib.core.errors import ConfigError
from course_lib.data import load_dataset
from course_lib.metrics import GeneratorEvaluator, MetricInputError
from course_lib.training import TrainConfig, Trainer

TERM, CALLBACK, METRIC = (f"user_extensions:{n}" for n in ("OrthogonalWeights", "StepCounter", "MeanBrightness"))
TINY = {
    "model.width": 4,
    "model.latent_dim": 8,
    "optim.batch_size": 8,
    "run.log_every": 1,
    "run.sample_every": 1000,
    "run.checkpoint_every": 1000,
}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist", limit=64)


def _config(steps, **extra):
    return TrainConfig.from_dict(
        {
            **TINY,
            "optim.steps": steps,
            "loss": {"terms": [{"name": TERM, "weight": 1e-3}, {"name": "user-zero"}]},
            "callbacks": [{"name": CALLBACK}],
            **extra,
        }
    )


def test_a_term_and_a_callback_from_the_users_file_train_and_resume_exactly(digits, tmp_path):
    straight = Trainer(_config(4), tmp_path / "straight", data=digits).train()
    term = next(t for t in straight.terms if isinstance(t, user_extensions.OrthogonalWeights))
    counter = next(c for c in straight.callbacks if isinstance(c, user_extensions.StepCounter))
    assert term.weight == 1e-3 and term.calls == 4 and counter.seen == 4
    logged = [row["orthogonal"] for row in straight.history]
    assert len(logged) == 4 and all(v > 0 for v in logged)

    Trainer(_config(4), tmp_path / "split", data=digits).train(steps=2)
    resumed = Trainer.resume(tmp_path / "split", data=digits).train()
    assert next(t for t in resumed.terms if isinstance(t, user_extensions.OrthogonalWeights)).calls == 4
    assert next(c for c in resumed.callbacks if isinstance(c, user_extensions.StepCounter)).seen == 4
    for a, b in zip(straight.generator.state_dict().values(), resumed.generator.state_dict().values()):
        assert torch.equal(a, b)
    saved = json.loads((tmp_path / "split" / "config.json").read_text())
    assert saved["loss"]["terms"][0]["name"] == TERM and saved["callbacks"][0]["name"] == CALLBACK


def test_names_that_do_not_lead_to_a_class_of_the_right_kind_are_one_line_errors():
    with pytest.raises(ConfigError, match="cannot import 'no_such_module'"):
        TrainConfig.from_dict({"loss": {"terms": [{"name": "no_such_module:Thing"}]}})
    with pytest.raises(ConfigError, match="has no 'Missing'"):
        TrainConfig.from_dict({"loss": {"terms": [{"name": "user_extensions:Missing"}]}})
    with pytest.raises(ConfigError, match="not a subclass of LossTerm"):
        TrainConfig.from_dict({"loss": {"terms": [{"name": CALLBACK}]}})  # a callback is not a loss term
    with pytest.raises(MetricInputError, match="not a subclass of Metric"):
        GeneratorEvaluator([TERM], n_samples=4)


def test_the_users_metrics_are_computed_by_the_evaluator_beside_the_built_in_ones():
    torch.manual_seed(0)
    generator = torch.nn.Sequential(torch.nn.Linear(8, 28 * 28), torch.nn.Tanh(), torch.nn.Unflatten(1, (1, 28, 28)))
    generator.latent_dim = 8
    evaluator = GeneratorEvaluator(
        [METRIC, "mean_abs_logit", "is"], extractor="mnist", n_samples=64, seed=3, device="cpu", is_splits=1
    )
    scores = evaluator(generator)
    z = evaluator.noise(8)
    with torch.no_grad():
        images = generator(z)
    assert scores[METRIC] == pytest.approx(float(images.mean()), abs=1e-6)
    assert scores["mean_abs_logit"] > 0 and scores["is"] >= 1.0
    real = evaluator.score_images(load_dataset("mnist", limit=64).images)
    assert real[METRIC] is None  # given images, there are no generated samples to keep


def test_the_command_line_trains_with_a_term_named_from_a_file_in_the_folder_it_runs_in(tmp_path):
    source = Path(user_extensions.__file__).read_text()
    (tmp_path / "my_penalties.py").write_text(source)
    config = {
        "data": {"dataset": "mnist", "limit": 64},
        "model": {"width": 4, "latent_dim": 8},
        "optim": {"steps": 2, "batch_size": 8},
        "loss": {"terms": [{"name": "my_penalties:OrthogonalWeights", "weight": 1e-3}]},
        "callbacks": [{"name": "my_penalties:StepCounter"}],
        "run": {"log_every": 1, "sample_every": 1000, "checkpoint_every": 1000, "device": "cpu"},
    }
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    root = Path(__file__).resolve().parents[1]
    env["PYTHONPATH"] = str(root)  # this checkout's course_lib, never the tests folder
    # The installed script, as a student runs it: unlike `python -c`, it does not put the folder on sys.path.
    script = shutil.which("course-lib")
    if script is None:
        pytest.skip("the course-lib script is not installed (pip install -e .)")
    done = subprocess.run(
        [sys.executable, script, "train", "--config", "mine.yaml", "--out", "run", "--quiet"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "orthogonal" in r] == [1, 2]


def test_course_lib_metrics_reads_the_registry_and_agrees_with_the_metric_functions(capsys, monkeypatch):
    from course_lib import metrics
    from course_lib.cli.main import main

    monkeypatch.chdir(Path(__file__).parent)
    args = ["metrics", "mnist:test", "--reference", "mnist", "--extractor", "mnist", "--limit", "200"]
    assert main([*args, "--metrics", f"fid,kid,{METRIC}", "--json", "--no-progress"]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    expected = metrics.fid("mnist:test", "mnist", extractor="mnist", limit=200, progress=False).value
    assert printed["fid"] == pytest.approx(expected, rel=1e-6)
    assert printed[METRIC] is None and printed["kid"] is not None
    assert main([*args, "--metrics", "no_such_metric"]) == 2
    assert "unknown metric 'no_such_metric'; registered: is, fid, kid" in capsys.readouterr().err
