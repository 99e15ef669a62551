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

The improvements of the course are settings of the same step, not other training loops:
losses (`course_lib.losses`: LSGAN, hinge, WGAN with clipping or gradient penalty), discriminator
layers (`course_lib.layers`: spectral norm, minibatch discrimination / standard deviation),
extra loss terms (feature matching, historical averaging, ACGAN's and InfoGAN's auxiliary terms),
input noise and label smoothing, two learning rates, and an EMA generator
(`course_lib.improvements`, which also holds the published `PRESETS`).
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from . import checkpoint as ckpt_io
from . import speed
from .data import BatchLoader, ImageData, load_dataset
from .env import pick_device
from .errors import CheckpointError, ConfigError, TrainingDiverged
from .improvements import PRESETS, ExponentialMovingAverage, HistoricalAverage, instance_noise_std
from .losses import feature_matching, get_loss, gradient_penalty
from .models import CONDITIONING, models_from_config
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
    loss: str = "non-saturating"  # see course_lib.losses.LOSSES
    d_steps: int = 1  # k in Algorithm 1 (n_critic for the WGANs)
    batch_size: int = 128
    steps: int = 1000  # generator updates
    optimizer: str = "adam"  # adam | rmsprop (the WGAN-clip paper's choice)
    lr_g: float = 2e-4
    lr_d: float = 2e-4  # lr_d != lr_g is the two time-scale update rule (TTUR)
    beta1: float = 0.5
    beta2: float = 0.999
    # --- improvements (course_lib.losses / layers / improvements); defaults give plain DCGAN
    clip_value: float = 0.01  # wgan-clip: critic weights clamped to [-c, c]
    gp_weight: float = 10.0  # wgan-gp: lambda
    g_upsample: str = "transposed"  # transposed | nearest (upsample + conv)
    d_norm: str = "auto"  # batch | layer | none; auto = layer for wgan-gp, else batch
    spectral_norm: bool = False
    minibatch_discrimination: int = 0  # number of kernels B (0 = off)
    minibatch_stddev: bool = False
    label_smoothing: float = 0.0  # one-sided: real target 1 - s
    instance_noise: float = 0.0  # initial std of the noise added to D's inputs, annealed to 0
    feature_matching: float = 0.0  # weight of the feature-matching term in G's loss
    historical_averaging: float = 0.0  # weight lambda, applied to both players
    ema: float = 0.0  # decay of the generator's moving average (0 = off), e.g. 0.999
    # --- conditional generation
    conditional: str = "none"  # none | cgan | acgan | infogan
    n_classes: int = 10
    aux_weight: float = 1.0  # ACGAN: weight of the class log-likelihood terms
    info_cat: int = 10  # InfoGAN: categories of the categorical code
    info_cont: int = 2  # InfoGAN: number of continuous codes
    info_weight: float = 1.0  # InfoGAN: lambda of the mutual-information term
    hooks: list = field(default_factory=list)  # [{"name": <course_lib.train.HOOKS key>, **kwargs}, ...]
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # off | bf16 | fp16 | auto (bf16 on CUDA when supported, else off)
    # --- speed (course_lib.speed); "auto" = on for CUDA, off elsewhere, so CPU runs are plain loops
    channels_last: str = "auto"  # auto | on | off: NHWC memory layout for models and batches
    compile: str = "auto"  # auto | on | off: torch.compile G's and D's forward passes (probed, eager fallback)
    compile_mode: str = "default"  # torch.compile mode: default | reduce-overhead | max-autotune[-no-cudagraphs]
    optimizer_impl: str = "auto"  # auto | fused | foreach | for-loop (auto: fused on CUDA, PyTorch's default on CPU)
    data_on_device: str = "auto"  # auto | on | off: the uint8 dataset in device memory (auto: CUDA, if it fits)
    flip: bool = False  # random horizontal flips of the real images, drawn per (seed, batch) on the device
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
        for name in ("channels_last", "compile", "data_on_device"):
            speed.check_choice(name, getattr(self, name))
        speed.check_choice("compile_mode", self.compile_mode, speed.COMPILE_MODES)
        speed.check_choice("optimizer_impl", self.optimizer_impl, speed.OPTIMIZER_IMPLS)
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be a positive integer, got {self.limit!r}")
        loss = get_loss(self.loss)
        choices = {"optimizer": ("adam", "rmsprop"), "g_upsample": ("transposed", "nearest"),
                   "d_norm": ("auto", "batch", "layer", "none"), "conditional": CONDITIONING}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        nonnegative = ("clip_value", "gp_weight", "instance_noise", "feature_matching", "historical_averaging",
                       "aux_weight", "info_weight", "minibatch_discrimination")
        for name in nonnegative:
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if self.label_smoothing and not loss.smoothable:
            raise ConfigError(f"label smoothing applies to the BCE and least-squares losses, not {self.loss!r}")
        if not (self.ema == 0 or 0 < self.ema < 1):
            raise ConfigError(f"ema must be 0 (off) or a decay in (0, 1), got {self.ema!r}")
        if self.loss == "wgan-gp" and self.d_norm == "batch":
            raise ConfigError("a WGAN-GP critic must not use batch norm (the penalty is per sample; batch norm mixes "
                              "the samples of a batch): use d_norm 'layer' or 'none', or 'auto'")
        if self.conditional != "none" and self.n_classes < 2:
            raise ConfigError(f"conditional models need n_classes >= 2, got {self.n_classes}")
        if self.conditional == "infogan" and (self.info_cat < 2 or self.info_cont < 0):
            raise ConfigError("InfoGAN needs info_cat >= 2 categories and info_cont >= 0 continuous codes")
        if not isinstance(self.hooks, list) or not all(isinstance(h, dict) and "name" in h for h in self.hooks):
            raise ConfigError("hooks must be a list of mappings, each with a 'name' (see course_lib.train.HOOKS)")
        for spec in self.hooks:
            if spec["name"] not in HOOKS:
                raise ConfigError(f"unknown hook {spec['name']!r}; registered: {', '.join(HOOKS)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Settings from a mapping. `preset: NAME` (or a list of names) first applies the published
        settings in course_lib.improvements.PRESETS; the mapping's other values override them."""
        values = dict(values)
        presets = values.pop("preset", None) or []
        merged: dict = {}
        for name in [presets] if isinstance(presets, str) else presets:
            if name not in PRESETS:
                raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
            merged.update(PRESETS[name])
        merged.update(values)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**merged)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "TrainConfig":
        """Read a JSON or YAML file of settings."""
        return cls.from_dict(read_settings(path))


