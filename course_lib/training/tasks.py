"""What a run's generator is asked to do: draw an image from noise, or translate one image into another.

The training step (`course_lib.training.trainer`) is the same for every task: draw a batch, let G
make fakes, let D judge real and fake, sum the loss terms, step. A task object supplies what
differs, and nothing else:

    load_data(config)            the dataset (ImageData, PairedImages or UnpairedImages)
    check(trainer)               settings that do not fit the data, as one-line errors
    make_loader(trainer)         (batch loader, whether the data lives on the device)
    draw(trainer)                one step's `Draw`: the real images, what conditions D on them, G's
                                 inputs, what conditions D on the fakes; consumes one batch index
    discriminator_condition(trainer, condition)   what D reads beside an image (or None)
    fixed_inputs(trainer)        (inputs, labels) for the progress grids, fixed for the whole run
    sample_grid(trainer)         (images, images per row) for samples.png
    compile_examples(trainer, rng, n)   example inputs for probing torch.compile

- `GenerationTask` (task 'generation'): real images from the dataset, G(z, y) with z ~ N(0, I) and,
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
    from course_lib.training.trainer import Trainer


@dataclass
class Draw:
    """One discriminator step's inputs."""

    real: torch.Tensor  # the real images D sees
    real_labels: torch.Tensor | None  # what conditions D on them: class labels (cGAN), source images (pix2pix)
    generator_inputs: tuple  # G(*generator_inputs) are the fakes
    fake_labels: torch.Tensor | None  # what conditions D on the fakes (and the class G was asked for)
    z: torch.Tensor  # G's main input: the latents, or the images it translates


def _loader_options(trainer: Trainer, numel: int) -> tuple[dict, bool]:
    cfg = trainer.config
    on_device = speed.use_data_on_device(cfg.data_on_device, numel, trainer.device)
    return {
        "device": trainer.device,
        "on_device": on_device,
        "flip": cfg.flip,
        "channels_last": trainer.channels_last,
    }, on_device


def _random_images(trainer: Trainer, rng: torch.Generator, n: int) -> torch.Tensor:
    x = torch.randn(n, trainer.channels, trainer.image_size, trainer.image_size, device=trainer.device, generator=rng)
    return speed.channels_last_batch(x) if trainer.channels_last else x


class GenerationTask:
    """z (and a class) -> image: every GAN of chapters 1-12 (see the module docstring)."""

    name = "generation"

    def load_data(self, config: TrainConfig) -> ImageData:
        return load_dataset(config.dataset, config.data_root, "train", config.image_size, limit=config.limit)

    def check(self, trainer: Trainer) -> None:
        if not isinstance(trainer.data, ImageData):
            raise ConfigError(
                f"task 'generation' trains on one set of images, got {type(trainer.data).__name__}; "
                "translation data needs task pix2pix or cyclegan"
            )
        if trainer.conditioning.generator_labels and trainer.data.labels is None:
            raise ConfigError(
                f"conditional={trainer.config.conditional!r} needs class labels; dataset {trainer.data.name!r} has none"
            )

    def make_loader(self, trainer: Trainer) -> tuple[BatchLoader, bool]:
        options, on_device = _loader_options(trainer, trainer.data.images.numel())
        return BatchLoader(trainer.data, trainer.config.batch_size, seed=trainer.config.seed, **options), on_device

    def draw(self, trainer: Trainer) -> Draw:
        real, real_labels = trainer.loader.batch(trainer.batch_index)
        trainer.batch_index += 1
        n = trainer.config.batch_size
        z, fake_labels = trainer.sample_noise(n), trainer.sample_labels(n)
        return Draw(real, real_labels, (z, fake_labels), fake_labels, z)

    def discriminator_condition(self, trainer: Trainer, condition):
        return condition if trainer.conditioning.discriminator_labels else None

    def fixed_inputs(self, trainer: Trainer):
        cfg = trainer.config
        noise = torch.randn(cfg.n_fixed, trainer.latent_dim, generator=torch.Generator().manual_seed(cfg.seed + 2))
        labels = (
            torch.arange(cfg.n_fixed, device=trainer.device) % cfg.n_classes
            if trainer.conditioning.generator_labels
            else None
        )
        return noise.to(trainer.device), labels

    def sample_grid(self, trainer: Trainer):
        return trainer.generate(trainer.fixed_noise, trainer.fixed_labels), None

    def compile_examples(self, trainer: Trainer, rng: torch.Generator, n: int):
        z = torch.randn(n, trainer.latent_dim, device=trainer.device, generator=rng)
        x = _random_images(trainer, rng, n).requires_grad_(True)
        labels = (
            torch.zeros(n, dtype=torch.long, device=trainer.device) if trainer.conditioning.generator_labels else None
        )
        return (z, labels), (x, trainer.discriminator_labels(labels))


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
        return load_translation(
            self.name, config.translation, config.dataset, config.data_root, "train", config.image_size, config.limit
        )

    def check(self, trainer: Trainer) -> None:
        if not isinstance(trainer.data, self.data_type):
            raise ConfigError(
                f"task {self.name!r} needs {self.needs} (course_lib.data.translation."
                f"{self.data_type.__name__}), got {type(trainer.data).__name__}"
            )

    def make_loader(self, trainer: Trainer):
        options, on_device = _loader_options(trainer, trainer.data.numel())
        return self.loader_type(trainer.data, trainer.config.batch_size, seed=trainer.config.seed, **options), on_device


