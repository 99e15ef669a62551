"""Every metric a generator evaluation reports, registered once: name, label, better direction, format,
what it needs and how it is computed.

The evaluator (`evaluator.GeneratorEvaluator`), the `course-lib metrics` command, the experiment runner,
reports and the diversity controller read `METRICS`; none of them spells the metrics out:

    name           label              better   what it is
    is             IS                 higher   Inception Score over splits (MNIST-IS with the digit classifier)
    fid            FID                lower    Fréchet distance of Gaussian fits to the features
    kid            KID (x1000)        lower    unbiased polynomial-kernel MMD^2, averaged over subsets
    precision      precision          higher   share of samples inside the real data's k-NN manifold
    recall         recall             higher   share of real images inside the samples' manifold
    diversity      diversity          higher   mean pairwise feature distance, samples / real images
    lipschitz      Lipschitz (L2)     lower    max ||G(z1) - G(z2)|| / ||z1 - z2|| over latent pairs
    lipschitz_l1   Lipschitz (L1)     lower    the same in the L1 norm
    ppl            PPL (Z)            lower    perceptual path length in Z, slerp (`ppl`; the extractor's features)
    ppl_w          PPL (W)            lower    the same in a style generator's W, lerp (None for other generators)

`is_std` is not a metric of its own: it is the spread of `is` over its splits, reported beside it.

Add a metric in one file (yours, not course_lib's): subclass `Metric`, say what it needs, compute it from a
`Scoring`, and register it (or name it as `your.module:YourMetric` wherever a metric name is accepted)::

    from course_lib.metrics import METRICS, Metric

    @METRICS.register("mean_brightness")
    class MeanBrightness(Metric):
        label, better, digits, needs = "brightness", "higher", 3, "samples"

        @classmethod
        def compute(cls, scoring):
            return {cls.name: float(scoring.samples.mean())}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from course_lib.core.registry import Registry

from .errors import MetricInputError

NEEDS = ("features", "logits", "reference", "noise", "generator", "samples")


@dataclass
class Scoring:
    """What one evaluation hands every metric: the samples' features (and logits), the reference's features or
    statistics, the generator and its latents/outputs where there are some, and the evaluator's settings.
    `cache` lives as long as the reference (e.g. the reference's own spread, computed once)."""

    features: Any  # FeatureSet of the samples
    settings: Any  # the GeneratorEvaluator: n_samples, seed, is_splits, kid_subset(s), optional_logits, extractor
    reference_features: Any = None
    reference_stats: Any = None
    generator: Any = None  # an nn.Module, or None (a sampling function, or scoring given images)
    latents: Any = None  # (N, latent_dim) tensor, when a metric needs the noise
    samples: Any = None  # the generated images in [-1, 1] matching `latents` (kept only when asked for)
    cache: dict = field(default_factory=dict)


class _Key:
    """`Metric.key`: the name the class is registered as (read on the class, like every other attribute)."""

    def __get__(self, obj, owner):
        return owner.name


class Metric:
    """One metric, described and computed by its class (never instantiated: a registry of classes).

    label     how tables and plots call it
    better    "higher" or "lower"; `sign` is +1 / -1 so that sign * value is always "higher is better"
    digits    decimals in tables; `scale` multiplies the shown value (KID in units of 1e-3)
    needs     "features" / "logits" (class scores: a classifier head) of the samples; "reference" (real images'
              features or statistics); "noise" (the latents and outputs); "generator"; "samples" (the images)
    reference_features  True when its reference must be features, not only Gaussian statistics
    also      other keys `compute` fills (recall beside precision, is_std beside is)
    """

    name = ""
    key = _Key()
    label = ""
    better = "higher"
    digits = 3
    scale = 1.0
    needs = "features"
    reference_features = False
    also: tuple[str, ...] = ()
    sign = 1.0

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.better not in ("higher", "lower"):
            raise TypeError(f"{cls.__qualname__}.better must be 'higher' or 'lower', got {cls.better!r}")
        if cls.needs not in NEEDS:
            raise TypeError(f"{cls.__qualname__}.needs must be one of {', '.join(NEEDS)}, got {cls.needs!r}")
        cls.sign = 1.0 if cls.better == "higher" else -1.0

    @classmethod
    def compute(cls, scoring: Scoring) -> dict[str, float | None]:
        raise NotImplementedError(f"metric {cls.name!r} does not define compute(scoring)")

    @classmethod
    def format(cls, value: float | None, spread: float | None = None) -> str:
        """The value as tables show it ("n/a" when missing), with "± spread" when given."""
        if value is None:
            return "n/a"
        text = f"{value * cls.scale:.{cls.digits}f}"
        return text + (f" ± {spread * cls.scale:.{cls.digits}f}" if spread is not None else "")

    @classmethod
    def beats(cls, a: float | None, b: float | None) -> bool | None:
        """Whether value a is better than value b (None when either is missing)."""
        if a is None or b is None:
            return None
        return a > b if cls.better == "higher" else a < b


METRICS = Registry("metric", base=Metric)


def metric(name: str) -> type[Metric]:
    """The metric class called `name` (registered, or `module.path:Class`); a clear error otherwise."""
    from course_lib.core.errors import ConfigError

    try:
        return METRICS.get(name)
    except ConfigError as exc:
        raise MetricInputError(str(exc)) from None


# ------------------------------------------------------------------------------------------ the metrics
# Each compute is a few lines over the functions of its own module (imported when first used: the reference
# implementations pull in scipy and friends, which `import course_lib.metrics` should not pay for).


@METRICS.register("is")
class InceptionScore(Metric):
    label, better, digits, needs, also = "IS", "higher", 2, "logits", ("is_std",)

    @classmethod
    def compute(cls, scoring):
        from .score_formulas import inception_score_from_logits

        logits = scoring.features.logits
        if logits is None:
            if not scoring.settings.optional_logits:
                from .features import _no_head

                raise _no_head(scoring.settings.extractor)
            return {"is": None, "is_std": None}
        mean, std = inception_score_from_logits(logits, splits=scoring.settings.is_splits)
        return {"is": mean, "is_std": std}


@METRICS.register("fid")
class FID(Metric):
    label, better, digits, needs = "FID", "lower", 2, "reference"

    @classmethod
    def compute(cls, scoring):
        from .frechet import frechet_distance
        from .stats_cache import gaussian_statistics

        mu, sigma = gaussian_statistics(scoring.features)
        ref = scoring.reference_stats
        return {"fid": frechet_distance(mu, sigma, ref.mu, ref.sigma)}


@METRICS.register("kid")
class KID(Metric):
    label, better, digits, scale, needs, reference_features = "KID (x1000)", "lower", 2, 1000.0, "reference", True

    @classmethod
    def compute(cls, scoring):
        from .kid import kid_from_features

        ours, theirs, settings = scoring.features, scoring.reference_features, scoring.settings
        subset = min(settings.kid_subset, len(ours), len(theirs))
        value = kid_from_features(
            ours.features, theirs.features, subsets=settings.kid_subsets, subset_size=subset, seed=settings.seed
        )[0]
        return {"kid": value}


@METRICS.register("precision")
class Precision(Metric):
    label, better, digits, needs, reference_features, also = "precision", "higher", 3, "reference", True, ("recall",)

    @classmethod
    def compute(cls, scoring):
        from .precision_recall import precision_recall_from_features

        precision, recall = precision_recall_from_features(
            scoring.features.features, scoring.reference_features.features
        )
        return {"precision": precision, "recall": recall}


@METRICS.register("recall")
class Recall(Precision):  # computed together with precision (one k-NN pass serves both)
    label, also = "recall", ("precision",)


@METRICS.register("diversity")
class Diversity(Metric):
    label, better, digits, needs, reference_features = "diversity", "higher", 3, "reference", True

    @classmethod
    def compute(cls, scoring):
        from .diversity import mean_pairwise_distance

        if "reference_spread" not in scoring.cache:
            scoring.cache["reference_spread"] = mean_pairwise_distance(scoring.reference_features.features)
        return {"diversity": mean_pairwise_distance(scoring.features.features) / scoring.cache["reference_spread"]}


class _Lipschitz(Metric):
    """max over the pairs (z_i, z_{i + n/2}) of ||G(z_i) - G(z_j)||_p / ||z_i - z_j||_p."""

    better, needs, p = "lower", "noise", 2

    @classmethod
    def compute(cls, scoring):
        from .lipschitz import lipschitz_ratios

        z, x = scoring.latents, scoring.samples
        if z is None or x is None:  # scoring given images: there is no latent space
            return {cls.name: None}
        half = len(z) // 2
        z = z.to(x.device)
        ratios = lipschitz_ratios(z[:half], z[half : 2 * half], x[:half], x[half : 2 * half], cls.p)
        return {cls.name: float(ratios.max())}


@METRICS.register("lipschitz")
class LipschitzL2(_Lipschitz):
    label, digits, p = "Lipschitz (L2)", 3, 2


@METRICS.register("lipschitz_l1")
class LipschitzL1(_Lipschitz):
    label, digits, p = "Lipschitz (L1)", 1, 1


class _PathLength(Metric):
    """StyleGAN's PPL over n_samples pairs, distances in the extractor's feature space (`ppl`); None where the
    generator is a function or has no W."""

    better, digits, needs, space = "lower", 1, "generator", "z"

    @classmethod
    def compute(cls, scoring):
        from torch import nn

        from .ppl import perceptual_path_length

        generator, settings = scoring.generator, scoring.settings
        usable = isinstance(generator, nn.Module) and (cls.space == "z" or hasattr(generator, "synthesis"))
        if not usable:
            return {cls.name: None}
        result = perceptual_path_length(
            generator, settings.n_samples, cls.space, seed=settings.seed, similarity=settings.extractor.name
        )
        return {cls.name: result.mean}


@METRICS.register("ppl")
class PathLengthZ(_PathLength):
    label, space = "PPL (Z)", "z"


@METRICS.register("ppl_w")
class PathLengthW(_PathLength):
    label, space = "PPL (W)", "w"