def read_settings(path: str | os.PathLike) -> dict:
    """The mapping of settings in a JSON or YAML file, unvalidated."""
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
    return values


class Hook(Protocol):
    """Called after every training step (trainer.step already counts it), with that step's detached metrics.

    Optional: `state_dict()` / `load_state_dict(state)` (saved in every checkpoint), `summary()` (a
    JSON-able dict the experiment report includes) and a `seconds` attribute (wall time spent, reported
    as the hook's compute overhead).
    """

    def __call__(self, trainer: "Trainer", metrics: dict[str, torch.Tensor]) -> None: ...


# Hooks a config can name: {"name": key, **constructor kwargs}. Imported lazily ("module:attribute").
HOOKS: dict[str, str] = {
    "diversity_controller": "course_lib.diversity:DiversityController",
    "fid_tracker": "course_lib.fid_tracking:FIDTracker",
}


def build_hooks(specs: list[dict]) -> list:
    """Construct the hooks a config lists."""
    import importlib

    hooks = []
    for spec in specs:
        spec = dict(spec)
        name = spec.pop("name")
        if name not in HOOKS:
            raise ConfigError(f"unknown hook {name!r}; registered: {', '.join(HOOKS)}")
        module, attribute = HOOKS[name].split(":")
        cls = getattr(importlib.import_module(module), attribute)
        try:
            hooks.append(cls(**spec))
        except TypeError as exc:
            raise ConfigError(f"bad settings for hook {name!r}: {exc}") from exc
    return hooks


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
        self.progress = progress
        self.device = pick_device(config.device)
        seed_everything(config.seed)

        self.data = data if data is not None else load_dataset(config.dataset, config.data_root, "train",
                                                              config.image_size, limit=config.limit)
        self.image_size, self.channels = self.data.image_size, self.data.channels
        if config.conditional in ("cgan", "acgan") and self.data.labels is None:
            raise ConfigError(f"conditional={config.conditional!r} needs class labels; dataset "
                              f"{self.data.name!r} has none")
        self.generator, self.discriminator = (m.to(self.device) for m in models_from_config(
            {**config.to_dict(), "image_size": self.image_size, "channels": self.channels}))
        speed.configure_cuda(self.device)
        self.channels_last = speed.resolve(config.channels_last, self.device, "channels_last")
        if self.channels_last:
            speed.to_channels_last(self.generator, self.discriminator)
        self.opt_g = self._optimizer(self.generator, config.lr_g)
        self.opt_d = self._optimizer(self.discriminator, config.lr_d)
        self.loss = get_loss(config.loss)
        on_device = speed.use_data_on_device(config.data_on_device, self.data.images.numel(), self.device)
        self.loader = BatchLoader(self.data, config.batch_size, seed=config.seed, device=self.device,
                                  on_device=on_device, flip=config.flip, channels_last=self.channels_last)
        self.ema = ExponentialMovingAverage(self.generator, config.ema) if config.ema else None
        self.history_g = self.history_d = None
        if config.historical_averaging:
            self.history_g = HistoricalAverage(self.generator, config.historical_averaging)
            self.history_d = HistoricalAverage(self.discriminator, config.historical_averaging)
        self.instance_noise_factor = 1.0  # hooks (e.g. the diversity controller) may scale the noise

        # Noise comes from the trainer's own generator, so evaluation code that draws random numbers
        # elsewhere never shifts the training stream.
        self.noise_rng = torch.Generator(device=self.device).manual_seed(config.seed + 1)
        self.latent_dim = self.generator.latent_dim  # InfoGAN: noise + code dimensions
        self.fixed_noise = torch.randn(config.n_fixed, self.latent_dim,
                                       generator=torch.Generator().manual_seed(config.seed + 2)).to(self.device)
        self.fixed_labels = (torch.arange(config.n_fixed, device=self.device) % config.n_classes
                             if config.conditional in ("cgan", "acgan") else None)
        self.amp_dtype = self._amp_dtype()
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None
        self.g_train, self.d_train = self._compiled_forwards()
        self.speed = {"device": str(self.device), "amp": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype
                      else "off", "channels_last": self.channels_last, "optimizer": self.optimizer_impl,
                      "data_on_device": on_device, "compile_g": self.g_train.reason, "compile_d": self.d_train.reason}

        self.step = 0  # generator updates done
        self.batch_index = 0  # real minibatches consumed
        self.history: list[dict] = []  # one row per log interval
        self.elapsed = 0.0  # seconds of training, summed over resumed sessions
        self._pending: list[dict[str, torch.Tensor]] = []
        self._extra: dict[str, float] = {}
        self.hooks = build_hooks(config.hooks) + list(hooks)

    def _optimizer(self, module: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
        cfg = self.config
        optimizer, self.optimizer_impl = speed.make_optimizer(module.parameters(), cfg.optimizer, lr, (cfg.beta1, cfg.beta2),
                                                              self.device, cfg.optimizer_impl)
        return optimizer

    def _compiled_forwards(self) -> tuple[speed.CompileResult, speed.CompileResult]:
        """G's forward and D's forward_all for training: torch.compile'd where it helps (see course_lib.speed).

        Each is probed on a copy (forward and backward, under autocast) with inputs from a private
        generator, so neither the models nor the training noise stream are touched. The modules
        themselves stay eager: sampling, evaluation and checkpoints use them as before.
        """
        cfg, n = self.config, self.config.batch_size
        probe = cfg.compile != "off" and (cfg.compile == "on" or self.device.type == "cuda")
        labels = z = x = None
        if probe:
            rng = torch.Generator(device=self.device).manual_seed(0)
            z = torch.randn(n, self.latent_dim, device=self.device, generator=rng)
            x = torch.randn(n, self.channels, self.image_size, self.image_size, device=self.device, generator=rng)
            x = (speed.channels_last_batch(x) if self.channels_last else x).requires_grad_(True)
            labels = torch.zeros(n, dtype=torch.long, device=self.device) if cfg.conditional in ("cgan", "acgan") else None
        common = {"choice": cfg.compile, "device": self.device, "mode": cfg.compile_mode, "context": self.autocast}
        g = speed.maybe_compile(self.generator, example=(z, labels) if probe else None, **common)
        d = speed.maybe_compile(self.discriminator, method="forward_all", example=(x, labels if cfg.conditional == "cgan"
                                                                                  else None) if probe else None, **common)
        return g, d

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
        return torch.randn(n, self.latent_dim, device=self.device, generator=self.noise_rng)

    def sample_labels(self, n: int) -> torch.Tensor | None:
        """Uniform class labels for the fakes of a conditional GAN (None for unconditional models)."""
        if self.config.conditional not in ("cgan", "acgan"):
            return None
        return torch.randint(self.config.n_classes, (n,), device=self.device, generator=self.noise_rng)

    def _noisy(self, images: torch.Tensor) -> torch.Tensor:
        """Images plus the annealed instance noise (unchanged when it is off)."""
        std = instance_noise_std(self.config.instance_noise, self.step, self.config.steps) * self.instance_noise_factor
        if std <= 0:
            return images
        noise = torch.randn(images.shape, device=images.device, generator=self.noise_rng, dtype=images.dtype)
        return images + std * noise

    def _auxiliary_loss(self, out: dict, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
        """ACGAN's class log-likelihood or InfoGAN's mutual-information term for a batch of fakes."""
        cfg = self.config
        if cfg.conditional == "acgan":
            return cfg.aux_weight * F.cross_entropy(out["class_logits"].float(), labels)
        if cfg.conditional == "infogan":
            # Variational lower bound on I(c; G(z, c)) (Chen et al. 2016): the Q head's log-likelihood of
            # the codes. Categorical: cross-entropy; continuous: a unit-variance Gaussian, i.e. half the
            # squared error.
            _, cat, cont = self.generator.split_codes(z)
            loss = F.cross_entropy(out["info_cat_logits"].float(), cat)
            if cont.shape[1]:
                loss = loss + 0.5 * ((out["info_cont"].float() - cont) ** 2).sum(dim=1).mean()
            return cfg.info_weight * loss
        return None

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
        G, D, cfg = self.generator, self.discriminator, self.config
        k, batch_size = cfg.d_steps, cfg.batch_size
        real_target = 1.0 - cfg.label_smoothing
        cgan = cfg.conditional == "cgan"  # only the cGAN discriminator takes labels as input
        metrics: dict[str, torch.Tensor] = {}
        for i in range(k):
            real, real_labels = self.loader.batch(self.batch_index)
            self.batch_index += 1
            z, fake_labels = self.sample_noise(batch_size), self.sample_labels(batch_size)
            with self.autocast():
                if i < k - 1:
                    with torch.no_grad():
                        fake = self.g_train(z, fake_labels)
                else:  # the last fakes keep their graph: the generator step reuses them
                    fake = self.g_train(z, fake_labels)
                out_real = self.d_train(self._noisy(real), real_labels if cgan else None)
                out_fake = self.d_train(self._noisy(fake.detach()), fake_labels if cgan else None)
                loss_d = self.loss.discriminator(out_real["logits"], out_fake["logits"], real_target)
                if cfg.conditional == "acgan":  # D also learns to classify the real images
                    loss_d = loss_d + cfg.aux_weight * F.cross_entropy(out_real["class_logits"].float(), real_labels)
                aux = self._auxiliary_loss(out_fake, z, fake_labels)
                if aux is not None:
                    loss_d = loss_d + aux
            if cfg.loss == "wgan-gp":  # in float32, outside autocast: second-order gradients
                penalty = gradient_penalty(D, real, fake, self.noise_rng, real_labels if cgan else None)
                loss_d = loss_d + cfg.gp_weight * penalty
                metrics["gradient_penalty"] = penalty.detach()
            if self.history_d is not None:
                loss_d = loss_d + self.history_d.penalty(D)
            self._backward_step(loss_d, self.opt_d)
            if cfg.loss == "wgan-clip":
                with torch.no_grad():
                    for p in D.parameters():
                        p.clamp_(-cfg.clip_value, cfg.clip_value)
            if self.history_d is not None:
                self.history_d.update(D)

        with self.autocast():
            out_g = self.d_train(self._noisy(fake), fake_labels if cgan else None)
            loss_g = self.loss.generator(out_g["logits"])
            if cfg.feature_matching:
                fm = feature_matching(out_real["features"], out_g["features"])
                loss_g = loss_g + cfg.feature_matching * fm
                metrics["feature_matching"] = fm.detach()
            aux = self._auxiliary_loss(out_g, z, fake_labels)
            if aux is not None:
                loss_g = loss_g + aux
                metrics["aux_loss"] = aux.detach()
        if self.history_g is not None:
            loss_g = loss_g + self.history_g.penalty(G)
        self._backward_step(loss_g, self.opt_g)
        if self.history_g is not None:
            self.history_g.update(G)
        if self.ema is not None:
            self.ema.update(G)

        squash = torch.sigmoid if self.loss.probabilistic else (lambda t: t)  # D(x) as a probability or a score
        return {
            "loss_d": loss_d.detach(),
            "loss_g": loss_g.detach(),
            "d_real": squash(out_real["logits"].detach().float()).mean(),
            "d_fake": squash(out_fake["logits"].detach().float()).mean(),
            **metrics,
        }

    def log_extra(self, values: dict[str, float]) -> None:
        """Add scalar values (e.g. a hook's FID) to the next log row."""
        self._extra.update({k: float(v) for k, v in values.items()})

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
        row = {"step": self.step, **{k: float(v.mean()) for k, v in values.items()}, **self._extra}
        self._extra = {}
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
    def generator_for_eval(self) -> torch.nn.Module:
        """The generator to evaluate and sample from: the EMA copy when the run keeps one."""
        return self.ema.module if self.ema is not None else self.generator

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

    def save_samples(self) -> Path:
        images = self.generate(self.fixed_noise, self.fixed_labels)
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
            "instance_noise_factor": self.instance_noise_factor,
            "generator_ema": None if self.ema is None else self.ema.module.state_dict(),
            "ema_updates": None if self.ema is None else self.ema.updates,
            "historical_average": None if self.history_g is None else [self.history_g.state_dict(),
                                                                        self.history_d.state_dict()],
        }

    def save_checkpoint(self, path: str | os.PathLike | None = None) -> Path:
        """Write checkpoints/last.pt (or `path`) atomically, after checking every parameter is finite."""
        for name, module in (("generator", self.generator), ("discriminator", self.discriminator)):
            if not all(torch.isfinite(p).all() for p in module.parameters()):
                raise TrainingDiverged(f"the {name}'s parameters became NaN or infinite at step {self.step}. "
                                       f"{self._last_good_message()} Try a lower learning rate.")
        return ckpt_io.save_atomic(self.state_dict(), path or self.out_dir / "checkpoints" / "last.pt")

    def load_state_dict(self, state: dict) -> None:
        try:
            self.generator.load_state_dict(state["generator"])
            self.discriminator.load_state_dict(state["discriminator"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_d.load_state_dict(state["opt_d"])
            for optimizer in (self.opt_g, self.opt_d):  # this machine's choice, not the writer's
                speed.set_optimizer_impl(optimizer, self.optimizer_impl)
            if self.scaler is not None and state.get("scaler"):
                self.scaler.load_state_dict(state["scaler"])
            self.noise_rng.set_state(state["noise_rng"].to(self.noise_rng.get_state().device))
            self.fixed_noise = state["fixed_noise"].to(self.device)
            self.step, self.batch_index = state["step"], state["batch_index"]
            self.history, self.elapsed = list(state["history"]), state.get("elapsed", 0.0)
            self.instance_noise_factor = float(state.get("instance_noise_factor", 1.0))
            if self.ema is not None:
                self.ema.load_state_dict({"module": state["generator_ema"], "updates": state["ema_updates"]})
            if self.history_g is not None:
                self.history_g.load_state_dict(state["historical_average"][0])
                self.history_d.load_state_dict(state["historical_average"][1])
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
