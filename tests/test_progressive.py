"""Progressive growing (course_lib.nn.progressive) and its schedule (training/callbacks/progressive.py):
shapes at every level, an exact fade-in (alpha = 0 is the old network), a continuous alpha, the
schedule, and a run that grows, checkpoints and resumes to bit-identical results."""

import pytest
import torch

from course_lib.core.errors import CheckpointError, ConfigError
from course_lib.nn.progressive import ProgressiveDiscriminator, ProgressiveGenerator
from course_lib.training.callbacks.progressive import ProgressiveGrowth, growth_at


@pytest.fixture
def models():
    torch.manual_seed(0)
    return ProgressiveGenerator(latent_dim=8, width=4).eval(), ProgressiveDiscriminator(width=4).eval()


def test_shapes_at_every_level(models):
    g, d = models
    z = torch.randn(4, 8)
    for level, size in enumerate((7, 14, 28)):
        g.set_growth(level, 1.0)
        d.set_growth(level, 1.0)
        x = g(z)
        assert x.shape == (4, 1, 28, 28) and g.resolution == size
        blocks = x.unfold(2, 28 // size, 28 // size).unfold(3, 28 // size, 28 // size)
        assert torch.equal(blocks.amax(dim=(-1, -2)), blocks.amin(dim=(-1, -2)))  # drawn at `size`, upsampled
        assert d(x).shape == (4,) and d.forward_all(x)["features"].shape[0] == 4


@pytest.mark.parametrize("level", [1, 2])
def test_fade_in_starts_from_the_old_network_exactly(models, level):
    g, d = models
    z, x = torch.randn(4, 8), torch.rand(4, 1, 28, 28) * 2 - 1
    g.set_growth(level - 1, 1.0)
    d.set_growth(level - 1, 1.0)
    old_image, old_logits = g(z), d(x)
    g.set_growth(level, 0.0)
    d.set_growth(level, 0.0)
    assert torch.equal(g(z), old_image) and torch.equal(d(x), old_logits)
    g.set_growth(level, 1e-4)  # continuous in alpha
    d.set_growth(level, 1e-4)
    assert torch.allclose(g(z), old_image, atol=1e-3) and torch.allclose(d(x), old_logits, atol=1e-3)
    g.set_growth(level, 1.0)
    assert not torch.allclose(g(z), old_image, atol=1e-3)


def test_schedule():
    table = [growth_at(s, 4, 2) for s in range(14)]
    assert table[:4] == [(0, 1.0)] * 4
    assert table[4:7] == [(1, 0.0), (1, 0.5), (1, 1.0)]
    assert table[7:10] == [(1, 1.0)] * 3
    assert table[10:13] == [(2, 0.0), (2, 0.5), (2, 1.0)] and table[13] == (2, 1.0)
    assert ProgressiveGrowth(4, 2).schedule_length() == 12


def _config(**overrides):
    from course_lib.training import TrainConfig

    return TrainConfig.from_dict(
        {
            "preset": "progressive",
            "model.width": 4,
            "model.latent_dim": 8,
            "optim.batch_size": 8,
            "optim.steps": 10,
            "run.log_every": 1,
            "run.checkpoint_every": 5,
            "run.sample_every": 100,
            "run.n_fixed": 4,
            "run.seed": 1,
            "callbacks": [{"name": "ema", "decay": 0.9}, {"name": "progressive", "stable_steps": 2, "fade_steps": 2}],
            **overrides,
        }
    )


def test_growth_runs_and_resumes_bit_identically(tmp_path):
    from course_lib.data import load_dataset
    from course_lib.training import Trainer

    data = load_dataset("mnist", split="train", limit=64)
    straight = Trainer(_config(), tmp_path / "a", data=data, progress=False).train()
    assert [(r["resolution"], r["alpha"]) for r in straight.history] == [
        (7, 1.0),
        (7, 1.0),
        (14, 0.0),
        (14, 0.5),
        (14, 1.0),
        (14, 1.0),
        (28, 0.0),
        (28, 0.5),
        (28, 1.0),
        (28, 1.0),
    ]
    assert int(straight.generator.level) == 2 and int(straight.generator_for_eval().level) == 2

    Trainer(_config(), tmp_path / "b", data=data, progress=False).train(steps=3)  # stops mid-fade, checkpointed
    resumed = Trainer.resume(tmp_path / "b", data=data, progress=False)
    grown = resumed.callbacks[-1]
    assert (grown.level, grown.alpha) == (1, 0.5) and float(resumed.discriminator.alpha) == 0.5
    resumed.train()
    assert resumed.history == straight.history
    for a, b in (
        (resumed.generator, straight.generator),
        (resumed.discriminator, straight.discriminator),
        (resumed.generator_for_eval(), straight.generator_for_eval()),
    ):
        for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(p, q), name


def test_bad_settings_are_one_line_errors(models, tmp_path):
    from course_lib.data import load_dataset
    from course_lib.training import TrainConfig, Trainer

    g, _ = models
    cases = [
        (lambda: g.set_growth(3, 1.0), ConfigError, "level"),
        (lambda: g.set_growth(1, 1.5), ConfigError, "alpha"),
        (lambda: ProgressiveGrowth(-1, 2), ConfigError, "stable_steps"),
        (lambda: ProgressiveDiscriminator(width=4)(torch.zeros(2, 1, 32, 32)), ConfigError, "shape"),
        (
            lambda: Trainer(
                TrainConfig.from_dict(
                    {
                        "model.width": 4,
                        "model.latent_dim": 8,
                        "optim.batch_size": 8,
                        "callbacks": [{"name": "progressive"}],
                    }
                ),
                data=load_dataset("mnist", split="train", limit=16),
                progress=False,
            ),
            ConfigError,
            "growing generator",
        ),
        (
            lambda: ProgressiveGrowth(2, 2).load_state_dict(
                {"stable_steps": 3, "fade_steps": 2, "level": 0, "alpha": 1.0}
            ),
            CheckpointError,
            "schedule",
        ),
    ]
    for call, error, words in cases:
        with pytest.raises(error, match=words) as info:
            call()
        assert "\n" not in str(info.value)
