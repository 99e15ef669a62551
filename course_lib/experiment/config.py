"""Experiment configs: what to train (base settings, variants, seeds) and how to evaluate it.

A config (YAML or JSON) names the shared settings, the seeds, the evaluation and the variants:

    name: mnist-improvements
    base:                                          # TrainConfig sections (course_lib.training.config)
      data: {dataset: mnist}
      model: {width: 32}
      optim: {batch_size: 64, steps: 1500}
    seeds: [0, 1]
    eval: {every: 500, n_samples: 2000, reference: "mnist:test", extractor: mnist}
    variants:
      - name: baseline
      - {name: lsgan, preset: lsgan}              # presets: course_lib.training.presets.PRESETS
      - {name: ema, callbacks: [{name: ema, decay: 0.999}]}
      - {name: r1, loss.terms.r1.gamma: 10}        # dotted paths work too

A variant's sections merge over the base's (lists of terms and callbacks by name). Experiment configs
written before the sections (flat `base` and variants: `{dataset: mnist, width: 32}`, `{name: ema, ema:
0.999}`) still load: base and variant are merged flat, as they were, and translated once.

`load_experiment` checks every run's settings up front, so a typo in the last variant fails before
hours of training, not after.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.core.errors import ConfigError
from course_lib.metrics.features import extractor_names
from course_lib.training import TrainConfig, legacy
from course_lib.training.config import merge_settings


@dataclass
class EvalSettings:
    every: int = 0  # evaluate every this many steps (0: only at the end)
    n_samples: int = 2000
    reference: str | None = None  # default: the dataset's test split (or the dataset itself)
    n_reference: int | None = 10_000
    extractor: str = "auto"  # a registered extractor (inception, mnist, pixels) or auto (metrics.resolve_extractor)
    seed: int = 12345  # noise seed of the evaluation samples (the same for every run)
    kid_subset: int = 1000


@dataclass
class ExperimentConfig:
    name: str
    base: dict
    seeds: list[int]
    variants: list[dict]
    eval: EvalSettings = field(default_factory=EvalSettings)
    description: str = ""

    def train_config(self, variant: dict, seed: int) -> TrainConfig:
        """The full settings of one run: base, then the variant's preset and settings, then the seed."""
        settings = {k: v for k, v in variant.items() if k != "name"}
        base = dict(self.base)
        if "preset" in settings and "preset" in base:
            raise ConfigError("give presets either in base or in the variants, not both")
        try:
            if legacy.is_flat(base) or legacy.is_flat(settings):  # an old experiment: merged flat, as it was
                return TrainConfig.from_dict(
                    {**base, **settings, "seed": seed}, source=f"{self.name} {variant['name']}"
                )
            values = merge_settings(base, settings)
            values.setdefault("run", {})["seed"] = seed
            return TrainConfig.from_dict(values)
        except ConfigError as exc:
            raise ConfigError(f"variant {variant['name']!r}: {exc}") from exc

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "base": self.base,
            "seeds": self.seeds,
            "eval": vars(self.eval),
            "variants": self.variants,
        }


def base_data(base: dict) -> dict:
    """The base's data section (data.dataset, data.root, ...), from the sectioned or the old flat form."""
    if legacy.is_flat(base):
        return {
            key: base[old]
            for old, path in legacy.FIELDS.items()
            if path.startswith("data.") and old in base
            for key in [path[5:]]
        }
    return dict(merge_settings(base, {}).get("data") or {})


def default_reference(base: dict) -> str:
    """The real images runs are compared with when the config names none: the test split where there is one."""
    dataset = base_data(base).get("dataset", "mnist")
    return f"{dataset}:test" if dataset in ("mnist", "mnist-full", "fashion-mnist") else dataset


def load_experiment(source: str | os.PathLike | dict) -> ExperimentConfig:
    """Read and validate an experiment config (file path or mapping). Every run's settings are checked now,
    so a typo in the last variant fails before hours of training, not after."""
    if isinstance(source, dict):
        values, where = dict(source), "experiment config"
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"experiment config {path} not found")
        try:
            if path.suffix in (".yaml", ".yml"):
                import yaml

                values = yaml.safe_load(path.read_text()) or {}
            else:
                values = json.loads(path.read_text())
        except Exception as exc:  # noqa: BLE001 - json and yaml raise different types
            raise ConfigError(f"cannot parse {path}: {exc}") from exc
        where = str(path)
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must hold a mapping with base, seeds, eval and variants")
    known = {"name", "description", "base", "seeds", "eval", "variants"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    variants = values.get("variants") or []
    if not variants or not all(isinstance(v, dict) and isinstance(v.get("name"), str) for v in variants):
        raise ConfigError(f"{where}: 'variants' must be a non-empty list of mappings, each with a 'name'")
    names = [v["name"] for v in variants]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: variant names must be unique, got {names}")
    bad = [n for n in names if not n or any(c in n for c in "/\\:") or n.startswith(".")]
    if bad:
        raise ConfigError(f"{where}: variant names become folder names; these are not usable: {bad}")
    seeds = values.get("seeds", [0])
    if isinstance(seeds, int):
        seeds = [seeds]
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        raise ConfigError(f"{where}: 'seeds' must be a list of integers, got {seeds!r}")
    eval_values = values.get("eval") or {}
    try:
        settings = EvalSettings(**eval_values)
    except TypeError as exc:
        raise ConfigError(f"{where}: bad 'eval' settings ({exc}); known: {', '.join(vars(EvalSettings()))}") from exc
    if settings.extractor not in extractor_names():
        raise ConfigError(
            f"{where}: eval.extractor must be one of {', '.join(extractor_names())}, got {settings.extractor!r}"
        )
    if settings.n_samples < 2 or settings.every < 0:
        raise ConfigError(f"{where}: eval.n_samples must be >= 2 and eval.every >= 0")
    config = ExperimentConfig(
        values.get("name") or Path(where).stem,
        dict(values.get("base") or {}),
        list(seeds),
        variants,
        settings,
        values.get("description", ""),
    )
    for variant in variants:
        config.train_config(variant, seeds[0])
    return config
