"""The GAN trainer: Goodfellow et al.'s Algorithm 1, with the bookkeeping a real run needs.

One training step (one generator update) is:

    for k discriminator steps:                        (k = config.d_steps)
        x <- next real minibatch;  z <- N(0, I)
        update D by descending  loss.discriminator(D(x), D(G(z)))
    update G by descending  loss.generator(D(G(z)))

As in the PyTorch DCGAN tutorial, the generator step reuses the fakes of the last discriminator
step (one generator forward pass instead of two); the discriminator is evaluated on them again
after its update.

Around the step the trainer keeps: a log of losses and D outputs (log.jsonl, losses.png), a grid
of samples from fixed noise (samples/), atomic checkpoints with everything needed to resume to
exactly the same result (checkpoints/last.pt), and a check that stops a diverging run while its
last good checkpoint is still on disk. Later parts of the course extend it through `hooks`
(objects called after every step, whose state is checkpointed too) rather than by copying it.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from . import checkpoint as ckpt_io
from .data import BatchLoader, ImageData, load_dataset
from .env import pick_device
from .errors import CheckpointError, ConfigError, TrainingDiverged
from .losses import get_loss
from .models import build_models
from .viz import plot_training_log, save_image_grid


@dataclass
class TrainConfig:
    """Every setting of a training run. Saved as config.json and inside each checkpoint."""

    dataset: str = "mnist"
    data_root: str | None = None
    image_size: int | None = None  # None: the dataset's own size
    limit: int | None = None  # use only the first `limit` images
    arch: str = "dcgan"
    latent_dim: int = 100
    width: int = 64  # DCGAN base channels / MLP hidden units
    loss: str = "non-saturating"
    d_steps: int = 1  # k in Algorithm 1
    batch_size: int = 128
    steps: int = 1000  # generator updates
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # off | bf16 | fp16 | auto (bf16 on CUDA when supported, else off)
    log_every: int = 10
    sample_every: int = 250
    checkpoint_every: int = 250
    n_fixed: int = 64  # fixed-noise samples drawn for the grids

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        positive = ("latent_dim", "width", "d_steps", "batch_size", "steps", "log_every", "sample_every",
                    "checkpoint_every", "n_fixed")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("lr_g", "lr_d"):
            if not (isinstance(getattr(self, name), (int, float)) and 0 < getattr(self, name) < 1):
                raise ConfigError(f"{name} must be a number in (0, 1), got {getattr(self, name)!r}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if self.amp not in ("auto", "off", "bf16", "fp16"):
            raise ConfigError(f"amp must be auto, off, bf16 or fp16, got {self.amp!r}")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be a positive integer, got {self.limit!r}")
        get_loss(self.loss)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**values)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "TrainConfig":
        """Read a JSON or YAML file of settings."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found")
        text = path.read_text()
        try:
            if path.suffix in (".yaml", ".yml"):
                import yaml

                values = yaml.safe_load(text) or {}
            else:
                values = json.loads(text)
        except Exception as exc:  # noqa: BLE001 - json and yaml raise different types
            raise ConfigError(f"cannot parse {path}: {exc}") from exc
        if not isinstance(values, dict):
            raise ConfigError(f"{path} must hold a mapping of setting: value")
        return cls.from_dict(values)


class Hook(Protocol):
    """Called after every training step. Optional `state_dict()`/`load_state_dict()` are checkpointed."""

    def __call__(self, trainer: "Trainer", metrics: dict[str, torch.Tensor]) -> None: ...


