"""One evaluator for generators: samples from its own seeded noise, features extracted once, every metric asked for.

    evaluator = GeneratorEvaluator(["is", "fid", "kid"], reference="mnist:test", extractor="mnist",
                                   n_samples=2000, seed=12345)
    evaluator(generator)        # {"is": ..., "fid": ..., "kid": ...}

Experiments, the FID tracker and the diversity controller all evaluate through it, so a number has
one meaning wherever it is reported:

- Samples: `n_samples` latents z ~ N(0, I) from a private torch.Generator seeded with `seed`, drawn
  batch by batch exactly as `metrics.fid(generator, n_samples=..., seed=...)` draws them (so the two
  agree), or a fixed `noise` tensor given by the caller. The generator runs in eval mode without
  gradients (its mode is restored). Neither the global RNGs nor any training stream are touched:
  everything random here has its own seed, and the global states are restored around each call in
  case an extractor or a generator draws from them.
- Features: one pass of the extractor (a registered name, "auto", or a FeatureExtractor; see
  `features.resolve_extractor`) over the samples, shared by every metric. Under torch.distributed (a process
  group of W > 1 ranks, e.g. torchrun) the pass is split: every rank generates and extracts one contiguous
  share of the samples (and of the reference's images when their features or uncached statistics are
  computed), the features are all-gathered in order (`metrics.sharded`), and every rank scores the same
  FeatureSet one process would have: the same numbers, W times less extraction each. Every rank must then make
  the same calls (they meet in collectives); the callers (FID tracker, experiment runner) let rank 0 alone
  write what they write.
- Reference: anything `metrics` accepts (a dataset name, a folder, an .npz, a uint8 tensor, an
  ImageSource, a FeatureSet, Statistics or a statistics .npz). It is processed once, on the first
  call: Gaussian statistics only when FID is the only metric that needs it (cached on disk when the
  images can be named), else its features.
- Metrics: the names registered in `table.METRICS` (or `module.path:Class` of your own `table.Metric`)
  plus `is_std` (the spread of IS over its splits). Each is computed by its class from one `table.Scoring`:
  there is no list of metrics here. A sample
  set with NaN or infinite values scores NaN on every metric instead of raising: a diverging run
  gets a bad score, not a crashed evaluation.
"""

from __future__ import annotations

import contextlib
import math
import random
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from . import sharded
from .errors import MetricInputError
from .features import FeatureExtractor, FeatureSet, extract_from_source, resolve_extractor
from .inputs import ImageSource, as_image_source, check_float_batch, noise_batches
from .options import FeatureOptions
from .protocol import evaluator_protocol
from .stats_cache import Statistics
from .table import Scoring, metric
from .uncertainty import check_settings, evaluator_intervals, evaluator_results

SPREADS = {"is_std": "is"}  # keys that come with a metric: its spread


@contextlib.contextmanager
def preserved_rng():
    """Restore the global torch / numpy / Python (and CUDA) RNG states on exit."""
    torch_state, np_state, py_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    cuda_state = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        torch.set_rng_state(torch_state)
        np.random.set_state(np_state)
        random.setstate(py_state)
        if cuda_state is not None:
            torch.cuda.set_rng_state_all(cuda_state)


class NonFiniteSamples(Exception):
    """Raised inside an evaluation when the generator produced NaN or infinite values."""


class _SampleSource(ImageSource):
    """Generated images as an ImageSource: made in the generator's batches, handed out in the extractor's."""

    def __init__(
        self,
        sample: Callable[[torch.Tensor], torch.Tensor],
        noise: Iterable[torch.Tensor],
        count: int,
        keep_outputs: bool,
    ):
        self.sample, self.noise, self.count = sample, noise, count
        self.description = f"{count} generated samples"
        self.keep_outputs = keep_outputs
        self.latents: list[torch.Tensor] = []
        self.outputs: list[torch.Tensor] = []

    def batches(self, batch_size: int) -> Iterator[torch.Tensor]:
        pending: list[torch.Tensor] = []
        waiting = 0
        for z in self.noise:
            x = self.sample(z)
            if not torch.is_tensor(x) or x.ndim != 4 or x.shape[1] not in (1, 3) or len(x) != len(z):
                raise MetricInputError(
                    f"the generator returned {tuple(getattr(x, 'shape', ()))} for {len(z)} "
                    "latents, expected (N, 1 or 3, H, W)"
                )
            x = x.float()
            if not torch.isfinite(x).all():
                raise NonFiniteSamples
            if self.keep_outputs:
                self.latents.append(z)
                self.outputs.append(x)
            # Clamped first: a tanh's rounding past +-1 must not abort a long run's evaluation.
            pending.append(check_float_batch(x.clamp(-1, 1), (-1.0, 1.0), "generator output"))
            waiting += len(x)
            while waiting >= batch_size:
                joined = torch.cat(pending) if len(pending) > 1 else pending[0]
                yield joined[:batch_size]
                rest = joined[batch_size:]
                pending, waiting = ([rest] if len(rest) else []), len(rest)
        if waiting:
            yield torch.cat(pending)


