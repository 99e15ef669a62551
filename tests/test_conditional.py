"""Conditional GANs: label plumbing, InfoGAN's code distributions, and short trainings judged by the MNIST classifier."""

import numpy as np
import pytest
import torch
from scipy import stats

from course_lib.core.errors import ConfigError
from course_lib.data import load_dataset
from course_lib.metrics.conditional import class_accuracy, class_samples, infogan_code_accuracy, infogan_samples
from course_lib.nn.models import InfoGANGenerator, build_models
from course_lib.training import TrainConfig, Trainer


def test_label_conditional_generator_and_discriminator_use_the_labels():
    torch.manual_seed(0)
    G, D = build_models("dcgan", 16, 28, 1, 8, conditional="cgan")
    z = torch.randn(4, 16)
    a, b = G(z, torch.tensor([0, 1, 2, 3])), G(z, torch.tensor([5, 5, 5, 5]))
    assert a.shape == (4, 1, 28, 28) and not torch.allclose(a, b)
    assert torch.equal(G(z), G(z, torch.tensor([0, 1, 2, 3])))  # no labels: balanced 0, 1, 2, ...
    assert D.features[0].in_channels == 1 + 10  # the image and one constant map per class
    assert not torch.allclose(D(a, torch.tensor([0, 1, 2, 3])), D(a, torch.tensor([9, 9, 9, 9])))
    with pytest.raises(ConfigError, match="labels must be in 0..9"):
        G(z, torch.tensor([0, 1, 2, 10]))
    with pytest.raises(ConfigError, match="4 latent vectors"):
        G(z, torch.tensor([0, 1]))
    plain, _ = build_models("dcgan", 16, 28, 1, 8)
    with pytest.raises(ConfigError, match="takes no class labels"):
        class_samples(plain, torch.tensor([0]))


def test_acgan_and_infogan_heads():
    _, D = build_models("dcgan", 16, 28, 1, 8, conditional="acgan")
    out = D.forward_all(torch.randn(3, 1, 28, 28))
    assert out["class_logits"].shape == (3, 10) and out["logits"].shape == (3,)
    _, D = build_models("dcgan", 16, 28, 1, 8, conditional="infogan", info_cat=10, info_cont=2)
    out = D.forward_all(torch.randn(3, 1, 28, 28))
    assert out["info_cat_logits"].shape == (3, 10) and out["info_cont"].shape == (3, 2)


def test_infogan_codes_round_trip_and_have_the_right_distributions():
    G = InfoGANGenerator(noise_dim=8, image_size=28, channels=1, width=8, info_cat=10, info_cont=2)
    assert G.latent_dim == 20
    noise = torch.randn(5, 8)
    cats, cont = (
        torch.tensor([3, 0, 9, 9, 1]),
        torch.tensor([[-0.9, 0.0], [0.5, 0.99], [0, 0], [-0.3, 0.3], [0.7, -0.7]]),
    )
    back_noise, back_cats, back_cont = G.split_codes(G.codes_to_latent(noise, cats, cont))
    assert torch.equal(back_noise, noise) and torch.equal(back_cats, cats)
    assert torch.allclose(back_cont, cont, atol=1e-5)
    # z ~ N(0, I) of the full size gives a uniform categorical code and U(-1, 1) continuous codes
    # (argmax of i.i.d. Gaussians; probability integral transform): checked with scipy's tests.
    _, c, u = G.split_codes(torch.randn(20_000, 20, generator=torch.Generator().manual_seed(0)))
    counts = np.bincount(c.numpy(), minlength=10)
    assert stats.chisquare(counts).pvalue > 1e-3
    assert stats.kstest(u[:, 0].numpy(), stats.uniform(loc=-1, scale=2).cdf).pvalue > 1e-3
    images = infogan_samples(G, cats, cont, noise=noise)
    assert images.shape == (5, 1, 28, 28)


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist")