class Pix2PixTask(_TranslationTask):
    """Paired translation x -> y (see the module docstring)."""

    name, data_type, loader_type, needs = "pix2pix", PairedImages, PairedLoader, "paired images"

    def draw(self, trainer: Trainer) -> Draw:
        source, target, _ = trainer.loader.batch(trainer.batch_index)
        trainer.batch_index += 1
        return Draw(target, source, (source,), source, source)

    def discriminator_condition(self, trainer: Trainer, condition):
        return condition

    def _fixed_pairs(self, trainer: Trainer) -> tuple[torch.Tensor, torch.Tensor]:
        n = min(trainer.config.n_fixed, len(trainer.data))
        return (
            to_float(trainer.data.sources.images[:n]).to(trainer.device),
            to_float(trainer.data.targets.images[:n]).to(trainer.device),
        )

    def fixed_inputs(self, trainer: Trainer):
        return self._fixed_pairs(trainer)[0], None

    def sample_grid(self, trainer: Trainer):
        targets = self._fixed_pairs(trainer)[1][: len(trainer.fixed_noise)]
        return _rows(trainer.fixed_noise, trainer.generate(trainer.fixed_noise), targets), GRID_ROW

    def compile_examples(self, trainer: Trainer, rng: torch.Generator, n: int):
        source = _random_images(trainer, rng, n)
        x = _random_images(trainer, rng, n).requires_grad_(True)
        return (source,), (x, source)


class CycleGANTask(_TranslationTask):
    """Unpaired translation between domains A and B, both ways (see the module docstring)."""

    name, data_type, loader_type, needs = "cyclegan", UnpairedImages, UnpairedLoader, "two unpaired domains"

    def draw(self, trainer: Trainer) -> Draw:
        a, b = trainer.loader.batch(trainer.batch_index)
        trainer.batch_index += 1
        domains = torch.cat([a, b])
        return Draw(domains, None, (domains,), None, domains)

    def discriminator_condition(self, trainer: Trainer, condition):
        return None

    def fixed_inputs(self, trainer: Trainer):
        n = max(1, min(trainer.config.n_fixed // 2, len(trainer.data)))
        a, b = trainer.data.a.images[:n], trainer.data.b.images[:n]
        return to_float(torch.cat([a, b])).to(trainer.device), None

    def sample_grid(self, trainer: Trainer):
        domains = trainer.fixed_noise
        translated = trainer.generate(domains)  # [F(b); G(a)]
        cycled = trainer.generate(translated)  # [F(G(a)); G(F(b))]
        a, b = domains.chunk(2)
        to_a, to_b = translated.chunk(2)
        back_a, back_b = cycled.chunk(2)
        # Rows: a, G(a), F(G(a)), then b, F(b), G(F(b)).
        return torch.cat([_rows(a, to_b, back_a), _rows(b, to_a, back_b)]), GRID_ROW

    def compile_examples(self, trainer: Trainer, rng: torch.Generator, n: int):
        domains = _random_images(trainer, rng, 2 * n)
        x = _random_images(trainer, rng, 2 * n).requires_grad_(True)
        return (domains,), (x, None)


TASKS = {task.name: task for task in (GenerationTask, Pix2PixTask, CycleGANTask)}


def task_for(config: TrainConfig):
    """The task object of a run's settings."""
    if config.task not in TASKS:
        raise ConfigError(f"unknown task {config.task!r}; choose one of {', '.join(TASKS)}")
    return TASKS[config.task]()
