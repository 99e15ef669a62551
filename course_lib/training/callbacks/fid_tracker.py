"""FID during training: a trainer callback that measures the generator every N steps and keeps the best one.

Losses of a GAN say little about how good its samples are; the Fréchet Inception Distance (Heusel
et al. 2017, see course_lib.metrics.fid) does:

    FID = ||mu_g - mu_r||^2 + tr(S_g) + tr(S_r) - 2 tr((S_g S_r)^{1/2})

with (mu, S) the mean and covariance of Inception pool3 features of generated (g) and real (r)
images. The real side is fixed, so its statistics are computed once and cached on disk
(course_lib.metrics' statistics cache); every `every` steps, and at the end of training (the
`train()` call that reaches the configured steps), the tracker measures `n_samples` images from
`trainer.generator_for_eval()` (the EMA copy when the run keeps one) with the shared
`metrics.GeneratorEvaluator` (its own seeded noise, never the training stream, so a tracked run
trains exactly as an untracked one), logs the value as `fid` in log.jsonl, redraws `fid.png`, and
when the value is the best so far writes `checkpoints/best.pt` (atomically, a full checkpoint:
`course-lib sample run/checkpoints/best.pt`). A `train()` call that stops earlier is a pause (an
experiment trains to each of its evaluation steps): nothing extra is measured there, so a paused
and resumed run measures exactly what a straight one does.

Under torchrun (course_lib.training.distributed) every rank calls the tracker at the same steps and the
evaluator splits the samples (and an uncached reference) across the ranks, gathering their features
(course_lib.metrics.sharded): each rank measures the single-process value, so every rank logs the same number
and takes the same best-checkpoint decision; rank 0 alone draws fid.png and writes the checkpoints.

FID from a few thousand samples is biased upwards (the bias shrinks like 1/n), so values tracked
with n_samples=5000 are comparable with each other but read a little higher than the 10k/50k-sample
numbers papers report.

Extractors (course_lib.metrics' registry): 'inception' (the standard; use it on a GPU), 'mnist'
(the package's digit classifier, for MNIST runs on a CPU), 'pixels' (8x8 downsampled pixels: a
cheap Fréchet distance for smoke tests on a CPU, meaningful only relative to itself), or 'auto'
(`metrics.features.resolve_extractor`: Inception when its weights are on disk, else 'mnist' for grey images
and 'pixels' for colour ones). Only Inception values are comparable with published FIDs; the
others are labelled so. The time the tracker takes is in `trainer.callback_seconds`.

In a config: `callbacks: [{name: fid_tracker, every: 2000, n_samples: 5000}]`.
"""

from __future__ import annotations

import hashlib
import math
import os
from pathlib import Path

import torch

from course_lib.core.errors import ConfigError
from course_lib.core.io import save_figure_atomic
from course_lib.metrics.evaluator import GeneratorEvaluator
from course_lib.metrics.features import FeatureExtractor, extractor_names
from course_lib.metrics.inputs import as_image_source
from course_lib.metrics.stats_cache import Statistics
from course_lib.training.callbacks.base import Callback, register_callback


