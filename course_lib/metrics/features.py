"""One interface over the feature extractors, and batched feature extraction with a progress bar.

An extractor maps a batch of images (uint8, or float in [0, 1]) to features (N, D) and, when it has
a classifier head, class logits (N, K):

- 'inception': the FID Inception network (2048-d pool3 features, 1008-way head when the weights have
  it). Its numbers are the standard ones, comparable with published FIDs/ISs.
- 'mnist': the small MNIST classifier shipped in the package (128-d features, 10 classes). Offline,
  fast, only meaningful for digits, and NOT comparable with Inception-based numbers.
- 'pixels': the image average-pooled to 8x8 RGB (192 values, no network, no classes). A Fréchet
  distance on these compares coarse colour layouts only: cheap smoke tests on a CPU.

They live in one registry, `EXTRACTORS` (name -> class, filled by `@register_extractor`);
`get_extractor(name)` builds one, and `resolve_extractor(name, device, channels)` also understands
"auto" (the one rule every caller uses, see its docstring).

`extract_features(images, extractor)` runs an extractor over any accepted input (see `inputs`) and
returns a `FeatureSet`; every metric accepts either images or a FeatureSet, so one extraction can
serve FID, KID, precision/recall, ... alike.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from course_lib.core.registry import Registry
from course_lib.core.runtime import pick_device

from .errors import MetricInputError
from .inputs import ImageSource, as_image_source
from .options import FeatureOptions

NOT_COMPARABLE = "MNIST-classifier features: not comparable with Inception-based numbers"


class FeatureExtractor:
    """Base class: subclasses set the attributes below and implement `__call__`."""

    name: str = ""  # 'inception' or 'mnist'
    label: str = ""  # how results are labelled, e.g. "Inception-v3 (TF FID weights)"
    identity: str = ""  # exact network + preprocessing, for the statistics cache
    feature_dim: int = 0
    num_classes: int | None = None
    comparable_with_inception: bool = False
    device: torch.device = torch.device("cpu")
    batch_size: int = 50  # default images per batch (per-batch overhead vs memory)

    def __call__(self, batch: torch.Tensor, want_logits: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        raise NotImplementedError

    @classmethod
    def create(
        cls, device: torch.device, weights=None, preprocessing: str = "pytorch-fid", need_head: bool = False
    ) -> FeatureExtractor:
        """Build one from get_extractor's settings (each subclass reads the ones that concern it)."""
        return cls(device)


EXTRACTORS = Registry("feature extractor", base=FeatureExtractor)


def register_extractor(name: str):
    """Class decorator: make a FeatureExtractor available by name to every metric, CLI and callback."""
    return EXTRACTORS.register(name)


@register_extractor("inception")
class InceptionExtractor(FeatureExtractor):
    """The FID Inception network, batch norms folded, channels-last memory layout (faster convolutions)."""

    name = "inception"
    comparable_with_inception = True

    def __init__(
        self,
        weights=None,
        device="auto",
        preprocessing: str = "pytorch-fid",
        need_head: bool = False,
        download: bool | None = None,
        progress: bool = True,
        dtype: torch.dtype = torch.float32,
    ):
        from .inception import (
            FEATURE_DIM,
            NUM_CLASSES,
            PREPROCESSING,
            TF_INCEPTION_ID,
            InceptionWeights,
            find_inception_weights,
            load_weights_file,
        )
        from .resize import canonical_mode

        if preprocessing not in PREPROCESSING:
            raise MetricInputError(
                f"unknown Inception preprocessing {preprocessing!r}; choose one of {', '.join(PREPROCESSING)}"
            )
        if isinstance(weights, InceptionWeights):
            found = weights
        elif weights is not None:
            found = load_weights_file(weights)
        else:
            found = find_inception_weights(None, need_head=need_head, download=download, progress=progress)
        if need_head and not found.has_head:
            from .errors import HeadMissing
            from .inception import head_help

            raise HeadMissing(head_help() + f" (weights in use: {found.source})")
        self.weights_source = found.source
        self.device = pick_device(device) if isinstance(device, (str, type(None))) else torch.device(device)
        self.preprocessing = preprocessing
        model = found.build()
        self.has_head = model.has_head
        # float32 by default (as every reference implementation); float64 for exact comparisons.
        self.dtype = dtype
        # Fold the batch norms in the target precision, so float64 runs carry no float32 rounding.
        self.model = model.to(dtype).fused_for_inference().to(self.device).to(memory_format=torch.channels_last)
        self.feature_dim, self.num_classes = FEATURE_DIM, NUM_CLASSES if self.has_head else None
        real = found.identity == TF_INCEPTION_ID
        self.label = "Inception-v3 (TF FID weights)" if real else f"Inception-v3 ({found.source})"
        self.comparable_with_inception = real
        # Modes that compute the same input (legacy-pytorch is pytorch-fid's) share an identity, hence cached statistics.
        mode_id = canonical_mode(preprocessing)
        self.identity = f"{found.identity}|{mode_id}" + ("" if dtype == torch.float32 else f"|{dtype}")

    @torch.inference_mode()
    def __call__(self, batch, want_logits=False):
        from .inception import preprocess

        x = preprocess(batch.to(self.device), self.preprocessing, self.dtype).contiguous(
            memory_format=torch.channels_last
        )
        pool = self.model(x)
        return pool, (self.model.logits(pool) if want_logits else None)

    @classmethod
    def create(cls, device, weights=None, preprocessing="pytorch-fid", need_head=False):
        return cls(weights, device, preprocessing, need_head=need_head)