class GeneratorEvaluator:
    """Scores generators against one reference set (see the module docstring).

    metrics       names in METRICS ("is", "fid", "kid", "precision", "recall", "diversity", "lipschitz",
                  "lipschitz_l1", "ppl", "ppl_w") and "is_std"
    reference     the real images (or their statistics/features); needed by every metric but IS and Lipschitz
    extractor     a registered name, "auto" (resolved with `channels`, `prefer_digits`), or a FeatureExtractor
    n_samples, seed   how many samples, from which noise seed; or `noise`: the exact latents (N, latent_dim)
    batch_size    images per extractor batch (default: the extractor's), also the generator's batch when the
                  noise is drawn here; `sample_batch_size`: the generator's batch for a given `noise`
    is_splits     IS is the mean (and `is_std` the std) over this many splits
    kid_subset, kid_subsets   KID averages MMD^2 over `kid_subsets` random subsets of this size (seeded by `seed`)
    optional_logits  when the extractor has no classifier head: IS is None (True) or an error (False)
    reference_limit, data_root, image_size   how to read a named reference dataset
    preprocessing the Inception resize mode: pytorch-fid (default), clean, legacy-tensorflow, ... (see `resize`)
    ci, bootstrap  a confidence level (e.g. 0.95): each metric of the samples' features gets a percentile bootstrap
                  interval over `bootstrap` resamples of the samples (seeded by `seed`); see `results()`
    """

    def __init__(
        self,
        metrics: Iterable[str],
        reference: Any = None,
        *,
        extractor: str | FeatureExtractor = "auto",
        n_samples: int | None = None,
        seed: int = 0,
        noise: torch.Tensor | None = None,
        batch_size: int | None = None,
        sample_batch_size: int | None = None,
        device="auto",
        channels: int | None = None,
        prefer_digits: bool = False,
        is_splits: int = 10,
        kid_subset: int = 1000,
        kid_subsets: int = 50,
        optional_logits: bool = False,
        reference_limit: int | None = None,
        data_root=None,
        image_size: int | None = None,
        use_cache: bool = True,
        progress: bool = False,
        ci: float | None = None,
        bootstrap: int = 200,
        preprocessing: str = "pytorch-fid",
    ):
        self.metrics = tuple(dict.fromkeys([metrics] if isinstance(metrics, str) else metrics))
        # name asked for -> its class (one lookup: registered names, or your own `module.path:Class`)
        self.metric_classes = {name: metric(name) for name in self.metrics if name not in SPREADS}
        for spread, of in SPREADS.items():
            if spread in self.metrics and of not in self.metrics:
                raise MetricInputError(f"{spread} comes with {of}: ask for both")
        needing = [name for name, cls in self.metric_classes.items() if cls.needs == "reference"]
        if needing and reference is None:
            raise MetricInputError(f"{', '.join(needing)} compare with real images: give a reference")
        if noise is not None:
            noise = torch.as_tensor(noise)
            if noise.ndim != 2 or len(noise) < 2:
                raise MetricInputError(f"noise must be a (N, latent_dim) tensor with N >= 2, got {tuple(noise.shape)}")
            if n_samples is not None and n_samples != len(noise):
                raise MetricInputError(f"n_samples={n_samples} but {len(noise)} latents were given")
            n_samples = len(noise)
        if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples < 2:
            raise MetricInputError(f"n_samples must be an integer >= 2, got {n_samples!r}")
        for name, value in (("batch_size", batch_size), ("sample_batch_size", sample_batch_size)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise MetricInputError(f"{name} must be a positive integer, got {value!r}")
        self.n_samples, self.seed, self.fixed_noise = n_samples, int(seed), noise
        self.batch_size, self.sample_batch_size = batch_size, sample_batch_size
        self.extractor_setting, self.device, self.channels = extractor, device, channels
        self.prefer_digits, self.optional_logits = prefer_digits, optional_logits
        self.is_splits, self.kid_subset, self.kid_subsets = is_splits, kid_subset, kid_subsets
        self.reference = reference
        self.reference_kwargs = dict(data_root=data_root, image_size=image_size, limit=reference_limit)
        self.use_cache, self.progress = use_cache, progress
        check_settings(ci, bootstrap)
        self.ci, self.bootstrap = ci, bootstrap  # intervals: uncertainty.evaluator_intervals, called in _score
        self.preprocessing = preprocessing  # Inception's resize mode (resize.MODES)
        self.last_values: dict = {}
        self.last_count = 0
        self.last_intervals: dict = {}
        self._resampling = False
        self.extractor: FeatureExtractor | None = extractor if isinstance(extractor, FeatureExtractor) else None
        self.reference_stats: Statistics | None = None
        self.reference_features: FeatureSet | None = None
        self._reference_cache: dict = {}  # what metrics compute once per reference (Scoring.cache)
        self._source: ImageSource | None = None

    # ------------------------------------------------------------------------------ set-up
    @property
    def label(self) -> str:
        """How the numbers are labelled: the extractor's label (or the setting before the first call)."""
        return self.extractor.label if self.extractor is not None else str(self.extractor_setting)

    def _needing(self, *needs: str) -> list[str]:
        """The asked-for metrics whose class needs one of `needs`."""
        return [name for name, cls in self.metric_classes.items() if cls.needs in needs]

    def _reference_source(self) -> ImageSource:
        if self._source is None:  # built once: a named dataset is decoded once
            self._source = as_image_source(
                self.reference, what="reference images", progress=self.progress, **self.reference_kwargs
            )
        return self._source

    def _channels(self) -> int:
        if self.channels is not None:
            return self.channels
        if self.reference is None or isinstance(self.reference, (FeatureSet, Statistics)):
            return 3
        if _is_statistics_file(self.reference):  # a statistics .npz has no images to look at: as for Statistics
            return 3
        first = next(iter(self._reference_source().batches(1)), None)
        return 3 if first is None else int(first.shape[1])

    def prepare(self) -> GeneratorEvaluator:
        """Resolve the extractor and process the reference (each once; also done by the first call)."""
        with preserved_rng():
            if self.extractor is None:
                need_head = bool(self._needing("logits")) and not self.optional_logits
                self.extractor = resolve_extractor(
                    self.extractor_setting,
                    self.device,
                    self._channels(),
                    need_head=need_head,
                    prefer_digits=self.prefer_digits,
                    preprocessing=self.preprocessing,
                )
            if self._reference_feature_metrics() and self.reference_features is None:
                self._prepare_reference_features()
            if self._statistics_metrics() and self.reference_stats is None:
                self._prepare_reference_statistics()
        return self

    def _statistics_metrics(self) -> list[str]:
        """The asked-for metrics that compare with the reference's Gaussian statistics (FID)."""
        return [n for n, cls in self.metric_classes.items() if cls.needs == "reference" and not cls.reference_features]

    def _reference_feature_metrics(self) -> list[str]:
        """The asked-for metrics that need the reference's features, not only its Gaussian statistics."""
        return [name for name, cls in self.metric_classes.items() if cls.reference_features]

    def _prepare_reference_features(self) -> None:
        from .features import same_extractor

        if isinstance(self.reference, Statistics) or _is_statistics_file(self.reference):
            raise MetricInputError(
                "the reference is Gaussian statistics (mean and covariance only); "
                f"{', '.join(self._reference_feature_metrics())} need its images "
                "or their features"
            )
        if isinstance(self.reference, FeatureSet):
            features = self.reference
        else:
            # extract_from_source, split across the ranks under torch.distributed
            features = sharded.sharded_source_features(
                self._reference_source(),
                self.extractor,
                want_logits=False,
                batch_size=self.batch_size,
                progress=self.progress,
            )
        if features.extractor_identity != self.extractor.identity:
            same_extractor(features, _empty_features(self.extractor))
        self.reference_features = features
        self._reference_cache = {}

    def _prepare_reference_statistics(self) -> None:
        from .fid import statistics_of

        reference = self.reference_features if self.reference_features is not None else self.reference
        if not isinstance(reference, (Statistics, FeatureSet)) and not _is_statistics_file(reference):
            reference = self._reference_source()
        if isinstance(reference, ImageSource) and sharded.rank_and_world()[1] > 1:  # images: their features in shares
            stats = sharded.sharded_statistics(
                reference, self.extractor, batch_size=self.batch_size, progress=self.progress, use_cache=self.use_cache
            )
        else:
            reading = FeatureOptions(batch_size=self.batch_size, progress=self.progress, use_cache=self.use_cache)
            stats = statistics_of(reference, self.extractor, reading, what="reference images")
        ids = {stats.extractor_identity, self.extractor.identity} - {""}
        if stats.dim != self.extractor.feature_dim or len(ids) > 1:
            raise MetricInputError(
                f"the reference statistics ({stats.extractor_label or 'unknown features'}, "
                f"{stats.dim}-d) do not come from the {self.extractor.label} extractor in use; "
                "recompute them with it"
            )
        self.reference_stats = stats

    # ---------------------------------------------------------------------------- sampling
    def noise(self, latent_dim: int) -> torch.Tensor:
        """The latents every evaluation uses (CPU): the given `noise`, or drawn from `seed` as metrics.fid does."""
        if self.fixed_noise is not None:
            return self.fixed_noise
        return torch.cat(list(self._noise_batches(latent_dim)))

    def _generation_batch(self) -> int:
        return self.sample_batch_size or self.batch_size or self.extractor.batch_size

    def _noise_batches(self, latent_dim: int) -> Iterator[torch.Tensor]:
        if self.fixed_noise is not None:
            return iter(self.fixed_noise.split(self._generation_batch()))
        return noise_batches(self.n_samples, latent_dim, self.seed, self._generation_batch())

    def _sampler(self, generator) -> tuple[Callable[[torch.Tensor], torch.Tensor], int]:
        """z -> images in [-1, 1] (eval mode, no gradients, on the generator's device) and the latent size."""
        if isinstance(generator, nn.Module):
            if not hasattr(generator, "latent_dim"):
                raise MetricInputError("a generator must be an nn.Module with a `latent_dim` attribute")
            try:
                device = next(generator.parameters()).device
            except StopIteration:
                device = torch.device("cpu")

            def sample(z):
                was_training = generator.training
                generator.eval()
                try:
                    with torch.no_grad():
                        return generator(z.to(device))
                finally:
                    generator.train(was_training)

            return sample, generator.latent_dim
        if callable(generator):  # a function z -> images, e.g. a conditional sampler
            if self.fixed_noise is None:
                raise MetricInputError("a sampling function needs the latents: give the evaluator `noise`")

            def sample_fn(z):
                with torch.no_grad():
                    return generator(z)

            return sample_fn, self.fixed_noise.shape[1]
        raise MetricInputError(
            f"expected a generator (nn.Module with latent_dim) or a function z -> images, "
            f"got {type(generator).__name__}"
        )

    # ---------------------------------------------------------------------------- scoring
    def __call__(self, generator) -> dict[str, float | None]:
        """The metrics of `n_samples` samples of `generator` (a module, or a function z -> images in [-1, 1])."""
        self.prepare()
        sample, latent_dim = self._sampler(generator)
        with preserved_rng():
            try:
                features, latents, samples = self._sample_features(sample, latent_dim)
            except NonFiniteSamples:
                self.last_values, self.last_intervals = {name: math.nan for name in self.metrics}, {}
                return dict(self.last_values)
            values = self._score(
                features,
                generator=generator if isinstance(generator, nn.Module) else None,
                latents=latents,
                samples=samples,
            )
        return {name: values[name] for name in self.metrics}

    def _sample_features(self, sample, latent_dim: int) -> tuple[FeatureSet, torch.Tensor | None, torch.Tensor | None]:
        """The samples' features (and their latents and images when a metric needs them). Under torch.distributed
        each rank generates its share of the same latents and the shares are gathered in order (module docstring);
        NonFiniteSamples on every rank when any rank's share is not finite."""
        keep_outputs = bool(self._needing("noise", "samples"))
        rank, world = sharded.rank_and_world()
        if world == 1:
            noise, count = self._noise_batches(latent_dim), self.n_samples
        else:
            start, stop = sharded.share_bounds(self.n_samples)
            # A rank with an empty share still generates one sample, so it knows the widths; its row is dropped.
            every = self.noise(latent_dim)  # the latents one process draws, whatever the world size
            share = every[start:stop] if stop > start else every[:1]
            noise, count = iter(share.split(self._generation_batch())), len(share)
        source = _SampleSource(sample, noise, count, keep_outputs)
        source.description = f"{self.n_samples} generated samples"  # the whole set's, which every rank ends with
        try:
            features = extract_from_source(
                source,
                self.extractor,
                want_logits=self._want_logits(),
                batch_size=self.batch_size or self.extractor.batch_size,
                progress=self.progress and rank == 0,
            )
            finite = True
        except NonFiniteSamples:
            finite = False
        if world > 1 and sharded.any_rank(not finite):  # every rank returns NaN, none waits for the others in a gather
            finite = False
        if not finite:
            raise NonFiniteSamples
        latents = torch.cat(source.latents) if keep_outputs and source.latents else None
        samples = torch.cat(source.outputs) if keep_outputs and source.outputs else None
        if world > 1:
            keep = stop - start
            features = sharded.gather_feature_set(features, keep, self.n_samples)
            if latents is not None:
                latents, samples = (
                    sharded.gather_rows(latents[:keep], self.n_samples),
                    sharded.gather_rows(samples[:keep], self.n_samples),
                )
        return features, latents, samples

    def score_images(self, images: Any, **source_kwargs) -> dict[str, float | None]:
        """The same metrics for given images (e.g. real ones: what a perfect generator scores).
        Metrics of the latent space (Lipschitz) are None."""
        self.prepare()
        source = as_image_source(images, what="images", progress=self.progress, **source_kwargs)
        with preserved_rng():
            # extract_from_source, split across the ranks under torch.distributed
            features = sharded.sharded_source_features(
                source,
                self.extractor,
                want_logits=self._want_logits(),
                batch_size=self.batch_size,
                progress=self.progress,
            )
            values = self.score_features(features)
        return {name: values.get(name) for name in self.metrics}

    def _want_logits(self) -> bool:
        return bool(self._needing("logits")) and self.extractor.num_classes is not None

    def score_features(self, features: FeatureSet) -> dict[str, float | None]:
        """Every asked-for metric from the samples' features alone (those of the latent space are None)."""
        return self._score(features)

    def _score(self, features: FeatureSet, **extra) -> dict[str, float | None]:
        """Each asked-for metric's class computes it (and the keys it fills beside it) from one Scoring."""
        scoring = Scoring(
            features,
            self,
            reference_features=self.reference_features,
            reference_stats=self.reference_stats,
            cache=self._reference_cache,
            **extra,
        )
        out: dict[str, float | None] = {}
        for name, cls in self.metric_classes.items():
            if name not in out:
                values = cls.compute(scoring)
                if cls.name != name and cls.name in values:  # asked for in another spelling (or by path)
                    values[name] = values.pop(cls.name)
                out.update(values)
        if not self._resampling:  # the one hook of the intervals and results(): the last full evaluation
            self.last_values, self.last_count = out, len(features)
            self.last_intervals = evaluator_intervals(self, features, out) if self.ci is not None else {}
        return out

    def score_resampled(self, features: FeatureSet) -> dict[str, float | None]:
        """The metrics of resampled features (a bootstrap replicate), leaving the last results alone."""
        self._resampling = True
        try:
            return self._score(features)
        finally:
            self._resampling = False

    @property
    def protocol(self) -> str:
        """How the numbers are computed: resize mode, weights, sample count, reference set (see `protocol`)."""
        return evaluator_protocol(self)

    def results(self) -> dict:
        """The last evaluation as MetricResults (name -> result): values, intervals when `ci` is set, protocol."""
        return evaluator_results(self)


def _is_statistics_file(x) -> bool:
    from .stats_cache import is_statistics_file

    return (isinstance(x, str) or hasattr(x, "__fspath__")) and is_statistics_file(x)


def _empty_features(extractor: FeatureExtractor) -> FeatureSet:
    """A FeatureSet carrying only an extractor's identity, to compare another set's origin with."""
    return FeatureSet(
        torch.zeros(0, extractor.feature_dim),
        None,
        extractor.name,
        extractor.label,
        extractor.identity,
        extractor.comparable_with_inception,
    )
