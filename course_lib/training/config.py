"""Every setting of a training run, in sections, where it comes from, and its checks.

A run's settings are a `TrainConfig` of seven sections (StudioGAN-style), saved as config.json in a run
folder and inside every checkpoint:

    data:      {dataset: mnist, root: null, image_size: null, limit: null, flip: false,
                task: generation, translation: none}
    model:     {arch: dcgan, latent_dim: 100, width: 64, g_upsample: transposed, d_norm: auto, ...}
    loss:      {name: non-saturating, label_smoothing: 0.0, adversarial_weight: 1.0,
                terms: [{name: gradient-penalty, weight: 10}, {name: r1, gamma: 10}]}
    optim:     {steps: 1000, batch_size: 128, d_steps: 1, optimizer: adam, lr_g: 2.0e-4, lr_d: 2.0e-4,
                beta1: 0.5, beta2: 0.999}
    callbacks: [{name: ema, decay: 0.999}, {name: fid_tracker, every: 500}]
    speed:     {amp: auto, channels_last: auto, compile: auto, compile_mode: default, optimizer_impl: auto,
                data_on_device: auto}
    run:       {seed: 0, device: auto, log_every: 10, sample_every: 250, checkpoint_every: 250, n_fixed: 64}

Where a value comes from, lowest first: the defaults (Radford et al.'s DCGAN: Adam 2e-4, betas (0.5, 0.999),
the non-saturating loss), the presets a config or `--preset a,b` names (`course_lib.training.presets`), the
config file's sections, then dotted overrides (`--set optim.lr_g=1e-4`, or `{"optim.lr_g": 1e-4}` in a
mapping) and the common CLI flags (`--steps`, `--lr-g`, ...). Loss terms and callbacks are lists of
`{name: <registered>, **settings}` entries; lists merge by name (an entry named like an earlier one replaces
it, others are appended), and `loss.terms.r1.gamma=5` addresses the entry named r1.

What each loss term requires of the models and optimisers (a WGAN-GP critic without batch norm, WGAN-clip's
RMSprop) is declared by the term or the loss (`course_lib.training.terms`) and checked here, once.

Configs written before the sections (flat: `{loss: wgan-gp, gp_weight: 10, d_steps: 5, ema: 0.999}`, in
every config.json and checkpoint of course_lib.checkpoint/1 and /2) are translated once on load, with a
one-line note naming the new form (`course_lib.training.legacy`).
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from course_lib.core.errors import ConfigError, describe_parse_error
from course_lib.nn.losses import get_loss
from course_lib.nn.models import ARCHITECTURES, CONDITIONING
from course_lib.training import legacy, speed
from course_lib.training.callbacks import check_callback_specs
from course_lib.training.presets import PRESETS
from course_lib.training.terms import check_requirements, check_term_specs, generator_terms, resolved_d_norm

ARCHS = (*ARCHITECTURES, "unet")  # unet: the translation tasks' U-Net + PatchGAN (course_lib.nn.translation)
TASKS = ("generation", "pix2pix", "cyclegan")


def _positive_int(where: str, value) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{where} must be a positive integer, got {value!r}")


def _nonnegative(where: str, value) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{where} must be a number >= 0, got {value!r}")


def _choice(where: str, value, allowed) -> None:
    if value not in allowed:
        raise ConfigError(f"{where} must be one of {', '.join(map(str, allowed))}, got {value!r}")


@dataclass
class DataConfig:
    """What the run trains on."""

    dataset: str = "mnist"
    root: str | None = None  # folder holding the dataset (default: $COURSE_LIB_DATA)
    image_size: int | None = None  # None: the dataset's own size
    limit: int | None = None  # use only the first `limit` images
    flip: bool = False  # random horizontal flips of the real images, drawn per (seed, batch) on the device
    task: str = "generation"  # generation (z -> image) | pix2pix (paired) | cyclegan (unpaired); training/tasks.py
    translation: str = "none"  # pix2pix/cyclegan: superres | edges | thicken | invert (course_lib.data.translation)

    def validate(self) -> None:
        from course_lib.data.translation import TRANSLATIONS  # the data layer's table, read only when checking

        if self.limit is not None:
            _positive_int("data.limit", self.limit)
        if self.image_size is not None:
            _positive_int("data.image_size", self.image_size)
        _choice("data.task", self.task, TASKS)
        _choice("data.translation", self.translation, ("none", *TRANSLATIONS))


@dataclass
class ModelConfig:
    """The generator and the discriminator."""

    arch: str = "dcgan"  # dcgan | mlp | style | progressive | unet (translation tasks)
    latent_dim: int = 100
    width: int = 64  # DCGAN base channels / MLP hidden units
    g_upsample: str = "transposed"  # transposed | nearest (upsample + conv)
    d_norm: str = "auto"  # batch | layer | none; auto: batch, unless a loss term requires otherwise
    spectral_norm: bool = False
    minibatch_discrimination: int = 0  # number of kernels B (0 = off)
    minibatch_stddev: bool = False
    conditional: str = "none"  # none | cgan | acgan | infogan
    n_classes: int = 10
    info_cat: int = 10  # InfoGAN: categories of the categorical code
    info_cont: int = 2  # InfoGAN: number of continuous codes
    style: str = "modulated"  # arch 'style': modulated (StyleGAN2, weight demodulation) | adain (StyleGAN)
    mapping_layers: int = 4  # arch 'style': layers of the mapping network z -> w
    style_mixing: float = 0.9  # arch 'style': probability of mixing regularisation per batch

    def validate(self) -> None:
        _choice("model.arch", self.arch, ARCHS)
        for name in ("latent_dim", "width", "mapping_layers"):
            _positive_int(f"model.{name}", getattr(self, name))
        _choice("model.g_upsample", self.g_upsample, ("transposed", "nearest"))
        _choice("model.d_norm", self.d_norm, ("auto", "batch", "layer", "none"))
        _choice("model.conditional", self.conditional, CONDITIONING)
        _choice("model.style", self.style, ("modulated", "adain"))
        _nonnegative("model.minibatch_discrimination", self.minibatch_discrimination)
        if self.conditional != "none" and self.n_classes < 2:
            raise ConfigError(f"conditional models need model.n_classes >= 2, got {self.n_classes}")
        if self.conditional == "infogan" and (self.info_cat < 2 or self.info_cont < 0):
            raise ConfigError("InfoGAN needs model.info_cat >= 2 categories and model.info_cont >= 0 continuous codes")
        if not isinstance(self.style_mixing, (int, float)) or not 0 <= self.style_mixing <= 1:
            raise ConfigError(f"model.style_mixing must be a probability in [0, 1], got {self.style_mixing!r}")


@dataclass
class LossConfig:
    """The GAN game (`name`, see course_lib.nn.losses.LOSSES) and the loss terms added to it, in order."""

    name: str = "non-saturating"
    label_smoothing: float = 0.0  # one-sided: real target 1 - s (Salimans et al. 2016)
    adversarial_weight: float = 1.0  # weight of G's adversarial loss (0: D still trains, G ignores it)
    terms: list = field(default_factory=list)  # [{name: <registered loss term>, **settings}, ...]

    def validate(self) -> None:
        loss = get_loss(self.name)
        if not isinstance(self.label_smoothing, (int, float)) or not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"loss.label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        if self.label_smoothing and not loss.smoothable:
            raise ConfigError(f"loss.label_smoothing applies to the BCE and least-squares losses, not {self.name!r}")
        _nonnegative("loss.adversarial_weight", self.adversarial_weight)
        check_term_specs(self.terms)


@dataclass
class OptimConfig:
    """How long and how the players are optimised."""

    steps: int = 1000  # generator updates
    batch_size: int = 128
    d_steps: int = 1  # k in Algorithm 1 (n_critic for the WGANs)
    optimizer: str = "adam"  # adam | rmsprop (the WGAN-clip paper's choice)
    lr_g: float = 2e-4
    lr_d: float = 2e-4  # lr_d != lr_g is the two time-scale update rule (TTUR)
    beta1: float = 0.5
    beta2: float = 0.999

    def validate(self) -> None:
        for name in ("steps", "batch_size", "d_steps"):
            _positive_int(f"optim.{name}", getattr(self, name))
        _choice("optim.optimizer", self.optimizer, ("adam", "rmsprop"))
        for name in ("lr_g", "lr_d"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1):
                raise ConfigError(f"optim.{name} must be a number in (0, 1), got {value!r}")
        for name in ("beta1", "beta2"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and 0 <= value < 1):
                raise ConfigError(f"optim.{name} must be in [0, 1), got {value!r}")


@dataclass
class SpeedConfig:
    """How fast (course_lib.training.speed): "auto" is on for CUDA, off elsewhere, so CPU runs are plain loops."""

    amp: str = "auto"  # off | bf16 | fp16 | auto (bf16 on CUDA when supported, else off)
    channels_last: str = "auto"  # auto | on | off: NHWC memory layout for models and batches
    compile: str = "auto"  # auto | on | off: torch.compile G's and D's forward passes (probed, eager fallback)
    compile_mode: str = "default"  # torch.compile mode: default | reduce-overhead | max-autotune[-no-cudagraphs]
    optimizer_impl: str = "auto"  # auto | fused | foreach | for-loop (auto: fused on CUDA, PyTorch's default on CPU)
    data_on_device: str = "auto"  # auto | on | off: the uint8 dataset in device memory (auto: CUDA, if it fits)

    def validate(self) -> None:
        _choice("speed.amp", self.amp, ("auto", "off", "bf16", "fp16"))
        for name in ("channels_last", "compile", "data_on_device"):
            speed.check_choice(f"speed.{name}", getattr(self, name))
        speed.check_choice("speed.compile_mode", self.compile_mode, speed.COMPILE_MODES)
        speed.check_choice("speed.optimizer_impl", self.optimizer_impl, speed.OPTIMIZER_IMPLS)


@dataclass
class RunConfig:
    """Where it runs, its randomness, and how often it logs, samples and checkpoints."""

    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    log_every: int = 10
    sample_every: int = 250
    checkpoint_every: int = 250
    n_fixed: int = 64  # fixed-noise samples drawn for the grids

    def validate(self) -> None:
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise ConfigError(f"run.seed must be an integer, got {self.seed!r}")
        for name in ("log_every", "sample_every", "checkpoint_every", "n_fixed"):
            _positive_int(f"run.{name}", getattr(self, name))


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "model": ModelConfig,
    "loss": LossConfig,
    "optim": OptimConfig,
    "speed": SpeedConfig,
    "run": RunConfig,
}
LISTS = ("callbacks",)  # top-level lists of {name: ...} entries (loss.terms is the other list)
TOP_LEVEL = (*SECTIONS, *LISTS)


@dataclass
class TrainConfig:
    """Every setting of a training run, in sections (see the module docstring). Saved as config.json and
    inside each checkpoint. Sections may be given as mappings: `TrainConfig(optim={"steps": 5})`."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    callbacks: list = field(default_factory=list)  # [{name: <registered callback>, **settings}, ...]
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self):
        for name, cls in SECTIONS.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, _section(cls, name, value))
            elif not isinstance(value, cls):
                raise ConfigError(f"{name} must be a mapping of {cls.__name__} settings, got {value!r}")
        self.validate()

    # ------------------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Every section's own checks, then what concerns several sections: the task's settings and the
        requirements loss terms and losses declare (course_lib.training.terms.check_requirements)."""
        for name in SECTIONS:
            getattr(self, name).validate()
        check_callback_specs(self.callbacks)
        self._validate_task()
        check_requirements(self)

    def _validate_task(self) -> None:
        """Which settings go with which task (generation or image translation)."""
        data, model = self.data, self.model
        if data.task == "generation":
            wrong = [f"data.translation {data.translation!r}"] if data.translation != "none" else []
            wrong += [f"model.arch {model.arch!r}"] if model.arch == "unet" else []
            if wrong:
                raise ConfigError(f"{', '.join(wrong)} is for image translation: set data.task to pix2pix or cyclegan")
            if self.loss.adversarial_weight <= 0:
                raise ConfigError("loss.adversarial_weight must be > 0 for task 'generation' (it is G's only loss)")
            return
        if data.translation == "none":
            raise ConfigError(f"data.task {data.task!r} needs data.translation: superres, edges, thicken or invert")
        if model.arch != "unet":
            raise ConfigError(
                f"data.task {data.task!r} trains a U-Net and PatchGAN: set model.arch to 'unet', got {model.arch!r}"
            )
        unsupported = [
            f"model.{name}"
            for name, default in (
                ("conditional", "none"),
                ("g_upsample", "transposed"),
                ("spectral_norm", False),
                ("minibatch_stddev", False),
                ("minibatch_discrimination", 0),
            )
            if getattr(model, name) != default
        ]
        if unsupported:
            raise ConfigError(f"data.task {data.task!r} does not support {', '.join(unsupported)}")
        if self.loss.adversarial_weight == 0 and not generator_terms(self):
            raise ConfigError(
                f"data.task {data.task!r} with loss.adversarial_weight 0 needs a loss term for G with a weight > 0 "
                "(l1 or cycle): otherwise nothing trains the generator"
            )
        other = sorted({spec["name"] for spec in self.callbacks} - {"ema"})
        if other:
            raise ConfigError(
                f"callback(s) {', '.join(other)} sample from latents; a translation task supports only 'ema'"
            )

    # ------------------------------------------------------------------------------ access
    def get(self, path: str) -> Any:
        """A setting by dotted path, e.g. config.get("optim.lr_g")."""
        section, _, name = path.partition(".")
        if section not in TOP_LEVEL:
            raise ConfigError(f"unknown config section {section!r} in {path!r}; sections: {', '.join(TOP_LEVEL)}")
        value = getattr(self, section)
        return getattr(value, name) if name else value

    def term(self, name: str) -> dict | None:
        """The loss.terms entry called `name` (hyphens/underscores alike), or None."""
        from course_lib.core.registry import canonical

        return next((spec for spec in self.loss.terms if canonical(spec["name"]) == canonical(name)), None)

    def to_dict(self) -> dict:
        return asdict(self)

    def replace(self, overrides: dict) -> TrainConfig:
        """A new config: this one with `overrides` (sections or dotted paths) applied, checked."""
        return TrainConfig.from_dict(_merge(self.to_dict(), _nest(overrides)))

    @classmethod
    def from_dict(cls, values: dict, source: str = "config") -> TrainConfig:
        """Settings from a mapping (see the module docstring for the order). `preset: NAME` (or a list of
        names) applies those presets first. A mapping in the old flat form is translated (with a note)."""
        values = dict(values)
        if legacy.is_flat(values):
            values = legacy.translate(values, PRESETS, source, _defaults())
        presets = values.pop("preset", None) or []
        merged = _defaults()
        for name in [presets] if isinstance(presets, str) else presets:
            if name not in PRESETS:
                raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
            merged = _merge(merged, {k: v for k, v in PRESETS[name].items() if k != "description"})
        merged = _merge(merged, _nest(values))
        unknown = sorted(set(merged) - set(TOP_LEVEL))
        if unknown:
            raise ConfigError(f"unknown config section(s) {', '.join(unknown)}; sections: {', '.join(TOP_LEVEL)}")
        return cls(**merged)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> TrainConfig:
        """Read a JSON or YAML file of settings (sectioned, or the old flat form)."""
        return cls.from_dict(read_settings(path), source=str(path))


def model_settings(config: TrainConfig, image_size: int, channels: int) -> dict:
    """What course_lib.nn.models_from_config reads: the model section, the task, the image shape, and model.d_norm
    with 'auto' resolved by the loss terms' requirements (training/terms.py)."""
    return {
        **config.to_dict()["model"],
        "d_norm": resolved_d_norm(config),
        "task": config.data.task,
        "image_size": image_size,
        "channels": channels,
    }


