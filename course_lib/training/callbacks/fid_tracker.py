"""FID during training: a trainer hook that measures the generator every N steps and keeps the best one.

Losses of a GAN say little about how good its samples are; the Fréchet Inception Distance (Heusel
et al. 2017, see course_lib.metrics.fid) does:

    FID = ||mu_g - mu_r||^2 + tr(S_g) + tr(S_r) - 2 tr((S_g S_r)^{1/2})

with (mu, S) the mean and covariance of Inception pool3 features of generated (g) and real (r)
images. The real side is fixed, so its statistics are computed once and cached on disk
(course_lib.metrics' statistics cache); every `every` steps the tracker draws `n_samples` images
from `trainer.generator_for_eval()` (the EMA copy when the run keeps one) with its own seeded noise
(never the training stream, so a tracked run trains exactly as an untracked one), logs the value
as `fid` in log.jsonl, redraws `fid.png`, and when the value is the best so far writes
`checkpoints/best.pt` (atomically, a full checkpoint: `course-lib sample run/checkpoints/best.pt`).

FID from a few thousand samples is biased upwards (the bias shrinks like 1/n), so values tracked
with n_samples=5000 are comparable with each other but read a little higher than the 10k/50k-sample
numbers papers report.

Extractors: 'inception' (the standard; use it on a GPU), 'mnist' (the package's digit classifier,
for MNIST runs on a CPU), 'pixels' (8x8 downsampled pixels: a cheap Fréchet distance for smoke
tests on a CPU, meaningful only relative to itself), or 'auto' (Inception when its weights are on
disk, else 'mnist' for grey images and 'pixels' for colour ones). Only Inception values are
comparable with published FIDs; the others are labelled so.

In a config: `hooks: [{name: fid_tracker, every: 2000, n_samples: 5000}]`.
"""
from __future__ import annotations

import hashlib
import math
import os
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from course_lib.core.errors import ConfigError
from course_lib.metrics.features import FeatureExtractor, get_extractor
from course_lib.metrics.fid import fid, statistics_of
from course_lib.metrics.inputs import as_image_source
from course_lib.metrics.stats_cache import Statistics, cached_statistics

TRACKER_EXTRACTORS = ("inception", "mnist", "pixels", "auto")


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
        self.device = torch.device(device)

    @torch.inference_mode()
    def __call__(self, batch, want_logits=False):
        x = batch.to(self.device)
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        return F.adaptive_avg_pool2d(x, 8).flatten(1), None


def resolve_extractor(name: str, device, channels: int) -> FeatureExtractor:
    """The extractor for a tracker setting (see the module docstring for 'auto')."""
    if name not in TRACKER_EXTRACTORS:
        raise ConfigError(f"fid_tracker extractor must be one of {', '.join(TRACKER_EXTRACTORS)}, got {name!r}")
    if name == "auto":
        from course_lib.metrics.errors import WeightsNotFound
        from course_lib.metrics.inception import find_inception_weights

        try:
            find_inception_weights(download=False, progress=False)
            name = "inception"
        except WeightsNotFound:
            name = "mnist" if channels == 1 else "pixels"
    if name == "pixels":
        return PixelExtractor(device)
    return get_extractor(name, device)


