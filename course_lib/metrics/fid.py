"""Fréchet Inception Distance (Heusel et al. 2017).

Fit a Gaussian to the features of each image set, N(mu1, S1) and N(mu2, S2), and take the squared
2-Wasserstein (Fréchet) distance between them:

    FID = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr( (S1 S2)^{1/2} )

Only the trace of the matrix square root is needed, and that is the sum of the square roots of the
eigenvalues of S1 S2. S1 S2 is not symmetric, but it is similar to a symmetric PSD matrix: with
S1 = L L^T (Cholesky), S1 S2 = L (L^T S2 L) L^{-1}, so its eigenvalues are those of M = L^T S2 L,
which a symmetric eigenvalue solver finds quickly and stably (no complex arithmetic, no spurious
imaginary parts). When S1 is singular (fewer images than feature dimensions) L comes from S1's
eigendecomposition instead (L = V diag(sqrt(w))). Everything is float64. `method="scipy"` computes
scipy.linalg.sqrtm(S1 S2) instead, as pytorch-fid does; tests use it as a cross-check.
"""

from __future__ import annotations

from typing import Any

from .errors import MetricInputError
from .features import FeatureSet, extractor_for, features_with
from .frechet import frechet_distance, trace_sqrt_product, trace_sqrt_product_scipy  # noqa: F401 (their old home)
from .inputs import as_image_source
from .options import FeatureOptions
from .protocol import protocol_text
from .results import MetricResult
from .stats_cache import Statistics, cached_statistics, gaussian_statistics, is_statistics_file
from .unbiased import fid_infinity
from .uncertainty import bootstrap_ci, check_settings


def statistics_of(x: Any, extractor, options: FeatureOptions, what: str = "images") -> Statistics:
    """Statistics of anything FID accepts: Statistics, a statistics .npz, a FeatureSet, or images (read and run
    through `extractor` as `options` says; cached on disk when the images can be named and options.use_cache)."""
    if isinstance(x, Statistics):
        return x
    if isinstance(x, FeatureSet):
        mu, sigma = gaussian_statistics(x)
        return Statistics(mu, sigma, len(x), x.extractor_identity, x.extractor_label, x.description)
    if isinstance(x, (str,)) or hasattr(x, "__fspath__"):
        if is_statistics_file(x):
            return Statistics.load(x)
    source = as_image_source(x, what=what, **options.reading)
    return cached_statistics(
        source, extractor, batch_size=options.batch_size, progress=options.progress, use_cache=options.use_cache
    )


def _check_same_space(a: Statistics, b: Statistics, extractor) -> None:
    if a.dim != b.dim:
        raise MetricInputError(
            f"cannot compare {a.dim}-d statistics with {b.dim}-d ones: they come from different "
            f"feature extractors ({a.extractor_label or 'unknown'} vs {b.extractor_label or 'unknown'})"
        )
    # Statistics files from pytorch-fid carry no identity; ours name the network and its preprocessing.
    ids = {s.extractor_identity for s in (a, b) if s.extractor_identity}
    if len(ids) > 1:
        raise MetricInputError(
            f"the two sides were computed with different feature extractors or preprocessing "
            f"({' vs '.join(sorted(ids))}); recompute one of them"
        )
    if extractor is not None and a.dim != extractor.feature_dim:
        raise MetricInputError(
            f"statistics are {a.dim}-d but the {extractor.name} extractor gives "
            f"{extractor.feature_dim}-d features: use the extractor they were computed with"
        )


def fid(
    a: Any,
    b: Any,
    *,
    method: str = "eigh",
    ci: float | None = None,
    bootstrap: int = 200,
    unbiased: bool = False,
    options: FeatureOptions | None = None,
    **settings,
) -> MetricResult:
    """FID between two image sets (each: images in any accepted form, a FeatureSet, Statistics or a stats .npz).

    `options` / `settings`: the shared metric settings (`FeatureOptions`: extractor, device, n_samples, ...).
    Statistics of named datasets, folders and files are cached on disk (see stats_cache). With
    extractor='mnist' the result is an MNIST-classifier FID, labelled as not comparable with Inception FIDs.
    `method`: 'eigh' (default) or 'scipy' (pytorch-fid's sqrtm; slower, a cross-check).
    `ci` (e.g. 0.95): add a percentile bootstrap interval over the first set's samples (`bootstrap` resamples,
    seeded by the options' seed; the second set held fixed). `unbiased`: FID_inf, the extrapolation to infinitely
    many samples (Chong & Forsyth 2020; `unbiased.fid_infinity`). Both need the first set as images or features.
    """
    opts = FeatureOptions.of(options, **settings)
    images = [x for x in (a, b) if not (isinstance(x, Statistics) or is_statistics_file(x))]
    ext = extractor_for(opts, images) if images else None
    if ci is not None or unbiased:
        return _fid_of_samples(a, b, ext, opts, method, ci, bootstrap, unbiased)
    sa = statistics_of(a, ext, opts, what="first images")
    sb = statistics_of(b, ext, opts, what="second images")
    _check_same_space(sa, sb, ext)
    value = frechet_distance(sa.mu, sa.sigma, sb.mu, sb.sigma, method=method)
    label = ext.label if ext is not None else (sa.extractor_label or sb.extractor_label or "features of unknown origin")
    comparable = ext.comparable_with_inception if ext is not None else "MNIST" not in label
    protocol = protocol_text(ext, sa.n, sb.description or None, sb.n) if ext is not None else ""
    return MetricResult("FID", value, None, label, comparable, (sa.n, sb.n), protocol=protocol)


def _fid_of_samples(a, b, ext, opts: FeatureOptions, method, ci, bootstrap, unbiased) -> MetricResult:
    """FID with a bootstrap interval or FID_inf: both resample the first set's features, so extract them."""
    if isinstance(a, Statistics) or is_statistics_file(a):
        raise MetricInputError("a confidence interval or FID_inf resamples the first set: give images or features")
    if ci is not None:
        check_settings(ci, bootstrap)
    fa = features_with(a, ext, opts, want_logits=False)
    sb = statistics_of(b, ext, opts, what="second images")
    if unbiased:
        return fid_infinity(fa, sb, seed=opts.seed)
    plain = opts.replace(progress=False)
    return bootstrap_ci(fid, fa, sb, resamples=bootstrap, level=ci, seed=opts.seed, method=method, options=plain)