def _defaults() -> dict:
    return {**{name: asdict(cls()) for name, cls in SECTIONS.items()}, "callbacks": []}


def _section(cls: type, name: str, values: dict):
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(f'{name}.{k}' for k in unknown)}; {name} has: {', '.join(sorted(known))}"
        )
    return cls(**copy.deepcopy(values))


def _named(entries: list, name: str) -> int | None:
    from course_lib.core.registry import canonical

    return next(
        (i for i, e in enumerate(entries) if isinstance(e, dict) and canonical(str(e.get("name"))) == canonical(name)),
        None,
    )


def merge_named(base: list, extra: list) -> list:
    """Two lists of {name: ...} entries as one: an entry named like an earlier one replaces it in place (its
    settings merged over the earlier ones), others are appended; `{name: X, enabled: false}` removes X (e.g. a
    preset's EMA: `--set callbacks.ema.enabled=false`)."""
    out = [dict(e) if isinstance(e, dict) else e for e in base]
    for entry in extra:
        index = _named(out, entry["name"]) if isinstance(entry, dict) and "name" in entry else None
        if isinstance(entry, dict) and entry.get("enabled") is False:
            if index is not None:
                del out[index]
        elif index is None:
            out.append(copy.deepcopy(entry))
        else:
            out[index] = {**out[index], **copy.deepcopy(entry)}
    return [{k: v for k, v in e.items() if k != "enabled"} if isinstance(e, dict) else e for e in out]