def data_identity(images: torch.Tensor, source: str) -> str:
    """A name for an in-memory uint8 image set, for the statistics cache: its description, shape and a
    hash of every k-th image (k chosen so about 512 images are hashed: cheap for CelebA's 2.5 GB)."""
    stride = max(1, len(images) // 512)
    digest = hashlib.sha1(images[::stride].contiguous().cpu().numpy().tobytes()).hexdigest()[:16]
    return f"trainer-data:{source}:{tuple(images.shape)}:{digest}"


class FIDTracker:
    """Trainer hook: FID of `n_samples` generated images vs reference statistics every `every` steps.

    reference: None (the trainer's own training images, first `reference_limit` of them) or anything
    course_lib.metrics accepts: a dataset name ('mnist:test', 'celeba'), a folder, an .npz of images
    or of statistics (mu, sigma). Its statistics are cached on disk, so only the first run pays.
    seed: the noise seed of the generated samples (the same latents at every evaluation, so the
    curve shows the generator changing, not the sample). at_end: also evaluate at config.steps.
    """

    def __init__(self, every: int = 1000, n_samples: int = 5000, extractor: str = "inception", reference=None,
                 reference_limit: int | None = None, batch_size: int | None = None, seed: int = 12345,
                 keep_best: bool = True, plot: bool = True, at_end: bool = True, progress: bool = False):
        for name, value, low in (("every", every, 1), ("n_samples", n_samples, 2)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"fid_tracker {name} must be an integer >= {low}, got {value!r}")
        if reference_limit is not None and (not isinstance(reference_limit, int) or reference_limit < 2):
            raise ConfigError(f"fid_tracker reference_limit must be an integer >= 2, got {reference_limit!r}")
        if extractor not in TRACKER_EXTRACTORS:
            raise ConfigError(f"fid_tracker extractor must be one of {', '.join(TRACKER_EXTRACTORS)}, got {extractor!r}")
        self.every, self.n_samples, self.extractor_name = every, n_samples, extractor
        self.reference, self.reference_limit, self.batch_size, self.seed = reference, reference_limit, batch_size, seed
        self.keep_best, self.plot, self.at_end, self.progress = keep_best, plot, at_end, progress
        self.history: list[tuple[int, float]] = []  # (step, FID)
        self.best_fid: float | None = None
        self.best_step: int | None = None
        self.seconds = 0.0  # wall time spent evaluating (the experiment report's hook overhead)
        self.extractor: FeatureExtractor | None = None
        self.reference_stats: Statistics | None = None

    # ----------------------------------------------------------------------------- the hook
    def __call__(self, trainer, metrics=None) -> None:
        step = trainer.step
        due = step % self.every == 0 or (self.at_end and step == trainer.config.steps)
        if not due or (self.history and self.history[-1][0] >= step):
            return  # a resumed run does not measure a step it already measured
        self.evaluate(trainer)

    def evaluate(self, trainer) -> float:
        """Measure FID now, log it, update fid.png and, if it is the best so far, checkpoints/best.pt."""
        started = time.perf_counter()
        try:
            value = self.measure(trainer)
            step = trainer.step
            self.history.append((step, value))
            trainer.log_extra({"fid": value})
            improved = math.isfinite(value) and (self.best_fid is None or value < self.best_fid)
            if improved:
                self.best_fid, self.best_step = value, step
            if trainer.out_dir is not None:
                if improved and self.keep_best:  # after updating the state above, so best.pt knows it is best
                    trainer.save_checkpoint(trainer.out_dir / "checkpoints" / "best.pt")
                if self.plot:
                    self.plot_curve(trainer.out_dir / "fid.png")
            return value
        finally:
            self.seconds += time.perf_counter() - started

    def measure(self, trainer) -> float:
        """FID of n_samples images from trainer.generator_for_eval() against the reference statistics."""
        self._setup(trainer)
        result = fid(trainer.generator_for_eval(), self.reference_stats, extractor=self.extractor,
                     n_samples=self.n_samples, seed=self.seed, batch_size=self.batch_size, progress=self.progress)
        return float(result.value)

    def _setup(self, trainer) -> None:
        if self.extractor is None:
            self.extractor = resolve_extractor(self.extractor_name, trainer.device, trainer.channels)
        if self.reference_stats is not None:
            return
        if self.reference is None:
            images = trainer.data.images[:self.reference_limit]
            source = as_image_source(images, what="training images")
            source.identity = data_identity(images, trainer.data.source)
            source.description = f"{trainer.data.source} ({len(images):,} images)"
            self.reference_stats = cached_statistics(source, self.extractor, batch_size=self.batch_size,
                                                     progress=self.progress)
        else:
            self.reference_stats = statistics_of(
                self.reference, self.extractor, batch_size=self.batch_size, progress=self.progress,
                what="FID reference", data_root=trainer.config.data_root, image_size=trainer.image_size,
                limit=self.reference_limit)

    # ------------------------------------------------------------------------------ outputs
    @property
    def label(self) -> str:
        return self.extractor.label if self.extractor is not None else self.extractor_name

    def plot_curve(self, path: str | os.PathLike | None = None, ax=None):
        """FID against the step, the best point marked; written atomically to `path` when given."""
        if ax is None and path is not None:  # a bare Figure draws off-screen without touching pyplot
            from matplotlib.figure import Figure

            fig = Figure(figsize=(5.5, 3.8))
            ax = fig.subplots()
        elif ax is None:
            import matplotlib.pyplot as plt

            fig, ax = plt.subplots(figsize=(5.5, 3.8))
        else:
            fig = ax.figure
        steps, values = [s for s, _ in self.history], [v for _, v in self.history]
        ax.plot(steps, values, marker="o", label=f"FID, {self.n_samples:,} samples")
        if self.best_step is not None:
            ax.scatter([self.best_step], [self.best_fid], s=120, facecolors="none", edgecolors="red",
                       label=f"best {self.best_fid:.2f} (step {self.best_step})", zorder=3)
        ax.set(xlabel="generator step", ylabel="FID (lower is better)", title=f"FID [{self.label}]")
        ax.legend()
        fig.tight_layout()
        if path is not None:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
            fig.savefig(tmp, dpi=100)
            os.replace(tmp, path)
        return fig

    # --------------------------------------------------------------------- checkpointed state
    def state_dict(self) -> dict:
        return {"history": [[int(s), float(v)] for s, v in self.history], "best_fid": self.best_fid,
                "best_step": self.best_step, "seconds": self.seconds}

    def load_state_dict(self, state: dict) -> None:
        self.history = [(int(s), float(v)) for s, v in state.get("history", [])]
        self.best_fid, self.best_step = state.get("best_fid"), state.get("best_step")
        self.seconds = float(state.get("seconds", 0.0))

    def summary(self) -> dict:
        """JSON-able results for the experiment report."""
        last = self.history[-1] if self.history else (None, None)
        return {"fid_extractor": self.label, "fid_n_samples": self.n_samples, "fid_every": self.every,
                "evaluations": len(self.history), "last_fid": last[1], "last_step": last[0],
                "best_fid": self.best_fid, "best_step": self.best_step, "seconds": round(self.seconds, 3)}
