"""Loss terms and callbacks: R1 as a term added without touching the step, the generic step, the
callback lifecycle, and checkpoints written before terms and callbacks existed."""

import inspect
import json
import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from course_lib.core.errors import ConfigError
from course_lib.data import load_dataset
from course_lib.nn.losses import r1_penalty
from course_lib.training import TrainConfig, Trainer
from course_lib.training import trainer as trainer_module
from course_lib.training.callbacks import Callback, register_callback
from course_lib.training.checkpoint import load_checkpoint, load_generator
from course_lib.training.terms import R1Penalty, build_terms

FIXTURES = Path(__file__).parent / "fixtures"
SMALL = {
    "model.width": 8,
    "model.latent_dim": 16,
    "optim.batch_size": 16,
    "run.log_every": 1,
    "run.sample_every": 100,
    "run.checkpoint_every": 100,
}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist", split="train", limit=256)


def test_r1_penalty_of_a_linear_critic_is_the_squared_weight_norm():
    """D(x) = w.x + b has grad_x D = w everywhere, so E||grad||^2 = ||w||^2 whatever the inputs."""
    critic = nn.Linear(12, 1)
    real = torch.randn(7, 12)
    expected = float((critic.weight.detach() ** 2).sum())
    assert math.isclose(float(r1_penalty(lambda x: critic(x).flatten(), real).detach()), expected, rel_tol=1e-6)


def test_r1_penalty_of_a_quadratic_critic_by_hand():
    """D(x) = sum(x^2) / 2 per sample has grad_x D = x, so the penalty is the mean squared norm of the real
    images; on image-shaped inputs, and only the real ones matter."""
    real = torch.randn(5, 1, 4, 4)
    penalty = r1_penalty(lambda x: 0.5 * (x**2).flatten(1).sum(1), real)
    assert math.isclose(float(penalty.detach()), float((real**2).flatten(1).sum(1).mean()), rel_tol=1e-6)
    assert penalty.requires_grad is False or penalty.grad_fn is not None  # differentiable: D can minimise it


def test_r1_gradient_flows_to_the_critic_parameters():
    critic = nn.Linear(3, 1)
    r1_penalty(lambda x: critic(x).flatten(), torch.randn(4, 3)).backward()
    # d||w||^2/dw = 2w
    assert torch.allclose(critic.weight.grad, 2 * critic.weight.detach(), atol=1e-6)


def test_r1_preset_builds_the_term_and_the_trainer_logs_gamma_over_two_times_the_penalty(digits):
    cfg = TrainConfig.from_dict({**SMALL, "optim.steps": 2, "preset": "r1"})
    assert cfg.loss.terms == [{"name": "r1", "gamma": 10.0}] and cfg.model.d_norm == "none"
    r1 = [t for t in build_terms(cfg) if isinstance(t, R1Penalty)]
    assert len(r1) == 1 and r1[0].gamma == 10.0
    trainer = Trainer(cfg, data=digits, progress=False).train()
    assert all(row["r1_penalty"] > 0 for row in trainer.history)
    # The logged penalty is the one the term computes on that step's real batch before D's update:
    # recompute it for a fresh trainer's first batch.
    fresh = Trainer(cfg, data=digits, progress=False)
    real, _ = fresh.loader.batch(0)
    expected = float(r1_penalty(fresh.discriminator, real).detach())
    fresh.train(steps=1)
    assert math.isclose(fresh.history[0]["r1_penalty"], expected, rel_tol=1e-5)
    with pytest.raises(ConfigError, match="loss term 'r1': gamma must be a number >= 0"):
        TrainConfig.from_dict({"loss.terms.r1.gamma": -1.0})


def test_the_training_step_names_no_loss_and_no_trick():
    """The step is generic: variants live in the terms. (R1 was added without touching it.)"""
    step = inspect.getsource(trainer_module.Trainer.train_step) + inspect.getsource(trainer_module.Trainer._loss)
    for name in (
        "wgan",
        "hinge",
        "lsgan",
        "cgan",
        "acgan",
        "infogan",
        "ema",
        "r1",
        "clip",
        "penalty",
        "smoothing",
        "feature_matching",
        "historical",
        "instance_noise",
        "cfg.loss",
        "config.loss",
    ):
        assert not re.search(rf"\b{re.escape(name)}", step), name
    # One branch is left: the last discriminator step keeps the fakes' graph for the generator step.
    # (Before the terms, the step had 12 ifs and 5 conditional expressions.)
    assert len(re.findall(r"\bif\b", inspect.getsource(trainer_module.Trainer.train_step))) == 1


