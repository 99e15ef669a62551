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
hours of training, not after. `override_experiment` changes a config's mapping before that check: dotted
keys into it (`base.steps`, `eval.n_samples`, `variants.ema.ema`: a list element by its name or index),
and `steps`, every run's length wherever the config keeps it (`course-lib experiment --set/--steps`).
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course_lib.core.errors import ConfigError, describe_parse_error
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
    budgets: list[int] | None = None  # steps at which the report compares the variants (each an evaluated step)


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


def load_experiment(
    source: str | os.PathLike | dict, overrides: list[tuple[str, Any]] | None = None, steps: int | None = None
) -> ExperimentConfig:
    """Read and validate an experiment config (file path or mapping). Every run's settings are checked now,
    so a typo in the last variant fails before hours of training, not after. `overrides` and `steps`: see
    `override_experiment`."""
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
            raise ConfigError(describe_parse_error(path, exc)) from exc
        where = str(path)
    if not isinstance(values, dict):
        raise ConfigError(f"{where} must hold a mapping with base, seeds, eval and variants")
    if overrides or steps is not None:
        values = override_experiment(values, overrides or [], steps)
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
    budgets = settings.budgets
    if budgets is not None:
        if not isinstance(budgets, list) or not all(
            isinstance(b, int) and not isinstance(b, bool) and b > 0 for b in budgets
        ):
            raise ConfigError(f"{where}: eval.budgets must be a list of positive step counts, got {budgets!r}")
        off = [b for b in budgets if settings.every and b % settings.every]
        if off or (budgets and not settings.every and len(budgets) > 1):
            raise ConfigError(
                f"{where}: eval.budgets {off or budgets} are not evaluated steps (multiples of eval.every = "
                f"{settings.every})"
            )
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


def set_dotted(values: dict, key: str, value: Any) -> None:
    """Set `key` ("base.optim.lr_g", "variants.ema.ema", "variants.0.name") in a nested mapping, in place.

    A mapping's own dotted key is kept as it is where it already exists (a variant's `loss.terms.r1.gamma`);
    missing mappings on the way are created; a list element is found by its `name` or its index."""
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"--set {key}: empty part in the dotted key")
    node: Any = values
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, dict):
            rest = ".".join(parts[i:])
            if rest in node:  # the mapping keeps this dotted key itself
                node[rest] = value
                return
            node = node.setdefault(part, {})
        elif isinstance(node, list):
            node = _list_element(node, part, ".".join(parts[: i + 1]))
        else:
            raise ConfigError(f"--set {key}: {'.'.join(parts[:i])} is {node!r}, not a mapping or a list")
    if isinstance(node, dict):
        node[parts[-1]] = value
    elif isinstance(node, list):
        index = _list_index(node, parts[-1], key)
        node[index] = value
    else:
        raise ConfigError(f"--set {key}: {'.'.join(parts[:-1])} is {node!r}, not a mapping or a list")


def _list_index(items: list, part: str, where: str) -> int:
    names = [item.get("name") for item in items if isinstance(item, dict)]
    if part in names:
        return next(i for i, item in enumerate(items) if isinstance(item, dict) and item.get("name") == part)
    if part.lstrip("-").isdigit() and -len(items) <= int(part) < len(items):
        return int(part)
    raise ConfigError(f"--set: no {where!r}: the list holds {', '.join(map(str, names)) or len(items)} (or an index)")


def _list_element(items: list, part: str, where: str) -> Any:
    return items[_list_index(items, part, where)]


def override_experiment(values: dict, overrides: list[tuple[str, Any]], steps: int | None = None) -> dict:
    """A copy of an experiment config's mapping with `overrides` (dotted key, value) applied in order and, with
    `steps`, every run trained that many generator steps: set in the base where the base keeps the field (flat,
    or in the training config's section), and in each variant that sets it itself. The result is checked by
    `load_experiment` like any config."""
    values = copy.deepcopy(values)
    if steps is not None:
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ConfigError(f"--steps must be a positive integer, got {steps!r}")
        base = values.setdefault("base", {})
        if not isinstance(base, dict):
            raise ConfigError("the experiment's 'base' must be a mapping of training settings")
        path = _steps_path(base)
        set_dotted(values, "base." + path, steps)
        for variant in values.get("variants") or []:
            if isinstance(variant, dict):
                for key in ("steps", path):
                    if key in variant:
                        variant[key] = steps
                section = variant.get(path.partition(".")[0]) if "." in path else None
                if isinstance(section, dict) and "steps" in section:
                    section["steps"] = steps
    for key, value in overrides:
        set_dotted(values, key, value)
    return values


def _steps_path(base: dict) -> str:
    """Where a base keeps the number of steps: `steps` in a flat base (TrainConfig's fields, or their older flat
    form), `<section>.steps` where TrainConfig keeps it in a section and the base is written in sections."""
    defaults = TrainConfig().to_dict()
    section = next((name for name, value in defaults.items() if isinstance(value, dict) and "steps" in value), None)
    if "steps" in defaults or section is None:
        return "steps"
    flat = "steps" in base or any(key not in defaults and key != "preset" and "." not in key for key in base)
    return "steps" if flat else f"{section}.steps"
