"""What a run's generator is asked to do: draw an image from noise, or translate one image into another.

The training step (`course_lib.training.trainer`) is the same for every task: draw a batch, let G
make fakes, let D judge real and fake, sum the loss terms, step. A task object supplies what
differs, and nothing else:

    load_data(config)            the dataset (ImageData, PairedImages or UnpairedImages)
    check(ctx)                   settings that do not fit the data, as one-line errors
    make_loader(ctx)             (batch loader, whether the data lives on the device)
    draw(ctx)                    one step's `Draw`: the real images, what conditions D on them, G's
                                 inputs, what conditions D on the fakes; consumes one batch index
    discriminator_condition(ctx, condition)   what D reads beside an image (or None)
    fixed_inputs(ctx)            (inputs, labels) for the progress grids, fixed for the whole run
    sample_grid(ctx)             (images, images per row) for samples.png
    compile_examples(ctx, rng, n)   example inputs for probing torch.compile

`ctx` is the run's `StepContext` (course_lib.training.context), not the trainer.

- `GenerationTask` (data.task 'generation'): real images from the dataset, G(z, y) with z ~ N(0, I) and,
  for class-conditional models, y uniform; D reads y when the model is a cGAN. Draws exactly what the
  trainer drew before tasks existed, in the same order, so every generation run is unchanged.
- `Pix2PixTask` (Isola et al. 2017): paired (x, y); G(x) against y; D judges the pair, D(y | x)
  against D(G(x) | x), the source x riding in the `labels` slot that a cGAN uses for its class.
- `CycleGANTask` (Zhu et al. 2017): independent batches a, b of the two domains, stacked [a; b];
  the generator and discriminator are CycleGAN's pairs behind one interface (see
  `course_lib.nn.translation`), so the adversarial loss needs no change and the cycle term is one
  more loss term.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from course_lib.core.errors import ConfigError
from course_lib.core.images import to_float
from course_lib.data import BatchLoader, ImageData, load_dataset
from course_lib.data.translation import PairedImages, PairedLoader, UnpairedImages, UnpairedLoader, load_translation
from course_lib.training import speed

if TYPE_CHECKING:
    from course_lib.training.config import TrainConfig
    from course_lib.training.context import StepContext


@dataclass
class Draw:
    """One discriminator step's inputs."""

    real: torch.Tensor  # the real images D sees
    real_labels: torch.Tensor | None  # what conditions D on them: class labels (cGAN), source images (pix2pix)
    generator_inputs: tuple  # G(*generator_inputs) are the fakes
    fake_labels: torch.Tensor | None  # what conditions D on the fakes (and the class G was asked for)
    z: torch.Tensor  # G's main input: the latents, or the images it translates


def _loader_options(ctx: StepContext, numel: int) -> tuple[dict, bool]:
    cfg = ctx.config
    on_device = speed.use_data_on_device(cfg.speed.data_on_device, numel, ctx.device)
    return {
        "device": ctx.device,
        "on_device": on_device,
        "flip": cfg.data.flip,
        "channels_last": ctx.channels_last,
    }, on_device


def _random_images(ctx: StepContext, rng: torch.Generator, n: int) -> torch.Tensor:
    x = torch.randn(n, ctx.channels, ctx.image_size, ctx.image_size, device=ctx.device, generator=rng)
    return speed.channels_last_batch(x) if ctx.channels_last else x


class GenerationTask:
    """z (and a class) -> image: every GAN of chapters 1-12 (see the module docstring)."""

    name = "generation"

    def load_data(self, config: TrainConfig) -> ImageData:
        data = config.data
        return load_dataset(data.dataset, data.root, "train", data.image_size, limit=data.limit)

    def check(self, ctx: StepContext) -> None:
        if not isinstance(ctx.data, ImageData):
            raise ConfigError(
                f"task 'generation' trains on one set of images, got {type(ctx.data).__name__}; "
                "translation data needs task pix2pix or cyclegan"
            )
        if ctx.conditioning.generator_labels and ctx.data.labels is None:
            raise ConfigError(
                f"model.conditional={ctx.config.model.conditional!r} needs class labels; dataset {ctx.data.name!r} has none"
            )

    def make_loader(self, ctx: StepContext) -> tuple[BatchLoader, bool]:
        options, on_device = _loader_options(ctx, ctx.data.images.numel())
        return BatchLoader(ctx.data, ctx.config.optim.batch_size, seed=ctx.config.run.seed, **options), on_device

    def draw(self, ctx: StepContext) -> Draw:
        real, real_labels = ctx.loader.batch(ctx.batch_index)
        ctx.batch_index += 1
        n = real.shape[0]  # this process's rows of the batch (all of it, but for a distributed run)
        z, fake_labels = ctx.sample_noise(n), ctx.sample_labels(n)
        return Draw(real, real_labels, (z, fake_labels), fake_labels, z)

    def discriminator_condition(self, ctx: StepContext, condition):
        return condition if ctx.conditioning.discriminator_labels else None

    def fixed_inputs(self, ctx: StepContext):
        cfg = ctx.config
        noise = torch.randn(cfg.run.n_fixed, ctx.latent_dim, generator=torch.Generator().manual_seed(cfg.run.seed + 2))
        labels = (
            torch.arange(cfg.run.n_fixed, device=ctx.device) % cfg.model.n_classes
            if ctx.conditioning.generator_labels
            else None
        )
        return noise.to(ctx.device), labels

    def sample_grid(self, ctx: StepContext):
        return ctx.generate(ctx.fixed_noise, ctx.fixed_labels), None

    def compile_examples(self, ctx: StepContext, rng: torch.Generator, n: int):
        z = torch.randn(n, ctx.latent_dim, device=ctx.device, generator=rng)
        x = _random_images(ctx, rng, n).requires_grad_(True)
        labels = torch.zeros(n, dtype=torch.long, device=ctx.device) if ctx.conditioning.generator_labels else None
        return (z, labels), (x, ctx.condition(labels))