def data_identity(images: torch.Tensor, source: str) -> str:
    """A name for an in-memory uint8 image set, for the statistics cache: its description, shape and a
    hash of every k-th image (k chosen so about 512 images are hashed: cheap for CelebA's 2.5 GB)."""
    stride = max(1, len(images) // 512)
    digest = hashlib.sha1(images[::stride].contiguous().cpu().numpy().tobytes()).hexdigest()[:16]
    return f"trainer-data:{source}:{tuple(images.shape)}:{digest}"


@register_callback("fid_tracker")
class FIDTracker(Callback):
    """Trainer callback: FID of `n_samples` generated images vs reference statistics every `every` steps.

    reference: None (the trainer's own training images, first `reference_limit` of them) or anything
    course_lib.metrics accepts: a dataset name ('mnist:test', 'celeba'), a folder, an .npz of images
    or of statistics (mu, sigma). Its statistics are cached on disk, so only the first run pays.
    seed: the noise seed of the generated samples (the same latents at every evaluation, so the
    curve shows the generator changing, not the sample). at_end: also evaluate at the end of training.
    """

    def __init__(
        self,
        every: int = 1000,
        n_samples: int = 5000,
        extractor: str = "inception",
        reference=None,
        reference_limit: int | None = None,
        batch_size: int | None = None,
        seed: int = 12345,
        keep_best: bool = True,
        plot: bool = True,
        at_end: bool = True,
        progress: bool = False,
    ):
        for name, value, low in (("every", every, 1), ("n_samples", n_samples, 2)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ConfigError(f"fid_tracker {name} must be an integer >= {low}, got {value!r}")
        if reference_limit is not None and (not isinstance(reference_limit, int) or reference_limit < 2):
            raise ConfigError(f"fid_tracker reference_limit must be an integer >= 2, got {reference_limit!r}")
        if extractor not in extractor_names():
            raise ConfigError(f"fid_tracker extractor must be one of {', '.join(extractor_names())}, got {extractor!r}")
        self.every, self.n_samples, self.extractor_name = every, n_samples, extractor
        self.reference, self.reference_limit, self.batch_size, self.seed = reference, reference_limit, batch_size, seed
        self.keep_best, self.plot, self.at_end, self.progress = keep_best, plot, at_end, progress
        self.history: list[tuple[int, float]] = []  # (step, FID)
        self.best_fid: float | None = None
        self.best_step: int | None = None
        self.evaluator: GeneratorEvaluator | None = None

    # ----------------------------------------------------------------------- the lifecycle
    def on_step_end(self, ctx, metrics=None) -> None:
        if ctx.step % self.every == 0:
            self._evaluate_once(ctx)

    def on_train_end(self, ctx) -> None:
        """The end of the run (the trainer calls it once the run reaches its length, never at a pause)."""
        if self.at_end:
            self._evaluate_once(ctx)

    def _evaluate_once(self, ctx) -> None:
        if self.history and self.history[-1][0] >= ctx.step:
            return  # measured at this step already (or before a resume)
        self.evaluate(ctx)

    def evaluate(self, ctx) -> float:
        """Measure FID now, log it, update fid.png and, if it is the best so far, checkpoints/best.pt."""
        value = self.measure(ctx)
        step = ctx.step
        self.history.append((step, value))
        ctx.log({"fid": value})
        improved = math.isfinite(value) and (self.best_fid is None or value < self.best_fid)
        if improved:
            self.best_fid, self.best_step = value, step
        if ctx.out_dir is not None:
            if improved and self.keep_best:  # after updating the state above, so best.pt knows it is best
                ctx.save_checkpoint(ctx.out_dir / "checkpoints" / "best.pt")  # every rank calls it, rank 0 writes
            if self.plot and ctx.rank == 0:
                self.plot_curve(ctx.out_dir / "fid.png")
        return value

    def measure(self, ctx) -> float:
        """FID of n_samples images from ctx.generator_for_eval() against the reference statistics."""
        self._setup(ctx)
        return float(self.evaluator(ctx.generator_for_eval())["fid"])

    def _setup(self, ctx) -> None:
        """The evaluator (extractor and reference statistics), built once from the trainer's data."""
        if self.evaluator is None:
            reference = self.reference
            if reference is None:
                images = ctx.data.images[: self.reference_limit]
                reference = as_image_source(images, what="training images")
                reference.identity = data_identity(images, ctx.data.source)
                reference.description = f"{ctx.data.source} ({len(images):,} images)"
            self.evaluator = GeneratorEvaluator(
                ["fid"],
                reference,
                extractor=self.extractor_name,
                n_samples=self.n_samples,
                seed=self.seed,
                batch_size=self.batch_size,
                device=ctx.device,
                channels=ctx.channels,
                reference_limit=None if self.reference is None else self.reference_limit,
                data_root=ctx.config.data.root,
                image_size=ctx.image_size,
                progress=self.progress and ctx.rank == 0,
            )
        self.evaluator.prepare()

    @property
    def extractor(self) -> FeatureExtractor | None:
        return None if self.evaluator is None else self.evaluator.extractor

    @property
    def reference_stats(self) -> Statistics | None:
        """The reference's statistics (None before the first measurement); set to None to recompute them."""
        return None if self.evaluator is None else self.evaluator.reference_stats

    @reference_stats.setter
    def reference_stats(self, stats: Statistics | None) -> None:
        if self.evaluator is not None:
            self.evaluator.reference_stats = stats

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
            ax.scatter(
                [self.best_step],
                [self.best_fid],
                s=120,
                facecolors="none",
                edgecolors="red",
                label=f"best {self.best_fid:.2f} (step {self.best_step})",
                zorder=3,
            )
        ax.set(xlabel="generator step", ylabel="FID (lower is better)", title=f"FID [{self.label}]")
        ax.legend()
        fig.tight_layout()
        if path is not None:
            save_figure_atomic(fig, Path(path), dpi=100)
        return fig

    # --------------------------------------------------------------------- checkpointed state
    def state_dict(self) -> dict:
        return {
            "history": [[int(s), float(v)] for s, v in self.history],
            "best_fid": self.best_fid,
            "best_step": self.best_step,
        }

    def load_state_dict(self, state: dict) -> None:
        self.history = [(int(s), float(v)) for s, v in state.get("history", [])]
        self.best_fid, self.best_step = state.get("best_fid"), state.get("best_step")

    def summary(self) -> dict:
        """JSON-able results for the experiment report (its time: trainer.callback_seconds)."""
        last = self.history[-1] if self.history else (None, None)
        return {
            "callback": self.name,
            "fid_extractor": self.label,
            "fid_n_samples": self.n_samples,
            "fid_every": self.every,
            "evaluations": len(self.history),
            "last_fid": last[1],
            "last_step": last[0],
            "best_fid": self.best_fid,
            "best_step": self.best_step,
        }
