"""Image translation (issue 19): U-Net, PatchGAN, CycleGAN's pairs, the L1 and cycle terms, paired and
unpaired data, pix2pix/CycleGAN training through the one trainer and CLI, checkpoints, and bad input."""

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from course_lib.core.errors import ConfigError, DataError
from course_lib.core.images import to_uint8
from course_lib.data import load_dataset
from course_lib.data.translation import (
    PairedLoader,
    UnpairedLoader,
    load_translation,
    make_paired,
    make_unpaired,
    translate,
)
from course_lib.metrics.translation import classifier_accuracy, cycle_scores, mean_l1
from course_lib.nn.losses import get_loss
from course_lib.nn.translation import CycleDiscriminator, CycleGenerator, PatchGAN, UNet, translation_models
from course_lib.training import TrainConfig, Trainer
from course_lib.training.context import StepContext
from course_lib.training.terms import AdversarialLoss, CycleConsistency, L1Reconstruction, StepBatch, build_terms

TINY = {
    "model.width": 4,
    "optim.batch_size": 4,
    "optim.steps": 4,
    "run.log_every": 1,
    "run.sample_every": 100,
    "run.checkpoint_every": 2,
    "run.n_fixed": 8,
}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist", split="train", limit=64)


# ------------------------------------------------------------------------------------------ models
@pytest.mark.parametrize("size,channels", [(28, 1), (32, 3), (64, 3)])
def test_unet_and_patchgan_shapes(size, channels):
    torch.manual_seed(0)
    g = UNet(channels, channels, size, width=4).eval()
    x = torch.rand(2, channels, size, size) * 2 - 1
    y = g(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    d = PatchGAN(channels, size, width=4, condition_channels=channels).eval()
    logits = d(y, x)
    grid = {28: 12, 32: 14, 64: 14}[size]
    assert logits.shape == (2, grid, grid)


def test_unet_skip_connections_carry_the_image_past_the_bottleneck():
    """With the bottleneck silenced (zero weights: it outputs 0 for every input), a U-Net still maps two
    different inputs to different outputs, through its skip connections; the same network without skips
    cannot (everything it outputs passes through the bottleneck)."""
    torch.manual_seed(0)
    x = torch.rand(2, 1, 28, 28) * 2 - 1
    outputs = {}
    for skips in (True, False):
        g = UNet(1, 1, 28, width=4, skip_connections=skips).eval()
        with torch.no_grad():
            for p in g.bottleneck.parameters():
                p.zero_()
            outputs[skips] = g(x)
    assert (outputs[True][0] - outputs[True][1]).abs().max() > 1e-3
    assert torch.allclose(outputs[False][0], outputs[False][1])


def test_patchgan_logit_sees_exactly_its_receptive_field():
    """The gradient of one interior logit with respect to the input is nonzero on a square of
    `receptive_field` pixels, measured, not derived from the layer arithmetic."""
    torch.manual_seed(0)
    d = PatchGAN(1, 28, width=4, norm="none").eval()
    x = torch.randn(1, 1, 28, 28, requires_grad=True)
    logits = d(x)
    logits[0, 6, 6].backward()
    rows, cols = np.nonzero(x.grad[0, 0].abs().numpy() > 0)
    assert rows.max() - rows.min() + 1 == d.receptive_field == 16
    assert cols.max() - cols.min() + 1 == d.receptive_field


def test_cycle_modules_translate_each_half_into_the_other_domain():
    torch.manual_seed(0)
    g_ab, g_ba = UNet(1, 1, 28, 4, dropout=0).eval(), UNet(1, 1, 28, 4, dropout=0).eval()
    a, b = torch.randn(3, 1, 28, 28), torch.randn(3, 1, 28, 28)
    out = CycleGenerator(g_ab, g_ba)(torch.cat([a, b]))
    assert torch.equal(out[:3], g_ba(b)) and torch.equal(out[3:], g_ab(a))
    d_a, d_b = PatchGAN(1, 28, 4, norm="none"), PatchGAN(1, 28, 4, norm="none")
    logits = CycleDiscriminator(d_a, d_b)(torch.cat([a, b]))
    assert torch.equal(logits[:3], d_a(a)) and torch.equal(logits[3:], d_b(b))
    with pytest.raises(ConfigError, match="even size"):
        CycleGenerator(g_ab, g_ba)(torch.randn(3, 1, 28, 28))


def test_models_reject_wrong_shapes_with_one_line():
    g, d = translation_models("pix2pix", 28, 1, 4)
    for call, match in (
        (lambda: g(torch.randn(2, 3, 28, 28)), r"\(N, 1, 28, 28\)"),
        (lambda: d(torch.randn(2, 1, 28, 28)), "conditional"),
        (lambda: d(torch.randn(2, 1, 32, 32), torch.randn(2, 1, 32, 32)), "28, 28"),
    ):
        with pytest.raises(ConfigError, match=match) as info:
            call()
        assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match="divisible"):
        UNet(1, 1, 28, depth=3)
    with pytest.raises(ConfigError, match="task"):
        translation_models("stylegan", 28, 1)


