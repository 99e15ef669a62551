"""The extractor registry, the one "auto" rule, the shared GeneratorEvaluator and the metric table.

The evaluator's numbers are checked against computations written out here from the definitions
(numpy/scipy on the same latents and features), not against the evaluator itself.
"""

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import linalg
from scipy.spatial.distance import pdist

from course_lib import metrics
from course_lib.data import load_embedded_mnist
from course_lib.metrics import EXTRACTORS, METRICS, GeneratorEvaluator, MetricInputError
from course_lib.metrics.errors import WeightsNotFound
from course_lib.metrics.features import PixelExtractor, auto_extractor_name, get_extractor, resolve_extractor
from course_lib.metrics.kid import kid_from_features
from course_lib.metrics.precision_recall import precision_recall_from_features
from course_lib.nn.models import DCGANGenerator


@pytest.fixture(scope="module")
def generator():
    torch.manual_seed(0)
    return DCGANGenerator(latent_dim=8, image_size=28, channels=1, width=8)


@pytest.fixture(scope="module")
def real():
    return load_embedded_mnist("test").images[:150]


# ------------------------------------------------------------------------------ the registry
def test_every_extractor_is_in_one_registry():
    assert {"inception", "mnist", "pixels"} <= set(EXTRACTORS)
    assert isinstance(get_extractor("pixels", "cpu"), PixelExtractor)
    assert get_extractor("mnist", "cpu").name == "mnist"
    with pytest.raises(MetricInputError, match="unknown feature extractor 'vgg'.*pixels"):
        get_extractor("vgg", "cpu")
    with pytest.raises(MetricInputError, match="no classifier head"):
        get_extractor("pixels", "cpu", need_head=True)


@pytest.mark.parametrize(
    "weights,channels,need_head,prefer_digits,expected",
    [
        (True, 1, False, False, "inception"),
        (True, 3, True, False, "inception"),
        (True, 1, True, True, "mnist"),
        (True, 3, True, True, "inception"),
        (False, 1, False, False, "mnist"),
        (False, 1, True, False, "mnist"),
        (False, 3, False, False, "pixels"),
        (False, 3, False, True, "pixels"),
    ],
)
def test_the_auto_rule(monkeypatch, weights, channels, need_head, prefer_digits, expected):
    asked = []

    def find(*args, **kwargs):
        asked.append(kwargs)
        if not weights:
            raise WeightsNotFound("none here")
        return object()

    monkeypatch.setattr("course_lib.metrics.inception.find_inception_weights", find)
    assert auto_extractor_name(channels, need_head, prefer_digits) == expected
    assert all(kw["download"] is False and kw["need_head"] == need_head for kw in asked)  # never downloads


def test_auto_without_weights_for_class_scores_on_colour_images_says_what_is_missing(monkeypatch):
    def missing(*args, **kwargs):
        raise WeightsNotFound("no FID Inception weights found")

    monkeypatch.setattr("course_lib.metrics.inception.find_inception_weights", missing)
    with pytest.raises(WeightsNotFound, match="no FID Inception weights"):
        resolve_extractor("auto", "cpu", channels=3, need_head=True)


# ------------------------------------------------------------------------------ the evaluator
def _by_hand(generator, n, seed, real):
    """Latents as documented (one seeded CPU stream), the MNIST classifier's features and logits."""
    extractor = get_extractor("mnist", "cpu")
    z = torch.randn(n, generator.latent_dim, generator=torch.Generator().manual_seed(seed))
    generator.eval()
    with torch.no_grad():
        x = generator(z)
    generator.train()
    f_gen, logits = (t.double().numpy() for t in extractor((x.clamp(-1, 1) + 1) / 2, want_logits=True))
    f_real = extractor(real)[0].double().numpy()
    return z.numpy(), x.double().numpy(), f_gen, logits, f_real