def merge_settings(base: dict, extra: dict) -> dict:
    """Two (partial) sectioned mappings as one, `extra` over `base`; dotted keys are read as paths."""
    return _merge(_nest(base), _nest(extra))


def _merge(base: dict, extra: dict) -> dict:
    """Sections merged field by field; lists of named entries merged by name (`merge_named`)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        elif isinstance(value, list) and isinstance(out.get(key), list) and key in ("terms", "callbacks"):
            out[key] = merge_named(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _nest(values: dict) -> dict:
    """Dotted keys ("optim.lr_g", "loss.terms.r1.gamma") as nested mappings; other keys as they are."""
    out: dict = {}
    dotted = []
    for key, value in values.items():
        if isinstance(key, str) and "." in key:
            dotted.append((key, value))
        else:
            out = _merge(out, {key: value})
    for key, value in dotted:
        out = _merge(out, _path_to_nested(key.split("."), value))
    return out


def _path_to_nested(parts: list[str], value) -> dict:
    """['loss', 'terms', 'r1', 'gamma'] -> {'loss': {'terms': [{'name': 'r1', 'gamma': value}]}}."""
    head, rest = parts[0], parts[1:]
    if not rest:
        return {head: value}
    if head in ("terms", "callbacks"):  # a named entry of a list
        name, tail = rest[0], rest[1:]
        if not tail:
            raise ConfigError(f"{'.'.join(parts)}: give a setting of the entry, e.g. {head}.{name}.weight=1")
        return {head: [{"name": name, **_path_to_nested(tail, value)}]}
    return {head: _path_to_nested(rest, value)}


def parse_override(text: str) -> tuple[str, Any]:
    """'optim.lr_g=1e-4' -> ('optim.lr_g', 0.0001): the value is read as YAML (numbers, true/false, null,
    lists and mappings), so `--set loss.terms=[{name: r1, gamma: 10}]` works."""
    import yaml  # an optional dependency of the CLI path only

    path, sep, raw = text.partition("=")
    path = path.strip()
    if not sep or not path or path.split(".")[0] not in (*TOP_LEVEL, "preset"):
        raise ConfigError(
            f"--set wants section.field=value (sections: {', '.join(TOP_LEVEL)}), e.g. optim.lr_g=1e-4; got {text!r}"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {text!r}: cannot read the value ({str(exc).splitlines()[0]})") from exc
    if isinstance(value, str):  # YAML 1.1 reads 1e-4 as a string
        try:
            value = float(value) if any(c.isdigit() for c in value) else value
        except ValueError:
            pass
    return path, value


def read_settings(path: str | os.PathLike) -> dict:
    """The mapping of settings in a JSON or YAML file, unvalidated."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} not found")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml  # only YAML files need it

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