# ------------------------------------------------------------------------------------------- terms
def _batch(real, fake):
    return StepBatch(real, None, fake, None, real, {}, {})


def test_l1_term_is_the_weighted_mean_absolute_error():
    gen = torch.Generator().manual_seed(0)
    real, fake = torch.randn(4, 1, 5, 5, generator=gen), torch.randn(4, 1, 5, 5, generator=gen)
    batch = _batch(real, fake)
    value = L1Reconstruction(100.0).generator_loss(batch, ctx=None)
    expected = 100.0 * np.abs(fake.numpy().astype(np.float64) - real.numpy()).sum() / real.numel()
    assert math.isclose(float(value), expected, rel_tol=1e-6)
    assert math.isclose(float(batch.metrics["l1"]), expected / 100, rel_tol=1e-6)


def test_cycle_term_translates_the_fakes_back():
    def negate_and_shift(x):  # a "generator": G(G(x)) = x
        return -x - 1

    gen = torch.Generator().manual_seed(1)
    real = torch.randn(6, 1, 4, 4, generator=gen)
    fake = negate_and_shift(real) + 0.25 * torch.randn(6, 1, 4, 4, generator=gen)
    ctx = StepContext(forward_g=negate_and_shift)  # what a term sees of the run: here only G's forward pass
    value = CycleConsistency(10.0).generator_loss(_batch(real, fake), ctx)
    reconstructed = -fake.numpy().astype(np.float64) - 1
    assert math.isclose(float(value), 10.0 * np.abs(reconstructed - real.numpy()).mean(), rel_tol=1e-6)


def test_adversarial_generator_weight_scales_only_the_generator_side():
    logits = {"logits": torch.tensor([[0.3, -1.2], [2.0, 0.1]])}
    batch = StepBatch(None, None, None, None, None, logits, logits, out_g=logits)
    plain, half = (
        AdversarialLoss(get_loss("non-saturating")),
        AdversarialLoss(get_loss("non-saturating"), generator_weight=0.5),
    )
    expected = np.log1p(np.exp(-np.array([0.3, -1.2, 2.0, 0.1]))).mean()  # softplus(-x), the non-saturating loss
    assert math.isclose(float(plain.generator_loss(batch, None)), expected, rel_tol=1e-6)
    assert math.isclose(float(half.generator_loss(batch, None)), 0.5 * expected, rel_tol=1e-6)
    assert float(half.discriminator_loss(batch, None)) == float(plain.discriminator_loss(batch, None))


def test_build_terms_maps_the_translation_weights():
    names = [t.name for t in build_terms(TrainConfig.from_dict({"preset": "pix2pix"}))]
    assert names == ["adversarial", "l1"]
    names = [t.name for t in build_terms(TrainConfig.from_dict({"preset": "cyclegan"}))]
    assert names == ["adversarial", "cycle"]
    assert [t.name for t in build_terms(TrainConfig())] == ["adversarial"]


# -------------------------------------------------------------------------------------------- data
def test_translations_by_hand():
    x = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    x[0, 0, 3, 3] = 200
    thick = translate(x, "thicken")
    assert thick[0, 0, 2:5, 2:5].eq(200).all() and thick.sum() == 9 * 200
    edges = translate(x, "edges")  # dilation - erosion: the 3x3 block (erosion of one pixel is empty)
    assert torch.equal(edges, thick)
    assert torch.equal(translate(x, "invert"), 255 - x)
    blocks = torch.arange(64, dtype=torch.uint8).view(1, 1, 8, 8)
    low = translate(blocks, "superres")
    assert low.shape == blocks.shape
    assert int(low[0, 0, 0, 0]) == round(float(blocks[0, 0, :4, :4].float().mean()))
    assert torch.equal(low[0, 0, :4, :4], low[0, 0, 0, 0].expand(4, 4))
    with pytest.raises(DataError, match="unknown translation"):
        translate(x, "colorize")
    with pytest.raises(DataError, match="uint8"):
        translate(x.float(), "invert")


def test_paired_loader_keeps_every_source_next_to_its_target(digits):
    pairs = make_paired(digits, "superres")
    loader = PairedLoader(pairs, batch_size=8, seed=3, flip=True)
    for index in (0, 5, 9):  # across an epoch boundary (8 batches per epoch)
        source, target, labels = loader.batch(index)
        assert torch.equal(to_uint8(source), translate(to_uint8(target), "superres"))
        assert labels.shape == (8,)


