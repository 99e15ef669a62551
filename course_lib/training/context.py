"""What a task, a loss term or a callback may use of a run: the `StepContext`, handed to them instead of the trainer.

    config            the run's TrainConfig
    device            where the models live
    generator, discriminator        the models (eager modules: sampling, evaluation, checkpoints)
    forward_g, forward_d            their training forward passes (G(...) and D.forward_all(...),
                                    torch.compile'd where that helps; by default the modules themselves)
    opt_g, opt_d      the optimisers
    noise_rng         the training noise stream (a torch.Generator on the device): every random draw of
                      the step comes from it, so runs are reproducible and resume exactly
    rank, world_size  this process's place in a distributed job (0 of 1 for a single process;
                      course_lib.training.distributed): per-sample draws are made for the global batch and
                      each rank keeps its rows, so the noise does not depend on the world size
    step              generator updates done; batch_index: real minibatches consumed
    data, loader      the training images and their batch loader (set by the task)
    image_size, channels, latent_dim, channels_last, conditioning   what the models were built for
    fixed_noise, fixed_labels       the progress grids' fixed inputs (latents and labels, or images)
    out_dir           the run folder (None when nothing is written)
    terms, callbacks  the run's loss terms and callbacks, in order

and a few services: `condition(labels)` (what D reads beside an image), `sample_noise(n)`,
`sample_labels(n)`, `rand_rows(shape)`/`randn_rows(shape)` (per-sample uniform/normal numbers from the noise
stream), `log(values)` (scalars for the next log row), `term(name)`, `generator_for_eval()`,
`generate(z, labels)`, `save_checkpoint(path)` and `seconds_of(callback)`.

A context for a test or a notebook needs only what the code it calls reads, e.g.
`StepContext(generator=G)` for a loss term that translates with G (`forward_g` defaults to G).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_lib.core.registry import canonical


def _not_available(what: str) -> Callable:
    def missing(*args, **kwargs):
        raise RuntimeError(f"this StepContext has no {what} (it was built outside a Trainer)")

    return missing


def _discard(values: dict) -> None:
    pass


@dataclass(eq=False)
class StepContext:
    """See the module docstring."""

    config: Any = None  # TrainConfig
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    generator: nn.Module | None = None
    discriminator: nn.Module | None = None
    forward_g: Callable | None = None
    forward_d: Callable | None = None
    opt_g: torch.optim.Optimizer | None = None
    opt_d: torch.optim.Optimizer | None = None
    noise_rng: torch.Generator | None = None
    rank: int = 0
    world_size: int = 1
    step: int = 0
    batch_index: int = 0
    data: Any = None
    loader: Any = None
    task: Any = None
    image_size: int | None = None
    channels: int | None = None
    latent_dim: int | None = None
    channels_last: bool = False
    conditioning: Any = None
    fixed_noise: torch.Tensor | None = None  # the progress grids' inputs: fixed latents, or images to translate
    fixed_labels: torch.Tensor | None = None
    out_dir: Path | None = None
    terms: list = field(default_factory=list)
    callbacks: list = field(default_factory=list)
    log: Callable[[dict], None] = field(default_factory=lambda: _discard)  # outside a trainer: no log to write
    save_checkpoint: Callable[..., Path] = field(default_factory=lambda: _not_available("checkpoint writer"))
    seconds_of: Callable[[Any], float] = field(default_factory=lambda: _not_available("callback timer"))

    def __post_init__(self):
        if self.forward_g is None and self.generator is not None:
            self.forward_g = self.generator
        if self.forward_d is None and self.discriminator is not None:
            self.forward_d = self.discriminator.forward_all

    # ----------------------------------------------------------------- the step's draws
    def condition(self, labels: torch.Tensor | None) -> torch.Tensor | None:
        """What D reads beside an image: the labels (cGAN), the source image (pix2pix), else None."""
        if self.task is None:
            return labels
        return self.task.discriminator_condition(self, labels)

    def _rows(self, drawn: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a draw made for the whole job (all of it in a single process)."""
        if self.world_size == 1:
            return drawn
        n = drawn.shape[0] // self.world_size
        return drawn[self.rank * n : (self.rank + 1) * n]

    def rand_rows(self, shape, dtype=None, device=None) -> torch.Tensor:
        """U[0, 1) numbers of `shape` (rows: this rank's samples) from the noise stream."""
        global_shape = (shape[0] * self.world_size, *shape[1:])
        return self._rows(torch.rand(global_shape, device=device or self.device, generator=self.noise_rng, dtype=dtype))

    def randn_rows(self, shape, dtype=None, device=None) -> torch.Tensor:
        """N(0, 1) numbers of `shape` (rows: this rank's samples) from the noise stream."""
        global_shape = (shape[0] * self.world_size, *shape[1:])
        return self._rows(
            torch.randn(global_shape, device=device or self.device, generator=self.noise_rng, dtype=dtype)
        )

    def sample_noise(self, n: int) -> torch.Tensor:
        return self.randn_rows((n, self.latent_dim))

    def sample_labels(self, n: int) -> torch.Tensor | None:
        """Uniform class labels for the fakes of a label-conditional GAN (None otherwise)."""
        if self.conditioning is None or not self.conditioning.generator_labels:
            return None
        drawn = torch.randint(
            self.config.model.n_classes, (n * self.world_size,), device=self.device, generator=self.noise_rng
        )
        return self._rows(drawn)

    # ----------------------------------------------------------------- the run's parts
    def term(self, name: str):
        """The loss term called `name` (e.g. 'instance-noise'), or None when the run has none."""
        return next((t for t in self.terms if canonical(t.name) == canonical(name)), None)

    def generator_for_eval(self) -> nn.Module:
        """The generator to evaluate and sample from: a callback's (the EMA copy) when one provides it."""
        for callback in self.callbacks:
            module = callback.evaluation_generator()
            if module is not None:
                return module
        return self.generator

    @torch.no_grad()
    def generate(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Generator outputs in [-1, 1] for latents z (and class labels for conditional models), in eval
        mode (batch-norm running statistics), from the EMA generator when there is one."""
        generator = self.generator_for_eval()
        was_training = generator.training
        generator.eval()
        try:
            if labels is not None:
                return generator(z.to(self.device), labels.to(self.device)).float()
            return generator(z.to(self.device)).float()
        finally:
            generator.train(was_training)