GRID_ROW = 8  # images per row of a translation grid: a row of inputs, then their translations, ...


def _rows(*groups: torch.Tensor) -> torch.Tensor:
    """Blocks of GRID_ROW: inputs 0-7, outputs 0-7, (targets 0-7), inputs 8-15, ... as one batch."""
    blocks = []
    for start in range(0, len(groups[0]), GRID_ROW):
        blocks += [g[start : start + GRID_ROW] for g in groups]
    return torch.cat(blocks)


class _TranslationTask:
    """What pix2pix and CycleGAN share: their data comes from course_lib.data.translation, in a container and a
    loader of their own (class attributes of each task)."""

    name: str
    data_type: type
    loader_type: type
    needs: str  # what the task needs, for the error message

    def load_data(self, config: TrainConfig):
        data = config.data
        return load_translation(
            self.name, data.translation, data.dataset, data.root, "train", data.image_size, data.limit
        )

    def check(self, ctx: StepContext) -> None:
        if not isinstance(ctx.data, self.data_type):
            raise ConfigError(
                f"task {self.name!r} needs {self.needs} (course_lib.data.translation."
                f"{self.data_type.__name__}), got {type(ctx.data).__name__}"
            )

    def make_loader(self, ctx: StepContext):
        options, on_device = _loader_options(ctx, ctx.data.numel())
        return self.loader_type(ctx.data, ctx.config.optim.batch_size, seed=ctx.config.run.seed, **options), on_device


class Pix2PixTask(_TranslationTask):
    """Paired translation x -> y (see the module docstring)."""

    name, data_type, loader_type, needs = "pix2pix", PairedImages, PairedLoader, "paired images"

    def draw(self, ctx: StepContext) -> Draw:
        source, target, _ = ctx.loader.batch(ctx.batch_index)
        ctx.batch_index += 1
        return Draw(target, source, (source,), source, source)

    def discriminator_condition(self, ctx: StepContext, condition):
        return condition

    def _fixed_pairs(self, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
        n = min(ctx.config.run.n_fixed, len(ctx.data))
        return (
            to_float(ctx.data.sources.images[:n]).to(ctx.device),
            to_float(ctx.data.targets.images[:n]).to(ctx.device),
        )

    def fixed_inputs(self, ctx: StepContext):
        return self._fixed_pairs(ctx)[0], None

    def sample_grid(self, ctx: StepContext):
        targets = self._fixed_pairs(ctx)[1][: len(ctx.fixed_noise)]
        return _rows(ctx.fixed_noise, ctx.generate(ctx.fixed_noise), targets), GRID_ROW

    def compile_examples(self, ctx: StepContext, rng: torch.Generator, n: int):
        source = _random_images(ctx, rng, n)
        x = _random_images(ctx, rng, n).requires_grad_(True)
        return (source,), (x, source)


class CycleGANTask(_TranslationTask):
    """Unpaired translation between domains A and B, both ways (see the module docstring)."""

    name, data_type, loader_type, needs = "cyclegan", UnpairedImages, UnpairedLoader, "two unpaired domains"

    def draw(self, ctx: StepContext) -> Draw:
        a, b = ctx.loader.batch(ctx.batch_index)
        ctx.batch_index += 1
        domains = torch.cat([a, b])
        return Draw(domains, None, (domains,), None, domains)

    def discriminator_condition(self, ctx: StepContext, condition):
        return None

    def fixed_inputs(self, ctx: StepContext):
        n = max(1, min(ctx.config.run.n_fixed // 2, len(ctx.data)))
        a, b = ctx.data.a.images[:n], ctx.data.b.images[:n]
        return to_float(torch.cat([a, b])).to(ctx.device), None

    def sample_grid(self, ctx: StepContext):
        domains = ctx.fixed_noise
        translated = ctx.generate(domains)  # [F(b); G(a)]
        cycled = ctx.generate(translated)  # [F(G(a)); G(F(b))]
        a, b = domains.chunk(2)
        to_a, to_b = translated.chunk(2)
        back_a, back_b = cycled.chunk(2)
        # Rows: a, G(a), F(G(a)), then b, F(b), G(F(b)).
        return torch.cat([_rows(a, to_b, back_a), _rows(b, to_a, back_b)]), GRID_ROW

    def compile_examples(self, ctx: StepContext, rng: torch.Generator, n: int):
        domains = _random_images(ctx, rng, 2 * n)
        x = _random_images(ctx, rng, 2 * n).requires_grad_(True)
        return (domains,), (x, None)


TASKS = {task.name: task for task in (GenerationTask, Pix2PixTask, CycleGANTask)}


def task_for(config: TrainConfig):
    """The task object of a run's settings (data.task)."""
    if config.data.task not in TASKS:
        raise ConfigError(f"unknown data.task {config.data.task!r}; choose one of {', '.join(TASKS)}")
    return TASKS[config.data.task]()