def test_unpaired_domains_share_no_image_and_shuffle_independently(digits):
    domains = make_unpaired(digits, "invert")
    assert len(domains.a) == len(domains.b) == 32
    originals_of_a = 255 - domains.a.images
    assert not any(torch.equal(img, other) for img in originals_of_a for other in domains.b.images)
    loader = UnpairedLoader(domains, batch_size=8, seed=0)
    a, b = loader.batch(0)
    assert a.shape == b.shape == (8, 1, 28, 28)
    order_a, order_b = loader.a._permutation(0), loader.b._permutation(0)
    assert not torch.equal(order_a, order_b)
    with pytest.raises(DataError, match="pix2pix"):
        load_translation("generation", "invert", limit=8)


# ---------------------------------------------------------------------------------------- metrics
def test_cycle_scores_of_an_identity_pair():
    """Identity 'translators' reconstruct exactly, and the accuracy on G(a) is the classifier's on a."""
    test = load_dataset("mnist", split="test", limit=40)
    a, b = test.images[:20], test.images[20:]
    identity = CycleGenerator(torch.nn.Identity(), torch.nn.Identity())
    identity.register_parameter("anchor", torch.nn.Parameter(torch.zeros(1)))  # translate() reads the device
    scores = cycle_scores(identity, a, b, test.labels[:20], test.labels[20:])
    assert scores["cycle_l1_a"] == scores["cycle_l1_b"] == 0.0
    assert scores["accuracy_a_to_b"] == classifier_accuracy(a, test.labels[:20])
    assert math.isclose(mean_l1(a, 255 - a), float((a.double() - (255 - a).double()).abs().mean() / 255), rel_tol=1e-6)


# ------------------------------------------------------------------------------------------ training
def _pairs(digits, task):
    return make_paired(digits, "superres") if task == "pix2pix" else make_unpaired(digits, "thicken")


@pytest.mark.parametrize("task", ["pix2pix", "cyclegan"])
def test_train_and_resume_is_bit_identical(task, digits, tmp_path):
    data = _pairs(digits, task)
    cfg = TrainConfig.from_dict({"preset": task, **TINY})
    straight = Trainer(cfg, tmp_path / "straight", data=data, progress=False).train()
    paused = Trainer(cfg, tmp_path / "paused", data=data, progress=False).train(steps=2)
    paused.save_checkpoint()
    resumed = Trainer.resume(tmp_path / "paused", data=data, progress=False).train()
    assert resumed.history == straight.history
    assert {"pix2pix": "l1", "cyclegan": "cycle"}[task] in straight.history[-1]
    for p, q in zip(straight.generator.state_dict().values(), resumed.generator.state_dict().values()):
        assert torch.equal(p, q)
    assert (tmp_path / "straight" / "samples.png").is_file()


def test_cli_trains_pix2pix_from_the_shipped_config(tmp_path, capsys):
    from course_lib.cli.main import main

    out = tmp_path / "run"
    config = Path(__file__).resolve().parent.parent / "configs" / "pix2pix_mnist.yaml"
    assert (
        main(["train", "--config", str(config), "--steps", "1", "--batch-size", "4", "--out", str(out), "--quiet"]) == 0
    )
    assert (out / "checkpoints" / "last.pt").is_file()
    from course_lib.training.checkpoint import load_generator

    generator = load_generator(out)
    assert isinstance(generator, UNet)


@pytest.mark.parametrize(
    "settings,match",
    [
        ({"data.task": "pix2pix"}, "translation"),
        ({"data.task": "pix2pix", "data.translation": "superres"}, "model.arch"),
        ({"loss.terms.l1.weight": 10.0}, "loss term 'l1' needs data.task 'pix2pix'"),
        ({"preset": "pix2pix", "loss.terms.cycle.weight": 10.0}, "needs data.task 'cyclegan'"),
        ({"preset": "cyclegan", "loss.terms.l1.weight": 10.0}, "paired target"),
        ({"preset": "pix2pix", "loss.terms.l1.weight": 0, "loss.adversarial_weight": 0}, "nothing trains"),
        ({"preset": "pix2pix", "model.conditional": "cgan"}, "conditional"),
        ({"preset": "cyclegan", "callbacks": [{"name": "fid_tracker"}]}, "fid_tracker"),
        ({"data.task": "translate"}, "data.task must be"),
        ({"preset": "pix2pix", "data.translation": "colorize"}, "superres"),
        ({"loss.adversarial_weight": 0}, "> 0"),
    ],
)
def test_bad_settings_are_one_line_errors(settings, match):
    with pytest.raises(ConfigError, match=match) as info:
        TrainConfig.from_dict(settings)
    assert "\n" not in str(info.value)


def test_data_that_does_not_fit_the_task(digits):
    with pytest.raises(ConfigError, match="paired"):
        Trainer(TrainConfig.from_dict({"preset": "pix2pix", **TINY}), data=digits, progress=False)
    with pytest.raises(ConfigError, match="unpaired"):
        Trainer(
            TrainConfig.from_dict({"preset": "cyclegan", **TINY}), data=make_paired(digits, "edges"), progress=False
        )
    with pytest.raises(ConfigError, match="generation"):
        Trainer(TrainConfig.from_dict(TINY), data=make_paired(digits, "edges"), progress=False)
