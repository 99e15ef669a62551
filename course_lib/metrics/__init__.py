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
`extract_features`, so one extraction can serve several metrics):

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
    feats = metrics.extract_features(images_uint8, "mnist")
    print(metrics.inception_score(feats), metrics.kid(feats, metrics.extract_features(real, "mnist")))
"""

from .diversity import mean_pairwise_distance, pairwise_diversity
from .errors import HeadMissing, MetricInputError, WeightsNotFound
from .evaluator import GeneratorEvaluator
from .features import (
    EXTRACTORS,
    FeatureExtractor,
    FeatureSet,
    InceptionExtractor,
    MNISTExtractor,
    PixelExtractor,
    extract_features,
    get_extractor,
    register_extractor,
    resolve_extractor,
)
from .fid import fid, frechet_distance, statistics_of, trace_sqrt_product, trace_sqrt_product_scipy
from .gan_train_test import GanTrainTest, gan_train_test
from .image_quality import psnr, sharpness, ssim
from .inception import FIDInceptionV3, find_inception_weights, random_inception_weights
from .inception_score import inception_score, inception_score_from_logits, inception_score_from_probabilities
from .inputs import ImageSource, as_image_source
from .kid import kid, kid_from_features, mmd2_unbiased
from .lipschitz import empirical_lipschitz, lipschitz_ratios
from .mnist_classifier import MNISTClassifier, load_mnist_classifier
from .ppl import PathLength, perceptual_path_length
from .precision_recall import PrecisionRecall, precision_recall, precision_recall_from_features
from .results import MetricResult
from .scores import (
    am_score,
    am_score_from_probabilities,
    mode_score,
    mode_score_from_probabilities,
    modified_inception_score,
    modified_inception_score_from_probabilities,
)
from .stats_cache import Statistics, gaussian_statistics
from .table import METRICS, Metric
from .two_sample import OneNNResult, one_nn_accuracy, one_nn_from_features

# `images(x, value_range=(-1, 1))` reads well in notebooks: declare how to interpret an input once.
images = as_image_source

__all__ = [
    "EXTRACTORS",
    "FIDInceptionV3",
    "FeatureExtractor",
    "FeatureSet",
    "GanTrainTest",
    "GeneratorEvaluator",
    "HeadMissing",
    "ImageSource",
    "InceptionExtractor",
    "METRICS",
    "MNISTClassifier",
    "MNISTExtractor",
    "Metric",
    "MetricInputError",
    "MetricResult",
    "OneNNResult",
    "PathLength",
    "PixelExtractor",
    "PrecisionRecall",
    "Statistics",
    "WeightsNotFound",
    "am_score",
    "am_score_from_probabilities",
    "as_image_source",
    "empirical_lipschitz",
    "extract_features",
    "fid",
    "find_inception_weights",
    "frechet_distance",
    "gan_train_test",
    "gaussian_statistics",
    "get_extractor",
    "images",
    "inception_score",
    "inception_score_from_logits",
    "inception_score_from_probabilities",
    "kid",
    "kid_from_features",
    "lipschitz_ratios",
    "load_mnist_classifier",
    "mean_pairwise_distance",
    "mmd2_unbiased",
    "mode_score",
    "mode_score_from_probabilities",
    "modified_inception_score",
    "modified_inception_score_from_probabilities",
    "one_nn_accuracy",
    "one_nn_from_features",
    "pairwise_diversity",
    "perceptual_path_length",
    "precision_recall",
    "precision_recall_from_features",
    "psnr",
    "random_inception_weights",
    "register_extractor",
    "resolve_extractor",
    "sharpness",
    "ssim",
    "statistics_of",
    "trace_sqrt_product",
    "trace_sqrt_product_scipy",
]
