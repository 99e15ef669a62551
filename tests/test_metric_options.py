"""The settings every metric shares are one object (issue 27): FeatureOptions, given as keywords or options=."""

import dataclasses
from pathlib import Path

import pytest
import torch

from course_lib import metrics
from course_lib.metrics import FeatureOptions, MetricInputError

_ROOT = Path(__file__).resolve().parents[1]


def _images(seed: int, n: int = 64) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 3, 16, 16, generator=g) * 255).to(torch.uint8)


def test_options_object_and_keywords_give_the_same_numbers():
    a, b = _images(0), _images(1)
    pixels = FeatureOptions(extractor="pixels", device="cpu", progress=False, batch_size=16)
    keywords = dict(extractor="pixels", device="cpu", progress=False, batch_size=16)
    assert metrics.fid(a, b, options=pixels).value == metrics.fid(a, b, **keywords).value
    assert metrics.kid(a, b, options=pixels, subsets=5, subset_size=32).value == (
        metrics.kid(a, b, subsets=5, subset_size=32, **keywords).value
    )
    pr = metrics.precision_recall(a, b, options=pixels)
    assert (pr.precision, pr.recall) == (
        metrics.precision_recall(a, b, **keywords).precision,
        metrics.precision_recall(a, b, **keywords).recall,
    )
    # A keyword beside options= overrides that one field only.
    assert metrics.one_nn_accuracy(a, b, options=pixels, seed=3).accuracy == (
        metrics.one_nn_accuracy(a, b, **keywords, seed=3).accuracy
    )
    feats = metrics.extract_features(a, options=pixels)
    assert feats.extractor == "pixels" and len(feats) == 64


def test_one_options_object_serves_every_metric_with_one_network():
    digits = FeatureOptions(extractor="mnist", device="cpu", progress=False)
    grey = _images(2)[:, :1]
    other = _images(3)[:, :1]
    first = metrics.extract_features(grey, options=digits)
    again = metrics.extract_features(other, options=digits)
    assert first.extractor_identity == again.extractor_identity
    assert metrics.inception_score(first, options=digits).metric == "MNIST-IS"
    assert metrics.pairwise_diversity(first, again, options=digits).value > 0


def test_bad_settings_are_one_clear_error_before_any_work():
    with pytest.raises(MetricInputError, match="batch_size must be a positive integer"):
        FeatureOptions(batch_size=0)
    with pytest.raises(MetricInputError, match="n_samples must be a positive integer"):
        metrics.fid(_images(0), _images(1), extractor="pixels", n_samples=-5)
    with pytest.raises(MetricInputError, match="seed must be an integer"):
        FeatureOptions(seed="1")
    with pytest.raises(MetricInputError, match="extractor must be a registered name"):
        FeatureOptions(extractor=3)
    with pytest.raises(TypeError, match="unexpected keyword argument 'batchsize'.*batch_size"):
        metrics.fid(_images(0), _images(1), extractor="pixels", batchsize=8)
    with pytest.raises(MetricInputError, match="options must be a metrics.FeatureOptions"):
        metrics.kid(_images(0), _images(1), options={"extractor": "pixels"})


def test_options_are_frozen_and_replace_checks_again():
    base = FeatureOptions(extractor="pixels")
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.extractor = "mnist"
    assert base.replace(seed=4).seed == 4 and base.seed == 0
    with pytest.raises(MetricInputError):
        base.replace(limit=0)


def test_the_public_api_is_what_a_user_needs():
    import ast
    import subprocess

    old = subprocess.run(
        ["git", "show", "f0ebba8:course_lib/metrics/__init__.py"], capture_output=True, text=True, cwd=_ROOT
    )
    if old.returncode == 0:  # a checkout with history: every name exported before still resolves
        tree = ast.parse(old.stdout)
        names = next(n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "__all__")
        for name in ast.literal_eval(names):
            assert getattr(metrics, name) is not None, name
    public = set(metrics.__all__)
    assert {"fid", "inception_score", "kid", "precision_recall", "FeatureOptions", "GeneratorEvaluator"} <= public
    assert len(public) <= 40
    for name in public:
        assert hasattr(metrics, name), name
    # The building blocks live in their modules; the names exported before still resolve to the same objects,
    # so notebooks and assignments already handed out keep working (e.g. assignment 01's load_mnist_classifier).
    from course_lib.metrics.frechet import trace_sqrt_product
    from course_lib.metrics.mnist_classifier import load_mnist_classifier

    assert "trace_sqrt_product" not in public and metrics.trace_sqrt_product is trace_sqrt_product
    from course_lib.metrics import load_mnist_classifier as old_import

    assert old_import is load_mnist_classifier
    with pytest.raises(AttributeError, match="no attribute 'not_a_metric'"):
        metrics.not_a_metric  # noqa: B018


def test_fid_and_is_give_an_interval_or_the_unbiased_value_on_request():
    from course_lib.metrics.unbiased import fid_infinity

    a, b = _images(4, 96), _images(5, 96)
    pixels = FeatureOptions(extractor="pixels", device="cpu", progress=False)
    plain = metrics.fid(a, b, options=pixels)
    with_ci = metrics.fid(a, b, options=pixels, ci=0.9, bootstrap=20)
    assert with_ci.value == pytest.approx(plain.value) and with_ci.ci_low < with_ci.ci_high
    assert "90% CI, n=96" in str(with_ci)
    assert plain.protocol and "96 generated samples" in plain.protocol
    fa, fb = metrics.extract_features(a, options=pixels), metrics.extract_features(b, options=pixels)
    assert metrics.fid(a, b, options=pixels, unbiased=True).value == pytest.approx(fid_infinity(fa, _stats(fb)).value)
    digits = FeatureOptions(extractor="mnist", device="cpu", progress=False)
    grey = metrics.extract_features(_images(6, 96)[:, :1], options=digits)
    ranged = metrics.inception_score(grey, options=digits, ci=0.95, bootstrap=20)
    assert ranged.value == pytest.approx(metrics.inception_score(grey, options=digits).value)
    assert ranged.ci_low <= ranged.ci_high
    with pytest.raises(MetricInputError, match="resamples the first set"):
        metrics.fid(_stats(fa), b, options=pixels, ci=0.95)


def _stats(features):
    mu, sigma = metrics.gaussian_statistics(features)
    return metrics.Statistics(mu, sigma, len(features), features.extractor_identity, features.extractor_label)