def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "python": [list(s) if isinstance(s, tuple) else s for s in random.getstate()],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), float(cached)))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Trainer:
    """Trains a generator/discriminator pair on an image dataset. See the module docstring."""

    def __init__(self, config: TrainConfig, out_dir: str | os.PathLike | None = None,
                 data: ImageData | None = None, hooks: list | tuple = (), progress: bool = True):
        self.config = config
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.hooks = list(hooks)
        self.progress = progress
        self.device = pick_device(config.device)
        seed_everything(config.seed)

        self.data = data if data is not None else load_dataset(config.dataset, config.data_root, "train",
                                                              config.image_size, limit=config.limit)
        self.image_size, self.channels = self.data.image_size, self.data.channels
        self.generator, self.discriminator = (m.to(self.device) for m in build_models(
            config.arch, config.latent_dim, self.image_size, self.channels, config.width))
        self.opt_g = torch.optim.Adam(self.generator.parameters(), config.lr_g, betas=(config.beta1, config.beta2))
        self.opt_d = torch.optim.Adam(self.discriminator.parameters(), config.lr_d, betas=(config.beta1, config.beta2))
        self.loss = get_loss(config.loss)
        self.loader = BatchLoader(self.data, config.batch_size, seed=config.seed, device=self.device)

        # Noise comes from the trainer's own generator, so evaluation code that draws random numbers
        # elsewhere never shifts the training stream.
        self.noise_rng = torch.Generator(device=self.device).manual_seed(config.seed + 1)
        self.fixed_noise = torch.randn(config.n_fixed, config.latent_dim,
                                       generator=torch.Generator().manual_seed(config.seed + 2)).to(self.device)
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None

        self.step = 0  # generator updates done
        self.batch_index = 0  # real minibatches consumed
        self.history: list[dict] = []  # one row per log interval
        self.elapsed = 0.0  # seconds of training, summed over resumed sessions
        self._pending: list[dict[str, torch.Tensor]] = []

    # ------------------------------------------------------------------------------- the step
    def _amp_dtype(self):
        choice = self.config.amp
        if choice == "off" or (choice == "auto" and self.device.type != "cuda"):
            return None
        if choice == "fp16":
            return torch.float16
        if self.device.type == "cuda" and not torch.cuda.is_bf16_supported():
            return torch.float16 if choice == "auto" else None
        return torch.bfloat16

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def sample_noise(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.config.latent_dim, device=self.device, generator=self.noise_rng)

    def _backward_step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        optimizer.zero_grad(set_to_none=True)
        if self.scaler is None:
            loss.backward()
            optimizer.step()
        else:
            self.scaler.scale(loss).backward()
            self.scaler.step(optimizer)
            self.scaler.update()

    def train_step(self) -> dict[str, torch.Tensor]:
        """One generator update preceded by `d_steps` discriminator updates. Returns detached metrics."""
        G, D, k = self.generator, self.discriminator, self.config.d_steps
        batch_size = self.config.batch_size
        for i in range(k):
            real, _ = self.loader.batch(self.batch_index)
            self.batch_index += 1
            z = self.sample_noise(batch_size)
            with self.autocast():
                if i < k - 1:
                    with torch.no_grad():
                        fake = G(z)
                else:  # the last fakes keep their graph: the generator step reuses them
                    fake = G(z)
                real_logits = D(real)
                fake_logits = D(fake.detach())
                loss_d = self.loss.discriminator(real_logits, fake_logits)
            self._backward_step(loss_d, self.opt_d)

        with self.autocast():
            fake_logits_g = D(fake)
            loss_g = self.loss.generator(fake_logits_g)
        self._backward_step(loss_g, self.opt_g)
        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "d_real": torch.sigmoid(real_logits.detach().float()).mean(),
            "d_fake": torch.sigmoid(fake_logits.detach().float()).mean(),
        }

    # ------------------------------------------------------------------------------ the loop
    def train(self, steps: int | None = None) -> "Trainer":
        """Train until `steps` generator updates in total (default: config.steps)."""
        from tqdm.auto import tqdm

        target = self.config.steps if steps is None else steps
        cfg = self.config
        if self.out_dir is not None:
            self._write_json(self.out_dir / "config.json", cfg.to_dict())
        bar = tqdm(total=target, initial=self.step, desc="training", unit="step", disable=not self.progress,
                   dynamic_ncols=True)
        self.generator.train()
        self.discriminator.train()
        started = time.perf_counter()
        try:
            while self.step < target:
                metrics = self.train_step()
                self.step += 1
                self._pending.append(metrics)
                for hook in self.hooks:
                    hook(self, metrics)
                last = self.step == target
                if self.step % cfg.log_every == 0 or last or self.step % cfg.checkpoint_every == 0:
                    row = self._flush_log()
                    bar.set_postfix(loss_d=f"{row['loss_d']:.3f}", loss_g=f"{row['loss_g']:.3f}",
                                    d_real=f"{row['d_real']:.2f}", d_fake=f"{row['d_fake']:.2f}", refresh=False)
                bar.update()
                if self.out_dir is not None:
                    if self.step % cfg.sample_every == 0 or last:
                        self.save_samples()
                    if self.step % cfg.checkpoint_every == 0 or last:
                        self.elapsed += time.perf_counter() - started
                        started = time.perf_counter()
                        self.save_checkpoint()
        finally:
            bar.close()
            self.elapsed += time.perf_counter() - started
        if self.out_dir is not None:
            plot_training_log(self.history, self.out_dir / "losses.png")
        return self

    def _flush_log(self) -> dict:
        """Average the pending per-step metrics into one log row (one host sync per interval).

        Also the divergence check: a non-finite loss stops training before anything is saved.
        """
        stacked = {k: torch.stack([m[k] for m in self._pending]).float() for k in self._pending[0]}
        self._pending.clear()
        values = {k: v.cpu() for k, v in stacked.items()}
        if not all(torch.isfinite(v).all() for v in values.values()):
            bad = ", ".join(k for k, v in values.items() if not torch.isfinite(v).all())
            raise TrainingDiverged(
                f"training diverged at step {self.step}: {bad} became NaN or infinite. "
                f"{self._last_good_message()} Try a lower learning rate, another loss, or another seed."
            )
        row = {"step": self.step, **{k: float(v.mean()) for k, v in values.items()}}
        self.history.append(row)
        if self.out_dir is not None:
            self._write_lines(self.out_dir / "log.jsonl", [json.dumps(r) for r in self.history])
        return row

    def _last_good_message(self) -> str:
        if self.out_dir is None:
            return "No checkpoints were being written."
        last = self.out_dir / "checkpoints" / "last.pt"
        if last.is_file():
            return f"The last good checkpoint is kept at {last}."
        return "No checkpoint had been written yet."

    # ------------------------------------------------------------------------------- outputs
    @torch.no_grad()
    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """Generator outputs in [-1, 1] for latents z, in eval mode (batch-norm running statistics)."""
        was_training = self.generator.training
        self.generator.eval()
        try:
            return self.generator(z.to(self.device)).float()
        finally:
            self.generator.train(was_training)

    def save_samples(self) -> Path:
        images = self.generate(self.fixed_noise)
        save_image_grid(images, self.out_dir / "samples" / f"step_{self.step:07d}.png")
        return save_image_grid(images, self.out_dir / "samples.png")

    def state_dict(self) -> dict:
        return {
            "format": ckpt_io.FORMAT,
            "config": {**self.config.to_dict(), "image_size": self.image_size, "channels": self.channels},
            "data_source": self.data.source,
            "step": self.step,
            "batch_index": self.batch_index,
            "elapsed": self.elapsed,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "scaler": None if self.scaler is None else self.scaler.state_dict(),
            "noise_rng": self.noise_rng.get_state(),
            "rng": _rng_state(),
            "fixed_noise": self.fixed_noise.cpu(),
            "history": self.history,
            "hooks": [h.state_dict() if hasattr(h, "state_dict") else None for h in self.hooks],
        }

    def save_checkpoint(self) -> Path:
        """Write checkpoints/last.pt atomically, after checking every parameter is finite."""
        for name, module in (("generator", self.generator), ("discriminator", self.discriminator)):
            if not all(torch.isfinite(p).all() for p in module.parameters()):
                raise TrainingDiverged(f"the {name}'s parameters became NaN or infinite at step {self.step}. "
                                       f"{self._last_good_message()} Try a lower learning rate.")
        return ckpt_io.save_atomic(self.state_dict(), self.out_dir / "checkpoints" / "last.pt")

    def load_state_dict(self, state: dict) -> None:
        try:
            self.generator.load_state_dict(state["generator"])
            self.discriminator.load_state_dict(state["discriminator"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            if self.scaler is not None and state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            self.noise_rng.set_state(state["noise_rng"].to(self.noise_rng.get_state().device))
            self.fixed_noise = state["fixed_noise"].to(self.device)
            self.step, self.batch_index = state["step"], state["batch_index"]
            self.history, self.elapsed = list(state["history"]), state.get("elapsed", 0.0)
            for hook, hook_state in zip(self.hooks, state.get("hooks", [])):
                if hook_state is not None and hasattr(hook, "load_state_dict"):
                    hook.load_state_dict(hook_state)
            _set_rng_state(state["rng"])
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(f"checkpoint does not fit this model/trainer: {exc}") from exc

    @classmethod
    def resume(cls, path: str | os.PathLike, data: ImageData | None = None, hooks: list | tuple = (),
               progress: bool = True, **overrides: Any) -> "Trainer":
        """Rebuild a trainer from a run folder (or checkpoint file) and restore its exact state.

        `overrides` may change settings that do not alter the model, e.g. steps=5000 to train longer.
        """
        state = ckpt_io.load_checkpoint(path)
        values = {k: v for k, v in state["config"].items() if k not in ("image_size", "channels")}
        values["image_size"] = state["config"].get("image_size")
        values.update(overrides)
        try:
            config = TrainConfig.from_dict(values)
        except ConfigError as exc:
            raise CheckpointError(f"checkpoint {path} holds unusable settings: {exc}") from exc
        run_dir = ckpt_io.resolve(path).parent.parent
        trainer = cls(config, run_dir, data=data, hooks=hooks, progress=progress)
        trainer.load_state_dict(state)
        return trainer

    @staticmethod
    def _write_json(path: Path, obj) -> None:
        Trainer._write_lines(path, [json.dumps(obj, indent=2)])

    @staticmethod
    def _write_lines(path: Path, lines: list[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, path)


def steps_for_epochs(epochs: float, dataset_size: int, batch_size: int, d_steps: int = 1) -> int:
    """Generator steps that make the discriminator see the dataset `epochs` times."""
    return max(1, math.ceil(epochs * (dataset_size // batch_size) / d_steps))
