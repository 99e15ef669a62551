"""Evaluating generative models: Inception Score, FID and their relatives, agreeing with the reference code.

Feature extractors (`features`; one registry, EXTRACTORS, and one rule for "auto", resolve_extractor):
- 'inception' (default): the FID Inception network (TF inception-2015-12-05 as ported by pytorch-fid).
  Its numbers are the standard ones. Weights: see `inception.find_inception_weights`.
- 'mnist': the small MNIST classifier shipped in the package. Offline, fast, digits only; its
  numbers (MNIST-IS, classifier FID, ...) are labelled as NOT comparable with Inception-based ones.
- 'pixels': 8x8 average-pooled pixels, no network: cheap Fréchet distances for CPU smoke tests.

Evaluating a generator (`evaluator.GeneratorEvaluator`): n samples from its own seeded noise,
features extracted once, the requested metrics against a reference set processed once. What each
metric is called, which direction is better and how it is printed: `table.METRICS`.

Metrics (each takes images in any accepted form, see `inputs`, or a FeatureSet from
`extract_features`, so one extraction can serve several metrics). The settings they share (which extractor,
device, batch size, how many samples from which seed, how inputs are read) are one object, `FeatureOptions`,
given as keywords or as `options=` (see `options`); each metric's own knobs (KID's subsets, k of
precision/recall, IS splits) stay keywords of that metric:

    fid(a, b)                     Fréchet distance of Gaussian fits (`fid`)
    inception_score(x)            exp E KL(p(y|x) || p(y)), 10 splits (`inception_score`)
    kid(a, b)                     unbiased polynomial-kernel MMD^2 over subsets (`kid`)
    precision_recall(gen, real)   k-NN manifold precision and recall (`precision_recall`)
    one_nn_accuracy(gen, real)    leave-one-out 1-NN two-sample test (`two_sample`)
    mode_score, am_score, modified_inception_score      IS relatives (`scores`)
    gan_train_test(...)           classifier-based GAN-train / GAN-test (`gan_train_test`)
    psnr, ssim, sharpness         per-image quality (`image_quality`)
    pairwise_diversity(gen, real) mean pairwise feature distance (`diversity`)
    empirical_lipschitz(G)        max ||G(z1) - G(z2)||_p / ||z1 - z2||_p over latent pairs (`lipschitz`)
    perceptual_path_length(G)     StyleGAN's PPL in Z (slerp) or W (lerp), eps 1e-4 (`ppl`)

Example::

    from course_lib import metrics
    real = "mnist:test"                                   # a dataset name, folder, .npz, tensor...
    print(metrics.fid(generator, real, n_samples=10_000, extractor="mnist"))
    digits = metrics.FeatureOptions(extractor="mnist", n_samples=2000, device="cpu")
    print(metrics.kid(generator, real, options=digits), metrics.precision_recall(generator, real, options=digits))
    feats = metrics.extract_features(images_uint8, "mnist")
    print(metrics.inception_score(feats), metrics.kid(feats, metrics.extract_features(real, "mnist")))

What this package exports is what a user needs: the metrics above, `FeatureOptions`, `extract_features`,
`as_image_source`, `GeneratorEvaluator`, the Fréchet distance on statistics (`frechet_distance`,
`gaussian_statistics`, `Statistics`), the registries to extend (`METRICS`/`Metric`, `EXTRACTORS`/
`FeatureExtractor`), the result type and the errors. The pieces they are built from (e.g.
`frechet.trace_sqrt_product`, `kid.mmd2_unbiased`, `score_formulas.inception_score_from_probabilities`,
`features.get_extractor`, the extractor classes) stay importable from their modules, which own them, for
tests, notebooks that take a metric apart, and library code. The names this package exported before (e.g.
`metrics.load_mnist_classifier`, `metrics.inception_score_from_probabilities`, used by notebooks and assignments
already handed out) still resolve, to the same objects, through `__getattr__`; new code imports them from their
modules.
"""

from .diversity import pairwise_diversity
from .errors import HeadMissing, MetricInputError, WeightsNotFound
from .evaluator import GeneratorEvaluator
from .features import EXTRACTORS, FeatureExtractor, FeatureSet, extract_features
from .fid import fid
from .frechet import frechet_distance
from .gan_train_test import gan_train_test
from .image_quality import psnr, sharpness, ssim
from .inception import find_inception_weights
from .inception_score import inception_score
from .inputs import as_image_source
from .kid import kid
from .lipschitz import empirical_lipschitz
from .options import FeatureOptions
from .ppl import perceptual_path_length
from .precision_recall import precision_recall
from .results import MetricResult
from .scores import am_score, mode_score, modified_inception_score
from .stats_cache import Statistics, gaussian_statistics
from .table import METRICS, Metric
from .two_sample import one_nn_accuracy
from .unbiased import fid_infinity, inception_score_infinity
from .uncertainty import bootstrap_ci, seeds_interval

__all__ = [
    # metrics
    "am_score",
    "empirical_lipschitz",
    "fid",
    "gan_train_test",
    "inception_score",
    "kid",
    "mode_score",
    "modified_inception_score",
    "one_nn_accuracy",
    "pairwise_diversity",
    "perceptual_path_length",
    "precision_recall",
    "psnr",
    "sharpness",
    "ssim",
    # the shared settings, features and whole-generator evaluation
    "FeatureOptions",
    "FeatureSet",
    "GeneratorEvaluator",
    "as_image_source",
    "extract_features",
    "find_inception_weights",
    # Gaussian statistics and the distance between them
    "Statistics",
    "frechet_distance",
    "gaussian_statistics",
    # uncertainty and bias (also as fid(..., ci=0.95) / fid(..., unbiased=True))
    "bootstrap_ci",
    "fid_infinity",
    "inception_score_infinity",
    "seeds_interval",
    # extension points
    "EXTRACTORS",
    "FeatureExtractor",
    "METRICS",
    "Metric",
    # results and errors
    "HeadMissing",
    "MetricInputError",
    "MetricResult",
    "WeightsNotFound",
]

# Names exported before the public API was cut down, and the module that owns each: notebooks and assignments
# already in students' hands use them, so they keep resolving (to the very same objects), without being advertised.
_MOVED = {
    "FIDInceptionV3": "inception",
    "GanTrainTest": "gan_train_test",
    "ImageSource": "inputs",
    "InceptionExtractor": "features",
    "MNISTClassifier": "mnist_classifier",
    "MNISTExtractor": "features",
    "OneNNResult": "two_sample",
    "PathLength": "ppl",
    "PixelExtractor": "features",
    "PrecisionRecall": "precision_recall",
    "am_score_from_probabilities": "scores",
    "get_extractor": "features",
    "inception_score_from_logits": "score_formulas",
    "inception_score_from_probabilities": "score_formulas",
    "kid_from_features": "kid",
    "lipschitz_ratios": "lipschitz",
    "load_mnist_classifier": "mnist_classifier",
    "mean_pairwise_distance": "diversity",
    "mmd2_unbiased": "kid",
    "mode_score_from_probabilities": "scores",
    "modified_inception_score_from_probabilities": "scores",
    "one_nn_from_features": "two_sample",
    "precision_recall_from_features": "precision_recall",
    "random_inception_weights": "inception",
    "register_extractor": "features",
    "resolve_extractor": "features",
    "statistics_of": "fid",
    "trace_sqrt_product": "frechet",
    "trace_sqrt_product_scipy": "frechet",
}


def __getattr__(name: str):
    if name == "images":  # the old alias of as_image_source
        return as_image_source
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_MOVED[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
