"""The style generator (course_lib.nn.style): shapes, the mapping network, modulation against a
per-sample reference, AdaIN's statistics, noise inputs, style mixing, and training through the one trainer."""

import pytest
import torch
from torch.nn import functional as F

from course_lib.core.errors import ConfigError
from course_lib.nn.style import AdaIN, ModulatedConv2d, StyleGenerator


@pytest.fixture
def generator():
    torch.manual_seed(0)
    g = StyleGenerator(latent_dim=16, width=8, mapping_layers=2).eval()
    with torch.no_grad():
        for layer in g.layers:
            layer.noise_strength.fill_(0.5)
    return g


def test_shapes_and_range(generator):
    z = torch.randn(5, 16)
    w = generator.mapping(z)
    assert w.shape == (5, 16) and generator.num_ws == 6
    x = generator(z)
    assert x.shape == (5, 1, 28, 28) and x.abs().max() <= 1
    assert generator.broadcast(w).shape == (5, 6, 16)


def test_mapping_normalises_z(generator):
    z = torch.randn(3, 16)
    assert torch.allclose(generator.mapping(z), generator.mapping(4.0 * z), atol=1e-5)  # pixel norm first


@pytest.mark.parametrize("mapping_layers", [2, 4, 8])
def test_a_fresh_generator_already_depends_on_z(mapping_layers):
    """The mapping keeps w's scale (He init), so different z give different images from step 0; with PyTorch's
    default Linear init w shrank ~3x per layer and a fresh generator drew one image for every z (a collapse
    training did not undo in 700 steps)."""
    torch.manual_seed(0)
    g = StyleGenerator(latent_dim=64, width=16, mapping_layers=mapping_layers).eval()
    z = torch.randn(64, 64)
    w = g.mapping(z)
    assert 0.3 < w.std(dim=0).mean() < 3
    g.noise_mode = "const"  # the same noise for every sample: only z can make them differ
    with torch.no_grad():
        images = g(z)
    assert images.std(dim=0).mean() > 0.5 * images.std()  # most of the pixel variation is between samples


@pytest.mark.parametrize("seed", [0, 1])
def test_synthesis_keeps_the_activation_scale(seed):
    """Demodulation restores unit variance only for unit-variance inputs, so each LeakyReLU needs StyleGAN2's gain
    sqrt(2). Without it the activations shrank ~0.7x per layer (RMS ~0.1 at 28x28, pre-tanh std ~0.13), the biases
    and the constant soon outweighed the styles, and training collapsed to one digit for every z (issue 19)."""
    torch.manual_seed(seed)
    g = StyleGenerator(latent_dim=64, width=32, mapping_layers=4).eval()
    z = torch.randn(64, 64)
    with torch.no_grad():
        ws = g.broadcast(g.mapping(z))
        x = g.const.expand(64, -1, -1, -1)
        for i, layer in enumerate(g.layers):
            x = layer(x, ws[:, i], "const")
            assert 0.4 < x.pow(2).mean().sqrt() < 2.5, f"layer {i} ({layer.resolution}x{layer.resolution})"
        pre_tanh = g.to_rgb(x, ws[:, -1])
    assert pre_tanh.std(dim=0).mean() > 0.4  # the output varies with z on tanh's useful range


def test_a_short_training_run_still_depends_on_z():
    """50 steps of the stylegan preset (narrower, smaller batch): the images still differ between latents. Before
    the activation gain the between-latent pixel std fell from 0.16 to 0.04 in these 50 steps (0.28 with it), the
    start of the collapse to one image that docs/results/stylegan_mnist once reported."""
    from course_lib.data import load_dataset
    from course_lib.training import TrainConfig, Trainer

    cfg = TrainConfig.from_dict(
        {
            "preset": "stylegan",
            "model.width": 16,
            "model.latent_dim": 16,
            "optim.batch_size": 32,
            "optim.steps": 50,
            "callbacks.ema.enabled": False,  # the preset's EMA off: the raw generator is measured
            "run.seed": 0,
            "run.log_every": 50,
            "run.sample_every": 10**9,
            "run.checkpoint_every": 10**9,
        }
    )
    trainer = Trainer(cfg, data=load_dataset("mnist", split="train", limit=512), progress=False).train()
    g = trainer.generator.eval()
    g.noise_mode = "const"  # the same noise for every sample: only z can make them differ
    with torch.no_grad():
        images = g(torch.randn(64, 16, generator=torch.Generator().manual_seed(1)))
    assert images.std(dim=0).mean() > 0.15