# Settings measured to give class control within a short CPU training (see the issue note).
SHORT = {"data.dataset": "mnist", "model.width": 32, "optim.batch_size": 64, "run.log_every": 50}


@pytest.mark.slow
# Measured (seed 0, width 32, batch 64): cGAN 20% at 600 steps, 33% at 800; ACGAN 54% at 750, 66% at 1000.
@pytest.mark.parametrize("method,steps,threshold", [("cgan", 1000, 0.25), ("acgan", 1000, 0.4)])
def test_label_conditional_gans_make_the_asked_digit(method, steps, threshold, digits):
    trainer = Trainer(
        TrainConfig.from_dict({"preset": method, "optim.steps": steps, **SHORT}), data=digits, progress=False
    )
    assert class_accuracy(trainer.generator_for_eval(), n_per_class=50) < 0.3  # untrained: about chance
    trainer.train()
    accuracy = class_accuracy(trainer.generator_for_eval(), n_per_class=100)
    assert accuracy > threshold, f"{method}: only {accuracy:.1%} of samples are the asked-for digit"


@pytest.mark.slow
def test_infogan_categorical_code_picks_the_digit(digits):
    """Unsupervised: no labels in training, yet after a short training (the paper's learning rates) each value of
    the categorical code makes mostly one digit, far above chance; and the mutual-information term at work: Q
    reads the codes back from G(z, c)."""
    trainer = Trainer(
        TrainConfig.from_dict({"preset": "infogan", "optim.steps": 750, **SHORT}), data=digits, progress=False
    )

    def q_scores():
        G, D = trainer.generator, trainer.discriminator
        G.eval(), D.eval()
        with torch.no_grad():
            z = torch.randn(1000, G.latent_dim, generator=torch.Generator().manual_seed(3))
            _, cat, cont = G.split_codes(z)
            out = D.forward_all(G(z))
        G.train(), D.train()
        accuracy = (out["info_cat_logits"].argmax(1) == cat).float().mean().item()
        return accuracy, ((out["info_cont"] - cont) ** 2).mean().item() / (cont**2).mean().item()

    q_before, _ = q_scores()
    digit_before, _ = infogan_code_accuracy(trainer.generator_for_eval(), n_per_code=100)
    trainer.train()
    q_accuracy, relative_error = q_scores()
    digit_accuracy, mapping = infogan_code_accuracy(trainer.generator_for_eval(), n_per_code=100)
    assert q_before < 0.25 and q_accuracy > 0.9, (q_before, q_accuracy)
    assert relative_error < 0.5
    # Chance under the best code-to-digit matching is 0.1-0.15 (0.10 measured on the untrained generator).
    # Measured at 750 steps: 0.41 (seed 0, this test), 0.33 and 0.38 (seeds 1, 2); at 2,000 steps 0.40-0.51.
    assert digit_before < 0.25, digit_before
    assert digit_accuracy > 0.3, (digit_accuracy, mapping)


def test_infogan_code_accuracy_finds_the_code_to_digit_matching():
    """A stand-in 'generator' that draws a real test digit (code c -> digit (c + 3) % 10): accuracy ~1, right mapping."""
    test = load_dataset("mnist", split="test")
    by_digit = {d: test.images[test.labels == d][:100].float() / 127.5 - 1 for d in range(10)}

    class CodeToDigit(InfoGANGenerator):
        def forward(self, z, labels=None):
            _, cat, _ = self.split_codes(z)
            counters = {c: 0 for c in range(10)}
            out = []
            for c in cat.tolist():
                out.append(by_digit[(c + 3) % 10][counters[c] % 100])
                counters[c] += 1
            return torch.stack(out)

    accuracy, mapping = infogan_code_accuracy(CodeToDigit(8, 28, 1, 8), n_per_code=50)
    assert mapping == {c: (c + 3) % 10 for c in range(10)}
    assert accuracy > 0.97
