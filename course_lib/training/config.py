"""Every setting of a training run, where it comes from (defaults < presets < config file < flags), and its checks.

`TrainConfig` is saved as config.json in a run folder and inside every checkpoint. The defaults are
Radford et al.'s DCGAN (Adam 2e-4, betas (0.5, 0.999), non-saturating loss); improvements are
settings (see `course_lib.training.presets` for the published ones) that `build_terms` and
`callbacks_from_config` turn into loss terms and callbacks.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from course_lib.core.errors import ConfigError, describe_parse_error
from course_lib.nn.losses import get_loss
from course_lib.nn.models import CONDITIONING
from course_lib.training import speed
from course_lib.training.callbacks import check_callback_specs
from course_lib.training.presets import PRESETS


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
    loss: str = "non-saturating"  # see course_lib.nn.losses.LOSSES
    d_steps: int = 1  # k in Algorithm 1 (n_critic for the WGANs)
    batch_size: int = 128
    steps: int = 1000  # generator updates
    optimizer: str = "adam"  # adam | rmsprop (the WGAN-clip paper's choice)
    lr_g: float = 2e-4
    lr_d: float = 2e-4  # lr_d != lr_g is the two time-scale update rule (TTUR)
    beta1: float = 0.5
    beta2: float = 0.999
    # --- improvements (course_lib.nn.losses / layers / improvements); defaults give plain DCGAN
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
    r1_weight: float = 0.0  # gamma of the R1 penalty on real data (Mescheder et al. 2018); 0 = off
    # --- arch 'style' (course_lib.nn.style): StyleGAN's generator
    style: str = "modulated"  # modulated (StyleGAN2, weight demodulation) | adain (StyleGAN)
    mapping_layers: int = 4  # layers of the mapping network z -> w
    style_mixing: float = 0.9  # probability of mixing regularisation per batch
    # --- image translation (course_lib.nn.translation, data.translation; notebook 13)
    task: str = "generation"  # generation (z -> image) | pix2pix (paired) | cyclegan (unpaired); see training/tasks.py
    translation: str = "none"  # pix2pix/cyclegan: superres | edges | thicken | invert (course_lib.data.translation)
    l1_weight: float = 0.0  # pix2pix: lambda of the L1 term |y - G(x)| (100 in Isola et al.); 0 = off
    cycle_weight: float = 0.0  # CycleGAN: lambda of the cycle-consistency term (10 in Zhu et al.); 0 = off
    adversarial_weight: float = 1.0  # weight of G's adversarial loss (0: D still trains, G ignores it)
    callbacks: list = field(default_factory=list)  # [{"name": <registered callback>, **kwargs}, ...]
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # off | bf16 | fp16 | auto (bf16 on CUDA when supported, else off)
    # --- speed (course_lib.training.speed); "auto" = on for CUDA, off elsewhere, so CPU runs are plain loops
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
        positive = (
            "latent_dim",
            "width",
            "d_steps",
            "batch_size",
            "steps",
            "log_every",
            "sample_every",
            "checkpoint_every",
            "n_fixed",
        )
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
        choices = {
            "optimizer": ("adam", "rmsprop"),
            "g_upsample": ("transposed", "nearest"),
            "d_norm": ("auto", "batch", "layer", "none"),
            "conditional": CONDITIONING,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        nonnegative = (
            "clip_value",
            "gp_weight",
            "instance_noise",
            "feature_matching",
            "historical_averaging",
            "aux_weight",
            "info_weight",
            "minibatch_discrimination",
            "r1_weight",
        )
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
            raise ConfigError(
                "a WGAN-GP critic must not use batch norm (the penalty is per sample; batch norm mixes "
                "the samples of a batch): use d_norm 'layer' or 'none', or 'auto'"
            )
        if self.conditional != "none" and self.n_classes < 2:
            raise ConfigError(f"conditional models need n_classes >= 2, got {self.n_classes}")
        if self.conditional == "infogan" and (self.info_cat < 2 or self.info_cont < 0):
            raise ConfigError("InfoGAN needs info_cat >= 2 categories and info_cont >= 0 continuous codes")
        if self.style not in ("modulated", "adain"):
            raise ConfigError(f"style must be modulated or adain, got {self.style!r}")
        if not isinstance(self.mapping_layers, int) or isinstance(self.mapping_layers, bool) or self.mapping_layers < 1:
            raise ConfigError(f"mapping_layers must be a positive integer, got {self.mapping_layers!r}")
        if not isinstance(self.style_mixing, (int, float)) or not 0 <= self.style_mixing <= 1:
            raise ConfigError(f"style_mixing must be a probability in [0, 1], got {self.style_mixing!r}")
        self._validate_task()
        check_callback_specs(self.callbacks)

    def _validate_task(self) -> None:
        """Which settings go with which task (generation or image translation)."""
        from course_lib.data.translation import TRANSLATIONS

        tasks = ("generation", "pix2pix", "cyclegan")
        if self.task not in tasks:
            raise ConfigError(f"task must be one of {', '.join(tasks)}, got {self.task!r}")
        for name in ("l1_weight", "cycle_weight", "adversarial_weight"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}")
        if self.task == "generation":
            wrong = [
                f"{name} {getattr(self, name)!r}"
                for name, off in (("translation", "none"), ("l1_weight", 0), ("cycle_weight", 0), ("arch", "unet"))
                if (getattr(self, name) != off if name != "arch" else getattr(self, name) == off)
            ]
            if wrong:
                raise ConfigError(f"{', '.join(wrong)} is for image translation: set task to pix2pix or cyclegan")
            if self.adversarial_weight <= 0:
                raise ConfigError("adversarial_weight must be > 0 for task 'generation' (it is G's only loss)")
            return
        if self.translation not in TRANSLATIONS:
            raise ConfigError(
                f"task {self.task!r} needs translation: one of {', '.join(TRANSLATIONS)}, got {self.translation!r}"
            )
        if self.arch != "unet":
            raise ConfigError(f"task {self.task!r} trains a U-Net and PatchGAN: set arch to 'unet', got {self.arch!r}")
        unsupported = [
            name
            for name, default in (
                ("conditional", "none"),
                ("g_upsample", "transposed"),
                ("spectral_norm", False),
                ("minibatch_stddev", False),
                ("minibatch_discrimination", 0),
            )
            if getattr(self, name) != default
        ]
        if unsupported:
            raise ConfigError(f"task {self.task!r} does not support {', '.join(unsupported)}")
        if self.task == "pix2pix" and self.cycle_weight:
            raise ConfigError("cycle_weight is CycleGAN's term: use task 'cyclegan' (pix2pix has pairs: l1_weight)")
        if self.task == "cyclegan" and self.l1_weight:
            raise ConfigError("l1_weight needs paired data (task 'pix2pix'); CycleGAN's term is cycle_weight")
        if self.adversarial_weight == 0 and self.l1_weight == 0 and self.cycle_weight == 0:
            raise ConfigError(
                f"task {self.task!r} with adversarial_weight 0 needs l1_weight or cycle_weight > 0: "
                "otherwise nothing trains the generator"
            )
        other = sorted({spec["name"] for spec in self.callbacks if isinstance(spec, dict)} - {"ema"})
        if other:
            raise ConfigError(
                f"callback(s) {', '.join(other)} sample from latents; a translation task supports only 'ema'"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        """Settings from a mapping. `preset: NAME` (or a list of names) first applies the published
        settings in course_lib.training.presets.PRESETS; the mapping's other values override them."""
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
    def from_file(cls, path: str | os.PathLike) -> TrainConfig:
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
        raise ConfigError(describe_parse_error(path, exc)) from exc
    if not isinstance(values, dict):
        raise ConfigError(f"{path} must hold a mapping of setting: value")
    return values


def steps_for_epochs(epochs: float, dataset_size: int, batch_size: int, d_steps: int = 1) -> int:
    """Generator steps that make the discriminator see the dataset `epochs` times."""
    return max(1, math.ceil(epochs * (dataset_size // batch_size) / d_steps))