class Recorder(Callback):
    name = "recorder"

    def __init__(self):
        self.events, self.seen = [], 0

    def setup(self, ctx):
        self.events.append("setup")

    def on_train_start(self, ctx):
        self.events.append(f"start@{ctx.step}")

    def on_step_end(self, ctx, metrics):
        self.seen += 1
        assert "loss_d" in metrics and "loss_g" in metrics

    def on_train_end(self, ctx):
        self.events.append(f"end@{ctx.step}")

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        self.seen = state["seen"]


def test_callback_lifecycle_pauses_and_the_end_of_the_run(digits, tmp_path):
    """Experiments train in segments: a train() call short of config.steps is a pause (start again, no
    end); on_train_end comes once the run reaches its length, or the longer target of a call going
    beyond it. A callback's state and its measured time survive a resume."""
    recorder = Recorder()
    trainer = Trainer(
        TrainConfig.from_dict({**SMALL, "optim.steps": 6}), tmp_path, data=digits, callbacks=[recorder], progress=False
    )
    trainer.train(steps=3)
    trainer.train(steps=3)  # nothing left to do: no start, no end
    trainer.train()
    trainer.train(steps=8)  # training on past the configured length ends at the new target
    assert recorder.events == ["setup", "start@0", "start@3", "end@6", "start@6", "end@8"]
    assert recorder.seen == 8 and trainer.seconds_of(recorder) == trainer.callback_seconds["recorder"] > 0
    resumed = Trainer.resume(tmp_path, data=digits, callbacks=[Recorder()], progress=False)
    assert resumed.callbacks[-1].seen == 8
    assert resumed.callback_seconds["recorder"] == trainer.callback_seconds["recorder"]


def test_registered_callbacks_are_built_from_a_config(digits):
    @register_callback("test_counter")
    class Counter(Callback):
        def __init__(self, every: int = 1):
            self.every, self.calls = every, 0

        def on_step_end(self, ctx, metrics):
            self.calls += ctx.step % self.every == 0

    config = TrainConfig.from_dict({**SMALL, "optim.steps": 4, "callbacks": [{"name": "test_counter", "every": 2}]})
    trainer = Trainer(config, data=digits, progress=False).train()
    (counter,) = trainer.callbacks
    assert isinstance(counter, Counter) and counter.calls == 2 and "test_counter" in trainer.callback_seconds
    with pytest.raises(ConfigError, match="bad settings for callback 'test_counter'"):
        TrainConfig.from_dict({**SMALL, "callbacks": [{"name": "test_counter", "evry": 2}]})
    with pytest.raises(ConfigError, match="unknown callback"):
        TrainConfig(callbacks=[{"name": "no_such_callback"}])
    with pytest.raises(ConfigError, match="callback 'ema': EMA decay must be in"):
        TrainConfig(callbacks=[{"name": "ema", "decay": 1.5}])


def test_ema_is_a_callback_and_serves_evaluation(digits):
    config = TrainConfig.from_dict({**SMALL, "optim.steps": 3, "callbacks": [{"name": "ema", "decay": 0.9}]})
    trainer = Trainer(config, data=digits, progress=False).train()
    (ema,) = trainer.callbacks
    assert ema.name == "ema" and trainer.generator_for_eval() is ema.average.module
    assert ema.average.updates == 3


@pytest.mark.parametrize("name", ["ema-ha-noise", "diversity"])
def test_format_1_checkpoints_load_and_resume_to_the_numbers_the_old_trainer_produced(name, digits):
    """tests/fixtures/format1_*_step4.pt were written at step 4 by the trainer before loss terms and callbacks
    (commit f3a5453); format1_continued.json holds what that trainer logged when it went on to step 8.
    The new trainer upgrades the file and continues to the same numbers."""
    path = FIXTURES / f"format1_{name}_step4.pt"
    state = load_checkpoint(path)
    assert state["format"] == "course_lib.checkpoint/3" and "hooks" not in state["config"]  # upgraded twice
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        resumed = Trainer.resume(path, data=digits, progress=False)
        resumed.out_dir = None  # train in memory: the fixture stays untouched
        resumed.train()
    finally:
        torch.set_num_threads(threads)
    expected = json.loads((FIXTURES / "format1_continued.json").read_text())[name]
    assert [r["step"] for r in resumed.history] == [r["step"] for r in expected]
    for row, old in zip(resumed.history, expected):
        for key in ("loss_d", "loss_g", "d_real", "d_fake"):
            assert math.isclose(row[key], old[key], rel_tol=1e-5, abs_tol=1e-7), (name, row["step"], key)
    if name == "ema-ha-noise":
        assert resumed.term("instance-noise") is not None and resumed.term("historical_averaging") is not None
        generator = load_generator(path)  # the EMA copy, read from the upgraded file
        ema_state = state["callbacks"][state["evaluation_generator"]]["state"]["module"]
        assert all(torch.equal(a, ema_state[k]) for k, a in generator.state_dict().items())