@register_extractor("mnist")
class MNISTExtractor(FeatureExtractor):
    """The embedded MNIST classifier: 128-d global-average-pooled features and 10 digit logits."""

    name = "mnist"
    label = "MNIST classifier, not comparable with Inception numbers"
    comparable_with_inception = False
    num_classes = 10
    batch_size = 500  # a small network: large batches amortise the per-call overhead

    def __init__(self, device="auto", path=None):
        from .mnist_classifier import ASSET, load_mnist_classifier

        self.device = pick_device(device) if isinstance(device, (str, type(None))) else torch.device(device)
        # channels-last: oneDNN's faster convolution layout on CPUs (and tensor cores on GPUs).
        self.model = load_mnist_classifier(path, self.device).to(memory_format=torch.channels_last)
        self.feature_dim = self.model.feature_dim
        with open(path or ASSET, "rb") as f:  # small file: its hash names the exact weights
            self.identity = f"mnist-classifier-{hashlib.sha256(f.read()).hexdigest()[:16]}"

    @torch.inference_mode()
    def __call__(self, batch, want_logits=False):
        from .mnist_classifier import to_classifier_input

        x = to_classifier_input(batch.to(self.device)).contiguous(memory_format=torch.channels_last)
        features, logits = self.model.features_and_logits(x)
        return features, (logits if want_logits else None)

    @classmethod
    def create(cls, device, weights=None, preprocessing="pytorch-fid", need_head=False):
        return cls(device, weights)


@register_extractor("pixels")
class PixelExtractor(FeatureExtractor):
    """Features = the image average-pooled to 8x8 RGB (192 values in [0, 1]). No network at all.

    A Fréchet distance on these compares coarse colour layouts only: cheap enough for CPU smoke tests
    of the tracking machinery, and NOT comparable with Inception FIDs.
    """

    name = "pixels"
    label = "8x8 pixels, not comparable with Inception numbers"
    identity = "pixels-8x8-avgpool-v1"
    feature_dim = 3 * 8 * 8
    comparable_with_inception = False
    batch_size = 500

    def __init__(self, device="cpu"):
        self.device = pick_device(device) if isinstance(device, (str, type(None))) else torch.device(device)

    @torch.inference_mode()
    def __call__(self, batch, want_logits=False):
        x = batch.to(self.device)
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return torch.nn.functional.adaptive_avg_pool2d(x, 8).flatten(1), None


def _no_head(extractor: str | FeatureExtractor) -> MetricInputError:
    from .errors import HeadMissing
    from .inception import head_help

    name = extractor if isinstance(extractor, str) else extractor.name
    if name == "inception":
        return HeadMissing(head_help())
    return MetricInputError(
        f"the {name!r} feature extractor has no classifier head, which class-based scores "
        "(Inception Score and relatives) need; use 'inception' or 'mnist'"
    )


_EXTRACTOR_MEMO: dict = {}


