import pytest
import torch
from torch import nn

from course_lib.core.errors import ConfigError
from course_lib.nn.models import (
    DCGANDiscriminator,
    DCGANGenerator,
    Maxout,
    MLPDiscriminator,
    MLPGenerator,
    build_models,
)


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes(size, channels):
    G, D = build_models("dcgan", latent_dim=16, image_size=size, channels=channels, width=8)
    x = G(torch.randn(5, 16))
    assert x.shape == (5, channels, size, size)
    assert x.min() >= -1 and x.max() <= 1  # tanh output
    assert D(x).shape == (5,)


def test_dcgan64_matches_the_pytorch_tutorial_parameter_counts():
    # The official DCGAN tutorial (nz=100, ngf=ndf=64, nc=3) reports these model sizes.
    G, D = DCGANGenerator(100, 64, 3, 64), DCGANDiscriminator(64, 3, 64)
    assert sum(p.numel() for p in G.parameters()) == 3_576_704
    assert sum(p.numel() for p in D.parameters()) == 2_765_568


def test_dcgan_design_rules():
    G, D = DCGANGenerator(100, 64, 3, 64), DCGANDiscriminator(64, 3, 64)
    g_layers, d_layers = list(G.net), list(D.features)
    # No batch norm on the generator's output layer nor the discriminator's input layer.
    assert isinstance(g_layers[-2], nn.ConvTranspose2d) and isinstance(g_layers[-1], nn.Tanh)
    assert isinstance(d_layers[0], nn.Conv2d) and isinstance(d_layers[1], nn.LeakyReLU)
    assert d_layers[1].negative_slope == 0.2
    assert not any(isinstance(m, (nn.MaxPool2d, nn.AvgPool2d, nn.Linear)) for m in [*G.modules(), *D.modules()])
    assert all(isinstance(m, nn.ReLU) for m in G.modules() if isinstance(m, (nn.ReLU, nn.LeakyReLU)))
    assert sum(isinstance(m, nn.BatchNorm2d) for m in G.modules()) == 4
    assert sum(isinstance(m, nn.BatchNorm2d) for m in D.modules()) == 3
    # Strided convolutions do all the resampling.
    assert all(m.stride == (2, 2) for m in D.features if isinstance(m, nn.Conv2d))


def test_dcgan_init_is_normal_0_002():
    torch.manual_seed(0)
    G, D = DCGANGenerator(100, 64, 3, 64), DCGANDiscriminator(64, 3, 64)
    convs = [m.weight for m in [*G.modules(), *D.modules()] if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]
    weights = torch.cat([w.flatten() for w in convs])
    assert abs(weights.mean()) < 1e-3 and abs(weights.std() - 0.02) < 5e-4
    bn = torch.cat([m.weight for m in G.modules() if isinstance(m, nn.BatchNorm2d)])
    assert abs(bn.mean() - 1) < 0.01 and abs(bn.std() - 0.02) < 0.005


def test_mlp_gan_of_goodfellow_2014():
    G, D = build_models("mlp", latent_dim=100, image_size=28, channels=1, width=1200)
    assert isinstance(G, MLPGenerator) and isinstance(D, MLPDiscriminator)
    x = G(torch.randn(4, 100))
    assert x.shape == (4, 1, 28, 28)
    assert D(x).shape == (4,)
    assert sum(isinstance(m, Maxout) for m in D.modules()) == 2


def test_maxout_takes_the_max_over_pieces():
    layer = Maxout(3, 2, pieces=4)
    x = torch.randn(6, 3)
    expected = layer.linear(x).view(6, 2, 4).max(dim=2).values
    assert torch.equal(layer(x), expected)


def test_bad_model_settings():
    with pytest.raises(ConfigError, match="image size"):
        build_models("dcgan", image_size=48)
    with pytest.raises(ConfigError, match="unknown architecture"):
        build_models("stylegan")
