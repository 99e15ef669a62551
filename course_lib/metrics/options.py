"""The arguments every image-taking metric shares, given once: which features, on which device, how inputs are read.

Every metric function (`fid`, `inception_score`, `kid`, `precision_recall`, `one_nn_accuracy`, the IS relatives,
`pairwise_diversity`) and `extract_features` takes them the same way, either as keywords or as one object::

    from course_lib import metrics
    metrics.fid(generator, "mnist:test", extractor="mnist", n_samples=2000)

    digits = metrics.FeatureOptions(extractor="mnist", device="cpu", n_samples=2000, batch_size=500)
    metrics.fid(generator, "mnist:test", options=digits)
    metrics.kid(generator, "mnist:test", options=digits, subsets=20)     # the metric's own knobs stay keywords
    metrics.fid(generator, "mnist:test", options=digits, seed=1)         # a keyword overrides one field

The object is checked when it is made (a wrong type or value is one clear error, before any sampling), and the
network it names is built once per process (`features.get_extractor` memoises it), so one `FeatureOptions` passed
to several metrics extracts with the same network. "Against which reference" is the second argument of a
two-sample metric, or `GeneratorEvaluator`'s `reference`, which also keeps the reference's features between calls.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .errors import MetricInputError

# The fields that say how an input is read (inputs.as_image_source); the others say which network runs and how.
READING = ("value_range", "n_samples", "seed", "data_root", "image_size", "limit")


@dataclass(frozen=True)
class FeatureOptions:
    """Which features, on which device, and how the inputs are read.

    extractor      a registered name ('inception', 'mnist', 'pixels', or yours) or a FeatureExtractor
    device         'auto' (CUDA when available), 'cpu', 'cuda', a torch.device
    weights        the network's weights file (Inception's, or the MNIST classifier's); None: the usual search
    preprocessing  how images are resized for the network ('pytorch-fid': bilinear to 299, as pytorch-fid does)
    batch_size     images per network batch (None: the extractor's default)
    progress       show progress bars; use_cache: keep statistics of named datasets/folders/files on disk (FID)
    value_range    the range of float images, e.g. (-1, 1) or (0, 1) (None: inferred where it can be, else asked)
    n_samples      how many images to draw from a generator (or take from a larger set); seed: from which noise
    data_root, image_size, limit   how a named dataset ('mnist:test', 'celeba') is found, sized and cut
    """

    extractor: Any = "inception"
    device: Any = "auto"
    weights: Any = None
    preprocessing: str = "pytorch-fid"
    batch_size: int | None = None
    progress: bool = True
    use_cache: bool = True
    value_range: Any = None
    n_samples: int | None = None
    seed: int = 0
    data_root: Any = None
    image_size: int | None = None
    limit: int | None = None

    def __post_init__(self):
        if not isinstance(self.extractor, str) and not hasattr(self.extractor, "identity"):
            raise MetricInputError(
                f"extractor must be a registered name or a FeatureExtractor, got {type(self.extractor).__name__}"
            )
        for name in ("batch_size", "n_samples", "image_size", "limit"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise MetricInputError(f"{name} must be a positive integer or None, got {value!r}")
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise MetricInputError(f"seed must be an integer, got {self.seed!r}")
        if not isinstance(self.preprocessing, str):
            raise MetricInputError(f"preprocessing must be a name such as 'pytorch-fid', got {self.preprocessing!r}")
        for name in ("progress", "use_cache"):
            if not isinstance(getattr(self, name), bool):
                raise MetricInputError(f"{name} must be True or False, got {getattr(self, name)!r}")

    @classmethod
    def of(cls, options: FeatureOptions | None = None, /, **settings) -> FeatureOptions:
        """`options` (or the defaults) with the keyword `settings` put over it; an unknown name is a TypeError
        that lists the known ones (as a misspelt keyword argument would be)."""
        if options is not None and not isinstance(options, FeatureOptions):
            raise MetricInputError(f"options must be a metrics.FeatureOptions, got {type(options).__name__}")
        unknown = sorted(set(settings) - FIELDS)
        if unknown:
            raise TypeError(
                f"unexpected keyword argument {unknown[0]!r}; the shared metric settings are: {', '.join(ORDER)}"
            )
        base = options if options is not None else DEFAULTS
        return dataclasses.replace(base, **settings) if settings else base

    def replace(self, **changes) -> FeatureOptions:
        """A copy with some fields changed (checked like a new one)."""
        return FeatureOptions.of(self, **changes)

    @property
    def reading(self) -> dict:
        """The keywords of `inputs.as_image_source` (plus `progress`)."""
        return {name: getattr(self, name) for name in READING} | {"progress": self.progress}


ORDER = tuple(field.name for field in dataclasses.fields(FeatureOptions))
FIELDS = frozenset(ORDER)
DEFAULTS = FeatureOptions()