def get_extractor(
    extractor: str | FeatureExtractor = "inception",
    device="auto",
    weights=None,
    preprocessing: str = "pytorch-fid",
    need_head: bool = False,
) -> FeatureExtractor:
    """An extractor by registered name (see EXTRACTORS), built once per process and reused.

    `weights`: the Inception weights file, or the MNIST classifier's; `need_head`: the caller needs
    class logits, so an extractor without them is an error now rather than after the sampling.
    """
    if isinstance(extractor, FeatureExtractor):
        if need_head and extractor.num_classes is None:
            raise _no_head(extractor)
        return extractor
    if extractor not in EXTRACTORS:
        raise MetricInputError(f"unknown feature extractor {extractor!r}; choose one of {', '.join(EXTRACTORS)}")
    cls = EXTRACTORS[extractor]
    if need_head and cls.num_classes is None and extractor != "inception":  # Inception's head depends on its weights
        raise _no_head(extractor)
    dev = pick_device(device)
    key = (
        extractor,
        str(dev),
        str(weights) if not hasattr(weights, "identity") else weights.identity,
        preprocessing,
        need_head,
        os.environ.get("COURSE_LIB_INCEPTION_WEIGHTS"),
    )
    if key not in _EXTRACTOR_MEMO:
        _EXTRACTOR_MEMO[key] = cls.create(dev, weights, preprocessing, need_head)
    return _EXTRACTOR_MEMO[key]


AUTO = "auto"


def extractor_names(auto: bool = True) -> tuple[str, ...]:
    """The names a setting may hold: every registered extractor, and "auto"."""
    return (*EXTRACTORS, AUTO) if auto else tuple(EXTRACTORS)


def _auto_choice(channels: int, need_head: bool, prefer_digits: bool) -> tuple[str, Any]:
    """(name, weights) for "auto"; see resolve_extractor."""
    from . import inception
    from .errors import WeightsNotFound

    grey = channels == 1
    if grey and prefer_digits:
        return "mnist", None
    try:
        return "inception", inception.find_inception_weights(need_head=need_head, download=False, progress=False)
    except WeightsNotFound:
        if grey:
            return "mnist", None
        if need_head:
            raise
        return "pixels", None


def auto_extractor_name(channels: int, need_head: bool = False, prefer_digits: bool = False) -> str:
    """The registered name "auto" stands for with these images (see resolve_extractor)."""
    return _auto_choice(channels, need_head, prefer_digits)[0]


def resolve_extractor(
    name: str | FeatureExtractor,
    device="auto",
    channels: int = 3,
    need_head: bool = False,
    prefer_digits: bool = False,
    preprocessing: str = "pytorch-fid",
) -> FeatureExtractor:
    """The extractor for a setting: a registered name, a FeatureExtractor, or "auto", which means, in order:

    1. 'inception' when its weights are on disk (never downloaded for "auto"; with the classifier head
       when the caller needs class logits): the standard, comparable with published numbers;
    2. else 'mnist' (the shipped digit classifier) for grey images (channels == 1);
    3. else 'pixels' for colour images (no network: FID-like numbers only, no class scores).

    `prefer_digits` moves rule 2 first for grey images: for callers that score a generator many times
    during training (the diversity controller), where Inception would cost more than the training.
    When the caller needs class logits and no rule applies, the error says how to get the weights.
    `preprocessing`: Inception's resize mode (`resize.MODES`; the other extractors have their own input).
    """
    weights = None
    if isinstance(name, str) and name == AUTO:
        name, weights = _auto_choice(channels, need_head, prefer_digits)
    return get_extractor(name, device, weights=weights, preprocessing=preprocessing, need_head=need_head)


def extractor_for(options: FeatureOptions, inputs, need_head: bool = False) -> FeatureExtractor | None:
    """The extractor `options` names, for the inputs that are still images (None when all are FeatureSets).

    Features given as FeatureSets must come from the extractor asked for, or the two sides would
    live in different feature spaces: that is an error, not a silent mix.
    """
    if all(isinstance(x, FeatureSet) or x is None for x in inputs):
        return None
    extractor = options.extractor
    if isinstance(extractor, str):
        for x in inputs:
            if isinstance(x, FeatureSet) and x.extractor != extractor:
                raise MetricInputError(
                    f"features given were extracted with {x.extractor!r} but extractor={extractor!r}; "
                    f"pass extractor={x.extractor!r} so both sides use the same network"
                )
    return get_extractor(extractor, options.device, options.weights, options.preprocessing, need_head=need_head)


def same_extractor(fa: FeatureSet, fb: FeatureSet) -> None:
    """Raise unless two feature sets come from the same network (same weights and preprocessing)."""
    if fa.extractor_identity != fb.extractor_identity:
        raise MetricInputError(
            f"the two feature sets come from different extractors ({fa.extractor_label} vs "
            f"{fb.extractor_label}); extract both with the same one"
        )


