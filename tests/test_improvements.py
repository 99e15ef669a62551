"""The improvements chapter: losses, discriminator layers, training tricks, presets, and the trainer composing them."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from course_lib.core.errors import ConfigError
from course_lib.data import load_dataset
from course_lib.nn.layers import MinibatchDiscrimination, MinibatchStdDev, top_singular_value
from course_lib.nn.losses import feature_matching, get_loss, gradient_penalty
from course_lib.nn.models import DCGANDiscriminator, build_models
from course_lib.training import TrainConfig, Trainer
from course_lib.training.callbacks.ema import ExponentialMovingAverage
from course_lib.training.presets import PRESETS
from course_lib.training.terms import HistoricalAverage, instance_noise_std

REAL = torch.tensor([2.0, -0.5, 0.3, 1.5])
FAKE = torch.tensor([-1.0, 0.7, 4.0, -3.0])


def grads(fn, *tensors):
    leaves = [t.clone().requires_grad_(True) for t in tensors]
    return torch.autograd.grad(fn(*leaves), leaves)


def test_least_squares_loss_values_and_gradient_signs():
    loss = get_loss("lsgan")
    expected_d = 0.5 * ((REAL - 1) ** 2).mean() + 0.5 * (FAKE**2).mean()
    assert torch.allclose(loss.discriminator(REAL, FAKE), expected_d)
    assert torch.allclose(loss.generator(FAKE), 0.5 * ((FAKE - 1) ** 2).mean())
    g_real, g_fake = grads(loss.discriminator, REAL, FAKE)
    # D pulls real scores towards 1 and fake scores towards 0: gradient sign = sign(score - target).
    assert torch.equal(torch.sign(g_real), torch.sign(REAL - 1)) and torch.equal(torch.sign(g_fake), torch.sign(FAKE))
    (g_gen,) = grads(loss.generator, FAKE)
    assert torch.equal(torch.sign(g_gen), torch.sign(FAKE - 1))
    # Unlike the BCE losses, a fake far on the "real" side (score 4) is still pulled back towards 1.
    assert g_gen[2] > 0


def test_hinge_loss_values_and_gradient_signs():
    loss = get_loss("hinge")
    expected = torch.relu(1 - REAL).mean() + torch.relu(1 + FAKE).mean()
    assert torch.allclose(loss.discriminator(REAL, FAKE), expected)
    g_real, g_fake = grads(loss.discriminator, REAL, FAKE)
    # Only margin violators get gradient: real scores below 1, fake scores above -1.
    assert torch.equal(g_real < 0, REAL < 1) and torch.equal(g_real == 0, REAL >= 1)
    assert torch.equal(g_fake > 0, FAKE > -1) and torch.equal(g_fake == 0, FAKE <= -1)
    (g_gen,) = grads(loss.generator, FAKE)
    assert (g_gen < 0).all()  # the generator raises every fake's score


@pytest.mark.parametrize("name", ["wgan-clip", "wgan-gp"])
def test_wasserstein_losses(name):
    loss = get_loss(name)
    assert torch.allclose(loss.discriminator(REAL, FAKE), FAKE.mean() - REAL.mean())
    g_real, g_fake = grads(loss.discriminator, REAL, FAKE)
    assert torch.allclose(g_real, torch.full((4,), -0.25)) and torch.allclose(g_fake, torch.full((4,), 0.25))
    assert torch.allclose(loss.generator(FAKE), -FAKE.mean())


def test_one_sided_label_smoothing_changes_only_the_real_target():
    bce = get_loss("non-saturating")
    s = 0.1
    p_real, p_fake = torch.sigmoid(REAL), torch.sigmoid(FAKE)
    expected = nn.functional.binary_cross_entropy(p_real, torch.full((4,), 1 - s)) + nn.functional.binary_cross_entropy(
        p_fake, torch.zeros(4)
    )
    assert torch.allclose(bce.discriminator(REAL, FAKE, 1 - s), expected, atol=1e-6)
    # With smoothing the optimal real logit is finite: log(0.9 / 0.1), where the gradient vanishes.
    best = torch.tensor([math.log((1 - s) / s)])
    (g_real, _) = grads(lambda r, f: bce.discriminator(r, f, 1 - s), best, torch.zeros(1))
    assert abs(g_real.item()) < 1e-6
    with pytest.raises(ConfigError, match="label_smoothing applies to"):
        TrainConfig(loss={"name": "hinge", "label_smoothing": 0.1})


def test_gradient_penalty_equals_the_autograd_norm_computation():
    torch.manual_seed(0)
    critic = nn.Sequential(nn.Flatten(), nn.Linear(12, 16), nn.Tanh(), nn.Linear(16, 1))
    real, fake = torch.randn(5, 3, 2, 2), torch.randn(5, 3, 2, 2)
    rng = torch.Generator().manual_seed(7)
    penalty = gradient_penalty(lambda x: critic(x).flatten(), real, fake, rng)
    # The same interpolation points, one sample at a time.
    eps = torch.rand(5, 1, 1, 1, generator=torch.Generator().manual_seed(7))
    expected = 0.0
    for i in range(5):
        x = (eps[i] * real[i] + (1 - eps[i]) * fake[i]).unsqueeze(0).requires_grad_(True)
        (g,) = torch.autograd.grad(critic(x).sum(), x)
        expected += (g.norm() - 1) ** 2 / 5
    assert torch.allclose(penalty, expected, atol=1e-6)
    # Closed form: a linear critic D(x) = <w, x> has gradient w everywhere.
    w = torch.randn(12)
    linear = lambda x: x.flatten(1) @ w  # noqa: E731
    assert torch.allclose(gradient_penalty(linear, real, fake), (w.norm() - 1) ** 2, atol=1e-5)
    # The penalty is differentiable (it is minimised): the critic's weights get a gradient from it.
    penalty.backward()
    assert critic[1].weight.grad is not None and critic[1].weight.grad.abs().sum() > 0


def test_feature_matching_is_the_squared_distance_of_feature_means():
    real, fake = torch.randn(8, 5), torch.randn(6, 5, requires_grad=True)
    value = feature_matching(real, fake)
    assert torch.allclose(value, ((real.mean(0) - fake.mean(0)) ** 2).sum())
    value.backward()
    assert fake.grad is not None  # only the generator side gets a gradient; real features are detached
    assert feature_matching(real, real.clone()).item() == 0


def test_spectral_norm_keeps_the_top_singular_value_near_one():
    torch.manual_seed(0)
    D = DCGANDiscriminator(28, 1, 8, norm="none", spectral_norm=True)
    for layer in D.modules():
        if isinstance(layer, nn.Conv2d):  # make the raw weights large: without SN, sigma >> 1
            layer.parametrizations.weight.original.data.mul_(50)
    x = torch.randn(4, 1, 28, 28)
    for _ in range(30):  # each forward pass in train mode runs one power iteration per layer
        D(x)
    D.eval()
    sigmas = [top_singular_value(m.weight) for m in D.modules() if isinstance(m, nn.Conv2d)]
    raw = [top_singular_value(m.parametrizations.weight.original) for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert len(sigmas) == 3 and all(abs(s - 1) < 0.05 for s in sigmas), sigmas
    assert min(raw) > 5


def test_minibatch_discrimination_shapes_and_identical_samples():
    torch.manual_seed(0)
    layer = MinibatchDiscrimination(in_features=12, kernels=7, kernel_dim=3)
    varied = layer(torch.randn(6, 12))
    assert varied.shape == (6, 12 + 7)
    same = layer(torch.randn(1, 12).repeat(6, 1))
    # Identical samples: every distance is 0, so each kernel's closeness sum is exactly n - 1 = 5 (the maximum).
    assert torch.allclose(same[:, 12:], torch.full((6, 7), 5.0))
    assert (varied[:, 12:] < 5).all()


def test_minibatch_stddev_shapes_and_identical_samples():
    layer = MinibatchStdDev(group_size=4)
    x = torch.randn(8, 3, 5, 5)
    out = layer(x)
    assert out.shape == (8, 4, 5, 5) and torch.equal(out[:, :3], x)
    assert torch.allclose(out[:, 3], out[:, 3, :1, :1].expand(8, 5, 5))  # one constant map per sample
    same = layer(torch.randn(1, 3, 5, 5).repeat(8, 1, 1, 1))
    assert same[:, 3].abs().max() < 1e-3 and out[:, 3].min() > 0.3
    # Batch sizes that are not a multiple of the group size use the largest divisor.
    assert layer(torch.randn(6, 3, 5, 5)).shape == (6, 4, 5, 5)
    # By hand, for a group of 2 samples differing by 2 in every feature: std = 1 everywhere.
    pair = torch.stack([torch.zeros(1, 2, 2), 2 * torch.ones(1, 2, 2)])
    assert torch.allclose(MinibatchStdDev(2)(pair)[:, 1], torch.ones(2, 2, 2), atol=1e-6)


def test_ema_arithmetic():
    model = nn.Linear(3, 2)
    ema = ExponentialMovingAverage(model, decay=0.9)
    p0 = model.weight.detach().clone()
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    d0 = min(0.9, 1 / 10)  # warm-up decay at the first update
    assert torch.allclose(ema.module.weight, d0 * p0 + (1 - d0) * (p0 + 1))
    for _ in range(200):
        ema.update(model)
    assert ema.current_decay() == 0.9
    assert torch.allclose(ema.module.weight, model.weight, atol=1e-6)  # converges to a constant input
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_historical_average_is_the_running_mean():
    model = nn.Linear(2, 1, bias=False)
    values = [torch.tensor([[1.0, 2.0]]), torch.tensor([[3.0, -2.0]]), torch.tensor([[5.0, 6.0]])]
    with torch.no_grad():
        model.weight.copy_(values[0])
    ha = HistoricalAverage(model, weight=0.5)
    for v in values[1:]:
        with torch.no_grad():
            model.weight.copy_(v)
        ha.update(model)
    mean = torch.stack(values).mean(0)
    assert torch.allclose(ha.mean[0], mean)
    assert torch.allclose(ha.penalty(model), 0.5 * ((values[-1] - mean) ** 2).sum())


def test_instance_noise_is_annealed_to_zero():
    assert instance_noise_std(0.2, 0, 100) == 0.2
    assert math.isclose(instance_noise_std(0.2, 50, 100), 0.1)
    assert instance_noise_std(0.2, 100, 100) == 0 and instance_noise_std(0.2, 150, 100) == 0


def test_presets_and_config_errors():
    cfg = TrainConfig.from_dict({"preset": "wgan-gp"})
    optim = cfg.optim
    assert (cfg.loss.name, optim.d_steps, optim.lr_g, optim.beta1, optim.beta2) == ("wgan-gp", 5, 1e-4, 0.0, 0.9)
    assert cfg.loss.terms == [{"name": "gradient-penalty", "weight": 10.0}]
    assert TrainConfig.from_dict({"preset": "wgan-gp", "optim.d_steps": 2}).optim.d_steps == 2  # explicit settings win
    both = TrainConfig.from_dict({"preset": ["ema", "ttur"]})
    assert both.callbacks == [{"name": "ema", "decay": 0.999}] and both.optim.lr_d == 4e-4
    for name in PRESETS:
        TrainConfig.from_dict({"preset": name})
    with pytest.raises(ConfigError, match="unknown preset"):
        TrainConfig.from_dict({"preset": "no-such-preset"})
    with pytest.raises(ConfigError, match="loss term 'gradient-penalty' needs model.d_norm .*batch norm.*'batch'"):
        TrainConfig.from_dict({"preset": "wgan-gp", "model.d_norm": "batch"})
    with pytest.raises(ConfigError, match="ema"):
        TrainConfig(callbacks=[{"name": "ema", "decay": 1.5}])
    with pytest.raises(ConfigError, match="unknown callback"):
        TrainConfig(callbacks=[{"name": "nope"}])
    # 'auto' gives a WGAN-GP critic layer norm and everything else DCGAN's batch norm.
    _, critic = build_models("dcgan", 8, 28, 1, 8, d_norm="layer")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in critic.modules())


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist", limit=256)


def small(**settings) -> TrainConfig:
    """A small run; `settings` are dotted paths (and preset), passed as keywords with '__' for the dot."""
    return TrainConfig.from_dict(
        {
            "data.dataset": "mnist",
            "model.width": 8,
            "optim.batch_size": 16,
            "optim.steps": 4,
            "run.log_every": 2,
            "run.checkpoint_every": 2,
            "run.sample_every": 100,
            **{key.replace("__", "."): value for key, value in settings.items()},
        }
    )


def test_weight_clipping_keeps_the_critic_in_the_box(digits):
    trainer = Trainer(small(preset="wgan-clip", optim__d_steps=2, optim__steps=2), data=digits, progress=False).train()
    assert all(p.abs().max() <= 0.01 + 1e-7 for p in trainer.discriminator.parameters())
    assert isinstance(trainer.opt_d, torch.optim.RMSprop)


@pytest.mark.parametrize(
    "preset",
    ["ema", "historical-averaging", "wgan-gp", "instance-noise", "minibatch-discrimination", "acgan", "infogan"],
)
def test_every_trick_resumes_exactly(preset, digits, tmp_path):
    straight = Trainer(small(preset=preset), tmp_path / "a", data=digits, progress=False).train()
    half = Trainer(small(preset=preset), tmp_path / "b", data=digits, progress=False).train(2)
    assert half.step == 2
    resumed = Trainer.resume(tmp_path / "b", data=digits, progress=False).train()
    for a, b in zip(straight.state_dict()["generator"].values(), resumed.state_dict()["generator"].values()):
        assert torch.equal(a, b)
    if preset == "ema":
        for a, b in zip(straight.generator_for_eval().parameters(), resumed.generator_for_eval().parameters()):
            assert torch.equal(a, b)
        assert not torch.equal(next(straight.generator_for_eval().parameters()), next(straight.generator.parameters()))
    assert straight.history == resumed.history


def test_ema_generator_is_what_checkpoints_serve(digits, tmp_path):
    from course_lib.training.checkpoint import load_generator

    trainer = Trainer(small(preset="ema"), tmp_path, data=digits, progress=False).train()
    served = load_generator(tmp_path)
    z = torch.randn(3, trainer.latent_dim)
    assert torch.allclose(served(z), trainer.generate(z), atol=1e-6)
    raw = load_generator(tmp_path, use_ema=False)
    assert not torch.allclose(raw(z), served(z))


def test_mode_coverage_on_the_ring_improves_over_minimax():
    """WGAN-GP against the minimax GAN on the 8-Gaussian ring (course_lib.course.toy), over seeds."""
    from course_lib.core.runtime import fast_mode
    from course_lib.course.toy import default_config, mode_coverage, ring_mixture, train_toy_gan_2d

    ring = ring_mixture()
    seeds = range(2) if fast_mode() else range(4)
    covered = {}
    for method in ("minimax", "wgan-gp"):
        covered[method] = [
            mode_coverage(train_toy_gan_2d(ring, default_config(method), seed).samples(), ring).modes_covered
            for seed in seeds
        ]
    assert np.mean(covered["wgan-gp"]) > np.mean(covered["minimax"]), covered