def test_evaluator_numbers_match_the_definitions(generator, real):
    n, seed = 120, 7
    names = ["is", "is_std", "fid", "kid", "precision", "recall", "diversity", "lipschitz", "lipschitz_l1"]
    evaluator = GeneratorEvaluator(
        names,
        real,
        extractor="mnist",
        n_samples=n,
        seed=seed,
        batch_size=n,
        device="cpu",
        is_splits=1,
        kid_subset=100,
        kid_subsets=5,
    )
    rng_before = torch.get_rng_state()
    values = evaluator(generator)
    assert torch.equal(torch.get_rng_state(), rng_before) and generator.training
    assert list(values) == names
    z, x, f_gen, logits, f_real = _by_hand(generator, n, seed, real)

    # IS, one split: exp(mean_x KL(p(y|x) || p(y)))
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    kl = (p * (np.log(p) - np.log(p.mean(0)))).sum(1)
    assert values["is"] == pytest.approx(math.exp(kl.mean()), rel=1e-6) and values["is_std"] == 0.0

    # FID: np.cov and scipy's matrix square root (pytorch-fid's way)
    mu1, mu2, s1, s2 = f_gen.mean(0), f_real.mean(0), np.cov(f_gen, rowvar=False), np.cov(f_real, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(s1 @ s2)
    expected_fid = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(root).real
    assert values["fid"] == pytest.approx(expected_fid, rel=1e-4, abs=1e-4)

    # diversity: mean pairwise distance of the samples' features over the real images'
    assert values["diversity"] == pytest.approx(pdist(f_gen).mean() / pdist(f_real).mean(), rel=1e-5)

    # Lipschitz: the largest ratio over the pairs (z_i, z_{i + n/2})
    half = n // 2
    flat = x.reshape(n, -1)
    for key, order in (("lipschitz", 2), ("lipschitz_l1", 1)):
        ratios = np.linalg.norm(flat[:half] - flat[half:], ord=order, axis=1) / np.linalg.norm(
            z[:half] - z[half:], ord=order, axis=1
        )
        assert values[key] == pytest.approx(ratios.max(), rel=1e-6)

    # KID, precision and recall: the metrics package's functions (tested against references) on these features
    assert values["kid"] == pytest.approx(
        kid_from_features(f_gen, f_real, subsets=5, subset_size=100, seed=seed)[0], rel=1e-5
    )
    precision, recall = precision_recall_from_features(
        torch.from_numpy(f_gen).float(), torch.from_numpy(f_real).float()
    )
    assert (values["precision"], values["recall"]) == (pytest.approx(precision), pytest.approx(recall))

    assert evaluator(generator) == values  # the same latents at every call


def test_evaluator_draws_the_samples_metrics_fid_draws(generator, real):
    """Over several batches, the evaluator's FID is metrics.fid(generator, n_samples, seed)'s."""
    evaluator = GeneratorEvaluator(["fid"], real, extractor="mnist", n_samples=90, seed=3, batch_size=32, device="cpu")
    direct = metrics.fid(
        generator, real, extractor="mnist", n_samples=90, seed=3, batch_size=32, device="cpu", progress=False
    )
    assert evaluator(generator)["fid"] == pytest.approx(direct.value, rel=1e-9)


def test_given_noise_is_used_whatever_the_generator_batch(generator, real):
    noise = torch.randn(70, generator.latent_dim, generator=torch.Generator().manual_seed(11))
    whole = GeneratorEvaluator(["fid", "lipschitz"], real, noise=noise, extractor="mnist", device="cpu")(generator)
    pieces = GeneratorEvaluator(
        ["fid", "lipschitz"], real, noise=noise, extractor="mnist", device="cpu", sample_batch_size=16, batch_size=25
    )(generator)
    assert pieces["fid"] == pytest.approx(whole["fid"], rel=1e-5)
    assert pieces["lipschitz"] == pytest.approx(whole["lipschitz"], rel=1e-6)
    function = GeneratorEvaluator(["lipschitz"], noise=noise, device="cpu", extractor="pixels")
    assert function(lambda z: torch.tanh(z[:, :1, None, None].expand(-1, 1, 8, 8)))["lipschitz"] > 0


def test_a_diverged_generator_scores_nan_and_bad_settings_are_clear_errors(real):
    nan_images = GeneratorEvaluator(["fid", "is"], real, noise=torch.randn(8, 2), extractor="mnist", device="cpu")
    assert all(math.isnan(v) for v in nan_images(lambda z: torch.full((len(z), 1, 28, 28), math.nan)).values())
    with pytest.raises(MetricInputError, match="give a reference"):
        GeneratorEvaluator(["kid"], n_samples=10)
    with pytest.raises(MetricInputError, match="unknown metric"):
        GeneratorEvaluator(["sharpness"], real, n_samples=10)
    with pytest.raises(MetricInputError, match="is_std comes with is"):
        GeneratorEvaluator(["is_std"], n_samples=10)
    with pytest.raises(MetricInputError, match="mean and covariance only"):
        stats = metrics.Statistics(np.zeros(2), np.eye(2), 10)
        GeneratorEvaluator(["kid"], stats, n_samples=10, extractor="pixels").prepare()


def test_score_images_of_the_reference_itself(real):
    evaluator = GeneratorEvaluator(
        ["fid", "diversity", "lipschitz"], real, extractor="mnist", n_samples=10, device="cpu"
    )
    itself = evaluator.score_images(real)
    assert abs(itself["fid"]) < 1e-3 and itself["diversity"] == pytest.approx(1.0) and itself["lipschitz"] is None


# ------------------------------------------------------------------------------ the metric table
def test_the_metric_table_describes_direction_and_format():
    assert METRICS["fid"].sign == -1 and METRICS["is"].sign == 1
    assert METRICS["kid"].format(0.00123, 0.0001) == "1.23 ± 0.10"
    assert METRICS["precision"].format(None) == "n/a"
    assert METRICS["fid"].beats(10.0, 12.0) and not METRICS["is"].beats(2.0, 3.0)
    assert METRICS["recall"].beats(None, 0.5) is None