def features_of_pair(a: Any, b: Any, options: FeatureOptions) -> tuple[FeatureSet, FeatureSet]:
    """Features of two inputs (images in any accepted form, or FeatureSets) from the one extractor of `options`.

    The shared first step of every two-sample metric (KID, precision/recall, 1-NN): inputs that are
    already FeatureSets are used as they are, and both sides are checked to live in one feature space.
    """
    ext = extractor_for(options, (a, b))
    fa = a if isinstance(a, FeatureSet) else features_with(a, ext, options, want_logits=False)
    fb = b if isinstance(b, FeatureSet) else features_with(b, ext, options, want_logits=False)
    same_extractor(fa, fb)
    return fa, fb


@dataclass
class FeatureSet:
    """Features (N, D) (float32, or float64 from a float64 extractor) and optional logits (N, K) of a set
    of images, with what produced them."""

    features: torch.Tensor
    logits: torch.Tensor | None
    extractor: str
    extractor_label: str
    extractor_identity: str
    comparable_with_inception: bool
    description: str = ""
    labels: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.features)

    @property
    def probabilities(self) -> torch.Tensor:
        """Softmax class probabilities p(y|x), float64 (N, K)."""
        if self.logits is None:
            raise MetricInputError(
                f"these features ({self.extractor_label}) were extracted without class logits; "
                "extract them with want_logits=True"
            )
        return torch.softmax(self.logits.double(), dim=1)

    def subset(self, index) -> FeatureSet:
        return FeatureSet(
            self.features[index],
            None if self.logits is None else self.logits[index],
            self.extractor,
            self.extractor_label,
            self.extractor_identity,
            self.comparable_with_inception,
            self.description,
            None if self.labels is None else self.labels[index],
        )


def extract_features(
    images: Any,
    extractor: str | FeatureExtractor | None = None,
    *,
    want_logits: bool = True,
    options: FeatureOptions | None = None,
    **settings,
) -> FeatureSet:
    """Run an extractor over `images` (anything `inputs.as_image_source` accepts) in batches.

    `extractor` (default 'inception'), `options` and `settings`: the shared metric settings (see `FeatureOptions`:
    device, batch_size, n_samples, value_range, ...). `want_logits`: also keep class logits (needed by IS-type
    scores); for Inception this needs the head, so when the weights have none the logits are silently skipped (IS
    then raises HeadMissing).
    """
    if isinstance(images, FeatureSet):
        return images
    if extractor is not None:
        settings["extractor"] = extractor
    opts = FeatureOptions.of(options, **settings)
    ext = get_extractor(opts.extractor, opts.device, opts.weights, opts.preprocessing)
    return features_with(images, ext, opts, want_logits)


def features_with(images: Any, ext: FeatureExtractor, options: FeatureOptions, want_logits: bool) -> FeatureSet:
    """Features of `images` from an extractor already resolved, the images read as `options` says."""
    if isinstance(images, FeatureSet):
        return images
    source = as_image_source(images, **options.reading)
    return extract_from_source(
        source, ext, want_logits=want_logits, batch_size=options.batch_size, progress=options.progress
    )


def extract_from_source(
    source: ImageSource,
    ext: FeatureExtractor,
    want_logits: bool = True,
    batch_size: int | None = None,
    progress: bool = True,
) -> FeatureSet:
    from tqdm.auto import tqdm

    want_logits = want_logits and ext.num_classes is not None
    batch_size = batch_size or ext.batch_size
    feats, logits = [], []
    bar = tqdm(total=source.count, desc=f"{ext.name} features", unit="img", disable=not progress, leave=False)
    try:
        for batch in source.batches(batch_size):
            f, lg = ext(batch, want_logits)
            keep = torch.float64 if f.dtype == torch.float64 else torch.float32  # float64 runs stay exact
            feats.append(f.to(keep).cpu())
            if want_logits:
                logits.append(lg.to(keep).cpu())
            bar.update(len(batch))
    finally:
        bar.close()
    if not feats:
        raise MetricInputError(f"{source.description}: no images")
    return FeatureSet(
        torch.cat(feats),
        torch.cat(logits) if want_logits else None,
        ext.name,
        ext.label,
        ext.identity,
        ext.comparable_with_inception,
        source.description,
        source.labels,
    )


def as_numpy64(x) -> np.ndarray:
    """Features/probabilities as a float64 numpy array (for the float64 statistics)."""
    if isinstance(x, FeatureSet):
        x = x.features
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)