def test_modulated_conv_equals_a_per_sample_convolution():
    torch.manual_seed(1)
    conv = ModulatedConv2d(3, 4, 3, w_dim=5)
    x, w = torch.randn(2, 3, 7, 7), torch.randn(2, 5)
    out = conv(x, w)
    for i in range(2):  # StyleGAN2 eqs. 1-3, one sample at a time
        weight = conv.weight * conv.affine(w[i : i + 1])[0][None, :, None, None]
        weight = weight / torch.sqrt(weight.pow(2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        assert torch.allclose(out[i : i + 1], F.conv2d(x[i : i + 1], weight, padding=1), atol=1e-5)


def test_adain_sets_each_channel_to_the_style_statistics():
    torch.manual_seed(2)
    adain = AdaIN(3, w_dim=4)
    x, w = torch.randn(2, 3, 8, 8) * 5 + 2, torch.randn(2, 4)
    y = adain(x, w)
    assert torch.allclose(y.mean(dim=(2, 3)), adain.shift(w), atol=1e-4)
    assert torch.allclose(y.std(dim=(2, 3), unbiased=False), adain.scale(w).abs(), atol=1e-3)


def test_noise_modes(generator):
    w = generator.mapping(torch.randn(2, 16))
    const = generator.synthesis(w, noise_mode="const")
    assert torch.equal(const, generator.synthesis(w, noise_mode="const"))
    assert not torch.equal(generator.synthesis(w, noise_mode="random"), generator.synthesis(w, noise_mode="random"))
    with torch.no_grad():
        for layer in generator.layers:
            layer.noise_strength.zero_()
    assert torch.equal(generator.synthesis(w, noise_mode="none"), generator.synthesis(w, noise_mode="random"))


def test_style_mixing_switches_styles_at_the_crossover(generator):
    w1, w2 = generator.mapping(torch.randn(3, 16)), generator.mapping(torch.randn(3, 16))
    ws = generator.mix(w1, w2, 2)
    assert torch.equal(ws[:, :2], generator.broadcast(w1)[:, :2]) and torch.equal(
        ws[:, 2:], generator.broadcast(w2)[:, 2:]
    )
    image = lambda s: generator.synthesis(s, noise_mode="const")  # noqa: E731
    assert torch.equal(image(generator.mix(w1, w2, generator.num_ws)), image(w1))
    assert torch.equal(image(generator.mix(w1, w2, 0)), image(w2))
    mixed = image(ws)
    assert not torch.allclose(mixed, image(w1)) and not torch.allclose(mixed, image(w2))


def test_mixing_regularisation_only_in_training(generator):
    z = torch.randn(4, 16)
    generator.noise_mode = "const"
    assert torch.equal(generator(z), generator(z))  # eval: no mixing
    generator.train()
    generator.mixing = 1.0
    torch.manual_seed(3)
    assert not torch.allclose(generator(z), generator.eval()(z))


def test_bad_inputs_are_one_line_errors(generator):
    cases = [
        (lambda: generator.mix(torch.randn(2, 16), torch.randn(2, 16), 9), "crossover"),
        (lambda: generator.synthesis(torch.randn(2, 15)), "styles must have shape"),
        (lambda: generator.synthesis(torch.randn(2, 16), noise_mode="loud"), "noise_mode"),
        (lambda: generator.mapping(torch.randn(2, 3)), "z must have shape"),
        (lambda: StyleGenerator(image_size=32), "28x28"),
        (lambda: StyleGenerator(style="wavelet"), "style must be"),
    ]
    for call, words in cases:
        with pytest.raises(ConfigError, match=words) as info:
            call()
        assert "\n" not in str(info.value)


def test_trains_through_the_trainer_from_its_config(tmp_path):
    from pathlib import Path

    from course_lib.data import load_dataset
    from course_lib.training import TrainConfig, Trainer
    from course_lib.training.config import read_settings

    settings = read_settings(Path(__file__).parents[1] / "configs" / "stylegan_mnist.yaml")
    cfg = TrainConfig.from_dict(
        {
            **settings,
            "model.width": 4,
            "model.latent_dim": 8,
            "optim.batch_size": 8,
            "optim.steps": 2,
            "run.log_every": 1,
            "run.n_fixed": 4,
        }
    )
    trainer = Trainer(cfg, tmp_path, data=load_dataset("mnist", split="train", limit=32), progress=False).train()
    assert type(trainer.generator).__name__ == "StyleGenerator" and len(trainer.history) == 2
    assert (tmp_path / "checkpoints" / "last.pt").is_file()
    with pytest.raises(ConfigError, match="style"):
        TrainConfig.from_dict({"preset": "stylegan", "model.style": "wavelet"})
